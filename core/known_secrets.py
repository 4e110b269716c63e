"""No known secret in production: the one list of values anyone could know, and the check the
API and the worker run before they start.

A secret is unsafe when it is missing, a development default of core/settings.py, a value ever
published as an example (.env.example, the README), one that says it is a placeholder
(`change-me`, `replace_me`...), or too short to be random. Where PUBLIC_BASE_URL is this
machine (`make run`, the tests) that is only a warning; anywhere else the process refuses to
start and says, for each setting, how to make a good one.

Standard library only at import (the settings are read when checked), so that nothing here
pulls the service in.
"""

from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

# The settings checked, as their environment variables spell them.
CHECKED = (
    "SESSION_SECRET",
    "OPS_API_TOKEN",
    "CODEC_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "INBOUND_EMAIL_SECRET",
)
# Checked too when FILE_STORAGE=s3: whoever knows it reads and replaces every file people sent.
CHECKED_WITH_S3 = ("S3_SECRET_ACCESS_KEY",)
# Shorter than this cannot be a random secret of enough strength.
MIN_LENGTH = 32
CODEC_KEY_BYTES = 32
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})

# Every value ever published as an example, beside the defaults of core/settings.py (read from
# the Settings class itself when checked, so a new default is known at once).
PUBLISHED = frozenset(
    {
        # .env.example, before it shipped empty secrets.
        "change-me-ops-token",
        "change-me-session-secret",
        "ZXhhbXBsZS1jb2RlYy1rZXktY2hhbmdlLW1lLW5vdyE=",  # b"example-codec-key-change-me-now!"
        "whsec_replace_me",
        "sk_test_replace_me",
        "change-me-postgres",
        "changemeapp",
        "changemetemporal",
        "change-me-grafana",
        # The defaults of core/settings.py as they have been written (README, Settings).
        "ops-dev-token",
        "dev-session-secret-change-me",
        "whsec_local_dev_secret",
        "whinbound_local_dev_secret",
        # Fixed values of the tests and the benchmark, in this repository for all to read.
        "dGVzdHMtb25seSBrZXkgZm9yIHJlcGxheWluZyAhISE=",  # tests/conftest.py HISTORY_CODEC_KEY
        "ops-test-token",
        "whsec_test_secret",
        "scale-ops-token",
        "whsec_scale_secret",
        "bench-ops-token",
        "moto-tests-secret-access-key-not-a-secret",  # tests/conftest.py S3_TEST_SECRET
        # MinIO's own default root password, and the AWS documentation's example secret key.
        "minioadmin",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    }
)
# Words that mark a placeholder, whatever surrounds them (compared lower-case, and in a
# decoded CODEC_KEY too).
PLACEHOLDERS = ("change-me", "change_me", "changeme", "replace_me", "replace-me", "replaceme")

HOW_TO_MAKE = {
    "SESSION_SECRET": 'python3 -c "import secrets; print(secrets.token_urlsafe(32))"',
    "OPS_API_TOKEN": 'python3 -c "import secrets; print(secrets.token_urlsafe(32))"',
    "CODEC_KEY": 'python3 -c "import base64, os; print(base64.b64encode(os.urandom(32)).decode())"'
    " (keep the key your histories were written with: they can't be read without it)",
    "STRIPE_WEBHOOK_SECRET": "the whsec_... Stripe shows for your webhook endpoint (or the one "
    "`stripe listen` prints); with the local Stripe server, any long random value",
    "S3_SECRET_ACCESS_KEY": "the secret of the access key your object storage gave for "
    "S3_ACCESS_KEY_ID; for the compose file's MinIO (its root password), any long random "
    'value: python3 -c "import secrets; print(secrets.token_urlsafe(32))"',
    "INBOUND_EMAIL_SECRET": 'python3 -c "import secrets; print(secrets.token_urlsafe(32))" '
    "(and give your mail provider's inbound webhook the same value)",
}
GENERATOR = "python3 -m deploy.env_file -o compose.env"


@dataclass(frozen=True)
class Unsafe:
    setting: str  # the environment variable, e.g. SESSION_SECRET
    why: str


class UnsafeSecrets(RuntimeError):
    """Raised by `enforce` off loopback; its message names every offending setting."""


def defaults() -> frozenset[str]:
    """The development defaults of core/settings.py for the checked settings."""
    from core.settings import Settings  # the service's settings, only when checked

    found = {Settings.model_fields[name.lower()].default for name in (*CHECKED, *CHECKED_WITH_S3)}
    return frozenset(value for value in found if isinstance(value, str))


def known() -> frozenset[str]:
    return PUBLISHED | defaults()


def on_loopback(public_base_url: str) -> bool:
    """Whether PUBLIC_BASE_URL is this machine (development and tests)."""
    host = (urlsplit(public_base_url).hostname or "").lower()
    return host in LOOPBACK


def _placeholder(text: str) -> str | None:
    lowered = text.lower()
    return next((word for word in PLACEHOLDERS if word in lowered), None)


def problem(setting: str, value: str | None) -> str | None:
    """Why `value` is unsafe for `setting` (an environment variable name), or None."""
    if not value:
        if setting == "CODEC_KEY":
            return "is not set (workflow payloads are stored unencrypted)"
        return "is not set"
    if value in known():
        return "is a published example or development default, which anyone can know"
    if word := _placeholder(value):
        return f"is a placeholder (it contains {word!r})"
    if setting == "CODEC_KEY":
        try:
            key = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return "is not base64"
        if len(key) != CODEC_KEY_BYTES:
            return f"decodes to {len(key)} bytes, not {CODEC_KEY_BYTES}"
        if word := _placeholder(key.decode("latin-1")):
            return f"is a placeholder (it decodes to text containing {word!r})"
        return None
    if len(value) < MIN_LENGTH:
        return f"is {len(value)} characters long: a random secret has at least {MIN_LENGTH}"
    return None


def checked(settings: Any) -> tuple[str, ...]:
    """The secrets `settings` (a core.settings.Settings) use, as their variables spell them."""
    return CHECKED + (CHECKED_WITH_S3 if settings.file_storage == "s3" else ())


def unsafe(settings: Any) -> list[Unsafe]:
    """The checked settings of `settings` (a core.settings.Settings) that are unsafe."""
    found = []
    for setting in checked(settings):
        if why := problem(setting, getattr(settings, setting.lower())):
            found.append(Unsafe(setting, why))
    return found


def refusal(public_base_url: str, found: list[Unsafe]) -> str:
    lines = [
        f"Refusing to start: PUBLIC_BASE_URL ({public_base_url}) is not this machine, and "
        "these secrets would let anyone who knows them in:"
    ]
    for item in found:
        lines.append(f"  {item.setting} {item.why}. Make one with: {HOW_TO_MAKE[item.setting]}")
    lines.append(
        f"For a whole compose env file with every secret random: {GENERATOR} (README, Deploy)."
    )
    return "\n".join(lines)


def enforce(settings: Any, log: logging.Logger) -> None:
    """Warn on loopback; elsewhere log why and raise UnsafeSecrets if any secret is unsafe."""
    found = unsafe(settings)
    if not found:
        return
    if on_loopback(settings.public_base_url):
        for item in found:
            log.warning(
                "%s %s: fine on this machine, refused once PUBLIC_BASE_URL is elsewhere",
                item.setting,
                item.why,
            )
        return
    message = refusal(settings.public_base_url, found)
    log.critical("%s", message)
    raise UnsafeSecrets(message)

"""`python3 -m deploy.env_file -o compose.env`: .env.example with every empty secret filled
with a random one, for docker compose (`export COMPOSE_ENV_FILES="$PWD/compose.env"`).

Standard library only: it runs with any Python 3.11 on the deploying machine, no venv needed.
Give other values as NAME=VALUE arguments (say your STRIPE_API_KEY and PUBLIC_BASE_URL); -o
writes the file readable by its owner alone and never over an existing one (its CODEC_KEY and
database passwords may already be in use); without -o the file goes to standard output.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import secrets
import string
import sys
from collections.abc import Callable
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / ".env.example"
LINE = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)")
ALPHANUMERIC = string.ascii_letters + string.digits


def letters_and_digits(length: int = 40) -> str:
    """About 238 bits; safe inside a URL (DATABASE_URL) and in any shell or env file."""
    return "".join(secrets.choice(ALPHANUMERIC) for _ in range(length))


def codec_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def webhook_secret() -> str:
    return "whsec_" + letters_and_digits()


# What each secret is made of. .env.example ships these empty (tests/e2e/test_deploy.py checks it).
MAKERS: dict[str, Callable[[], str]] = {
    "POSTGRES_PASSWORD": letters_and_digits,
    "APP_DB_PASSWORD": letters_and_digits,
    "TEMPORAL_DB_PASSWORD": letters_and_digits,
    "OPS_API_TOKEN": letters_and_digits,
    "SESSION_SECRET": letters_and_digits,
    "CODEC_KEY": codec_key,
    "STRIPE_WEBHOOK_SECRET": webhook_secret,
    "INBOUND_EMAIL_SECRET": letters_and_digits,
    "GRAFANA_ADMIN_PASSWORD": letters_and_digits,
    # MinIO's root password and the API's key to it (at least 8 characters for MinIO).
    "S3_SECRET_ACCESS_KEY": letters_and_digits,
}
# Empty in .env.example and left for you: a Stripe key can't be made up.
YOURS = {"STRIPE_API_KEY": "your Stripe secret key (sk_test_...; sk_test_local with --profile dev)"}


def generate(example: str, given: dict[str, str] | None = None) -> str:
    """`example` (the text of .env.example) with every empty secret filled and `given` set."""
    given = dict(given or {})
    out = [
        "# Settings for docker-compose.yml, made by `python3 -m deploy.env_file` from",
        "# .env.example: every secret below is random. Keep this file private and never commit",
        "# it; keep CODEC_KEY and the database passwords as long as their data. Use it with",
        '# `export COMPOSE_ENV_FILES="$PWD/compose.env"` (or `docker compose --env-file ...`).',
    ]
    lines = example.splitlines()
    # .env.example's own opening paragraph says how to make this file: not repeated here.
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    for line in lines:
        match = LINE.fullmatch(line.strip())
        if match and not line.startswith("#"):
            name, value = match["name"], match["value"]
            if name in given:
                value = given.pop(name)
            elif not value and name in MAKERS:
                value = MAKERS[name]()
            line = f"{name}={value}"
        out.append(line)
    if given:
        unknown = ", ".join(sorted(given))
        raise ValueError(f"not settings of .env.example: {unknown}")
    return "\n".join(out) + "\n"


def missing(text: str) -> list[str]:
    """What the generated file still leaves for you to fill in."""
    values = {m["name"]: m["value"] for m in map(LINE.fullmatch, text.splitlines()) if m}
    return [f"{name}: {what}" for name, what in YOURS.items() if not values.get(name)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m deploy.env_file",
        description="A compose env file: .env.example with every empty secret made random.",
    )
    parser.add_argument("-o", "--output", type=Path, help="write here (never over a file)")
    parser.add_argument("values", nargs="*", metavar="NAME=VALUE", help="other values to set")
    args = parser.parse_args(argv)
    given = {}
    for pair in args.values:
        name, sep, value = pair.partition("=")
        if not sep:
            parser.error(f"{pair!r}: expected NAME=VALUE")
        given[name] = value
    try:
        text = generate(EXAMPLE.read_text(), given)
    except ValueError as exc:
        parser.error(str(exc))
    if args.output is None:
        sys.stdout.write(text)
    else:
        try:
            fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            parser.error(
                f"{args.output} exists: its CODEC_KEY and passwords may be in use, so it is "
                "left as it is (remove it first to start over)"
            )
        with os.fdopen(fd, "w") as file:
            file.write(text)
        print(f"wrote {args.output} (readable by you alone)", file=sys.stderr)
    for left in missing(text):
        print(f"still to set: {left}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

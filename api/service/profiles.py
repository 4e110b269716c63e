"""Profiles: a launcher's (headline, school, links, avatar, which parts are public) and a
company's (logo, website, description), read as a viewer may see them and changed by their
owner, the images through `core.images` and the store of `core.files`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import sessionmaker

from api import schemas
from core import images, rulebook
from core.db import Employer, Launcher
from core.files import FileStore, new_key
from core.internship import Actor

# Where a stored image is served (api/web/images.py).
IMAGES = "/images/"


def initials(name: str) -> str:
    """ "Lee Ann Launcher" -> "LL": the first letters of the first and last words."""
    words = [w for w in name.split() if w[:1].isalnum()]
    if not words:
        return "?"
    first, last = words[0][0], words[-1][0] if len(words) > 1 else ""
    return (first + last).upper()


def image_url(key: str | None) -> str | None:
    return IMAGES + key if key else None


def profile_for(launcher: Launcher, viewer: Actor | None) -> schemas.LauncherProfileOut:
    """The launcher's profile as `viewer` (None: not signed in) may read it."""
    own = viewer is not None and viewer.id == launcher.id
    return launcher_profile(launcher, rulebook.sees_whole_profile(viewer, launcher.id), own)


def launcher_profile(
    launcher: Launcher, whole: bool, own: bool = False
) -> schemas.LauncherProfileOut:
    """The launcher's profile, every part (`whole`) or only those they made public (the
    others null); `own` adds which parts are public, for the launcher's own record."""
    shown = set(schemas.PROFILE_PARTS) if whole else set(launcher.public_parts or [])
    links = "links" in shown
    return schemas.LauncherProfileOut(
        headline=launcher.headline if "headline" in shown else None,
        school=launcher.school if "school" in shown else None,
        graduation_year=launcher.graduation_year if "school" in shown else None,
        website=launcher.website_url if links else None,
        linkedin=launcher.linkedin_url if links else None,
        github=launcher.github_url if links else None,
        skills=list(launcher.skills or []),
        avatar_url=image_url(launcher.avatar_key) if "avatar" in shown else None,
        initials=initials(launcher.name),
        public_parts=list(launcher.public_parts or []) if own else None,
        takes_invitations=launcher.takes_invitations if own else None,
    )


def company_profile(employer: Employer) -> schemas.CompanyProfileOut:
    return schemas.CompanyProfileOut(
        company=employer.company,
        website=employer.website_url,
        description=employer.description,
        logo_url=image_url(employer.logo_key),
        initials=initials(employer.company),
    )


# ---------------------------------------------------------------- changes

_LAUNCHER_COLUMNS = {
    "headline": "headline",
    "school": "school",
    "graduation_year": "graduation_year",
    "website": "website_url",
    "linkedin": "linkedin_url",
    "github": "github_url",
    "skills": "skills",
    "public_parts": "public_parts",
    "takes_invitations": "takes_invitations",
}
_COMPANY_COLUMNS = {"website": "website_url", "description": "description"}


def _values(changes: schemas.Strict, columns: dict[str, str]) -> dict[str, Any]:
    """The columns to write: only the fields sent; "" is None (cleared)."""
    values: dict[str, Any] = {}
    for name in changes.model_fields_set:
        value = getattr(changes, name)
        if name == "skills":
            value = value or []
        elif name == "public_parts":  # in the order the page lists them, once each
            value = [p for p in schemas.PROFILE_PARTS if p in (value or [])]
        elif name == "takes_invitations":
            value = value is not False  # cleared: the default, invitations welcome
        elif value == "":
            value = None
        values[columns[name]] = value
    return values


def change_launcher(
    sessions: sessionmaker, launcher_id: str, changes: schemas.LauncherProfileIn
) -> Launcher:
    """Write the fields sent; the launcher as saved."""
    with sessions.begin() as db:
        if values := _values(changes, _LAUNCHER_COLUMNS):
            db.execute(update(Launcher).where(Launcher.id == launcher_id).values(**values))
        return db.scalars(select(Launcher).where(Launcher.id == launcher_id)).one()


def change_company(
    sessions: sessionmaker, employer_id: str, changes: schemas.CompanyProfileIn
) -> Employer:
    with sessions.begin() as db:
        if values := _values(changes, _COMPANY_COLUMNS):
            db.execute(update(Employer).where(Employer.id == employer_id).values(**values))
        return db.scalars(select(Employer).where(Employer.id == employer_id)).one()


def prepare_image(data: bytes, shape: images.Shape, max_bytes: int) -> tuple[bytes, str]:
    """The stored form of an upload (`core.images.prepare`); ImageRefused says why not."""
    return images.prepare(data, shape, max_bytes)


def replace_image(
    sessions: sessionmaker,
    store: FileStore,
    account: type[Launcher] | type[Employer],
    account_id: str,
    prepared: tuple[bytes, str] | None,
) -> None:
    """Store a prepared image (None: remove the image) as the account's avatar or logo, then
    delete the one it replaces. The new file is written before the row names it, and deleted
    again if the row can't be written, so a row never names a missing file."""
    column = Launcher.avatar_key if account is Launcher else Employer.logo_key
    key = None
    if prepared is not None:
        encoded, extension = prepared
        key = new_key(extension)
        store.put(key, encoded)
    try:
        with sessions.begin() as db:
            old = db.scalar(select(column).where(account.id == account_id))
            db.execute(update(account).where(account.id == account_id).values({column: key}))
    except BaseException:
        if key:
            store.delete(key)
        raise
    if old and old != key:
        store.delete(old)

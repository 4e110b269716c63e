"""Time zones: each person reads every moment in their own (guessed by the browser at sign-up,
chosen in settings, UTC otherwise), and a date picked on a form ends at the end of that day in
the picker's zone.

The zone database is the `tzdata` package's where the system has none (slim images), so every
machine names the same zones.
"""

from __future__ import annotations

from datetime import date, datetime, time, tzinfo
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

UTC_NAME = "UTC"

# The database's legacy aliases ("US/Pacific", "Etc/GMT+8", "EST5EDT"...) stay readable but are
# not offered: people pick a place.
_REGIONS = (
    "Africa/",
    "America/",
    "Antarctica/",
    "Arctic/",
    "Asia/",
    "Atlantic/",
    "Australia/",
    "Europe/",
    "Indian/",
    "Pacific/",
)


@cache
def choices() -> tuple[str, ...]:
    """The zones a person may pick, by region and place ("America/Los_Angeles"), UTC first."""
    places = sorted(z for z in available_timezones() if z.startswith(_REGIONS))
    return (UTC_NAME, *places)


def offered(name: object) -> bool:
    """Whether it is one of the zones a person may pick (`choices`)."""
    return isinstance(name, str) and name in _offered()


@cache
def _offered() -> frozenset[str]:
    return frozenset(choices())


def known(name: str | None) -> bool:
    return bool(name) and (name == UTC_NAME or name in _names())


@cache
def _names() -> frozenset[str]:
    return frozenset(available_timezones())


def guessed(name: object) -> str:
    """A zone the browser guessed (static/zone.js), if it is one we know; UTC otherwise: a guess
    never refuses a form."""
    return name if isinstance(name, str) and offered(name) else UTC_NAME


@cache
def zone(name: str | None) -> tzinfo:
    """The zone of that name; UTC for none or a name the database doesn't know (a record made
    before a zone was retired reads in UTC rather than failing)."""
    if not name or name == UTC_NAME:
        return ZoneInfo(UTC_NAME)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(UTC_NAME)


def end_of_day(day: date, name: str | None) -> datetime:
    """The last minute of `day` in that zone (23:59 local, whatever its offset that day): a due
    date picked on a form."""
    return datetime.combine(day, time(23, 59), tzinfo=zone(name))

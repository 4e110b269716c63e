"""How amounts and moments read in emails, on pages and in the workflow's activity summaries.

Pure functions (no I/O, no clock): the workflow uses them too, so they must stay deterministic.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

CURRENCY_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£"}


def format_money(cents: int, currency: str) -> str:
    """An amount as people read it in emails and on pages: $1,234.50, or 1,234.50 CHF."""
    symbol = CURRENCY_SYMBOLS.get(currency.lower())
    amount = f"{cents / 100:,.2f}"
    return f"{symbol}{amount}" if symbol else f"{amount} {currency.upper()}"


def when(at: datetime | None, zone: tzinfo = UTC) -> str | None:
    """A moment as pages and emails show it, in the reader's zone and naming it:
    "Mar 14, 2027 17:00 PDT" (`core.zones.zone` gives a person's)."""
    if at is None:
        return None
    local = at.astimezone(zone)
    return f"{local:%b} {local.day}, {local:%Y %H:%M} {_zone_name(local)}"


def day(at: datetime | None, zone: tzinfo = UTC) -> str | None:
    """The date of a moment in the reader's zone: "Mar 14, 2027"."""
    if at is None:
        return None
    local = at.astimezone(zone)
    return f"{local:%b} {local.day}, {local:%Y}"


def _zone_name(local: datetime) -> str:
    """The zone's short name at that moment: "PST", "PDT", "IST", "UTC"; "UTC-03" where the
    zone database has only an offset ("-03")."""
    name = local.tzname() or "UTC"
    if name[0] in "+-":
        minutes = name[3:5]
        return f"UTC{name[:3]}" + (f":{minutes}" if minutes and minutes != "00" else "")
    return name


def plural(n: int, unit: str, units: str | None = None) -> str:
    """A count with its noun as people say it: "1 minute", "15 minutes", "0 minutes" (`units`
    for a plural that isn't the noun plus "s"). Every page, email and message counts with it."""
    return f"{n} {unit if n == 1 else (units or unit + 's')}"


def policy_duration(duration: timedelta) -> str:
    """A policy's duration as people read it, before TIME_SCALE: "36 hours", "7 days" (hours
    below two days). The workflow's notes and the terms of an internship say durations so."""
    hours = duration.total_seconds() / 3600
    return f"{hours:g} hours" if hours < 48 else f"{hours / 24:g} days"

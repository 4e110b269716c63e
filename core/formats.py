"""How amounts and moments read in emails, on pages and in the workflow's activity summaries.

Pure functions (no I/O, no clock): the workflow uses them too, so they must stay deterministic.
"""

from __future__ import annotations

from datetime import datetime, timedelta

CURRENCY_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£"}


def format_money(cents: int, currency: str) -> str:
    """An amount as people read it in emails and on pages: $1,234.50, or 1,234.50 CHF."""
    symbol = CURRENCY_SYMBOLS.get(currency.lower())
    amount = f"{cents / 100:,.2f}"
    return f"{symbol}{amount}" if symbol else f"{amount} {currency.upper()}"


def when(at: datetime | None) -> str | None:
    """A moment as emails show it."""
    return at.strftime("%Y-%m-%d %H:%M UTC") if at else None


def plural(n: int, unit: str, units: str | None = None) -> str:
    """A count with its noun as people say it: "1 minute", "15 minutes", "0 minutes" (`units`
    for a plural that isn't the noun plus "s"). Every page, email and message counts with it."""
    return f"{n} {unit if n == 1 else (units or unit + 's')}"


def policy_duration(duration: timedelta) -> str:
    """A policy's duration as people read it, before TIME_SCALE: "36 hours", "7 days" (hours
    below two days). The workflow's notes and the terms of an internship say durations so."""
    hours = duration.total_seconds() / 3600
    return f"{hours:g} hours" if hours < 48 else f"{hours / 24:g} days"

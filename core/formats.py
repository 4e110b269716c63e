"""How amounts and moments read in emails, on pages and in the workflow's activity summaries.

Pure functions (no I/O, no clock): the workflow uses them too, so they must stay deterministic.
"""

from __future__ import annotations

from datetime import datetime

CURRENCY_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£"}


def format_money(cents: int, currency: str) -> str:
    """An amount as people read it in emails and on pages: $1,234.50, or 1,234.50 CHF."""
    symbol = CURRENCY_SYMBOLS.get(currency.lower())
    amount = f"{cents / 100:,.2f}"
    return f"{symbol}{amount}" if symbol else f"{amount} {currency.upper()}"


def when(at: datetime | None) -> str | None:
    """A moment as emails show it."""
    return at.strftime("%Y-%m-%d %H:%M UTC") if at else None

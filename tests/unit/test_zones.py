"""Moments as people read them: in their own zone, named, across daylight-saving changes; and
a date picked on a form as the end of that day where the picker is."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from core import zones
from core.formats import day, when

LA, KOLKATA, LONDON = "America/Los_Angeles", "Asia/Kolkata", "Europe/London"


def utc(year: int, month: int, dom: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, dom, hour, minute, tzinfo=UTC)


def test_one_moment_reads_in_each_readers_zone_with_the_zone_named() -> None:
    at = utc(2026, 12, 20, 17, 0)
    assert when(at) == "Dec 20, 2026 17:00 UTC"
    assert when(at, zones.zone(LA)) == "Dec 20, 2026 09:00 PST"
    assert when(at, zones.zone(KOLKATA)) == "Dec 20, 2026 22:30 IST"
    # Where the zone database has only an offset, it is written as one from UTC.
    assert when(at, zones.zone("America/Sao_Paulo")) == "Dec 20, 2026 14:00 UTC-03"
    assert when(at, zones.zone("Asia/Kathmandu")) == "Dec 20, 2026 22:45 UTC+05:45"
    # Late in the evening in Los Angeles is already the next day in Kolkata.
    late = utc(2026, 12, 21, 7, 59)
    assert day(late, zones.zone(LA)) == "Dec 20, 2026"
    assert day(late, zones.zone(KOLKATA)) == "Dec 21, 2026"


@pytest.mark.parametrize(
    ("picked", "zone", "due", "reads"),
    [
        # Los Angeles moves to summer time on March 14, 2027: the day before ends at 07:59
        # UTC, that day at 06:59 UTC; each reads 23:59 there, named for its season.
        (date(2027, 3, 13), LA, utc(2027, 3, 14, 7, 59), "Mar 13, 2027 23:59 PST"),
        (date(2027, 3, 14), LA, utc(2027, 3, 15, 6, 59), "Mar 14, 2027 23:59 PDT"),
        # London goes back to winter time on October 31, 2027.
        (date(2027, 10, 30), LONDON, utc(2027, 10, 30, 22, 59), "Oct 30, 2027 23:59 BST"),
        (date(2027, 10, 31), LONDON, utc(2027, 10, 31, 23, 59), "Oct 31, 2027 23:59 GMT"),
        (date(2027, 3, 14), KOLKATA, utc(2027, 3, 14, 18, 29), "Mar 14, 2027 23:59 IST"),
        (date(2027, 3, 14), None, utc(2027, 3, 14, 23, 59), "Mar 14, 2027 23:59 UTC"),
    ],
)
def test_a_picked_date_ends_at_the_end_of_that_day_in_the_pickers_zone_across_dst(
    picked: date, zone: str | None, due: datetime, reads: str
) -> None:
    ends = zones.end_of_day(picked, zone)
    assert ends == due
    assert when(ends, zones.zone(zone)) == reads


def test_only_places_of_the_zone_database_are_offered_and_guesses_never_refuse() -> None:
    offered = zones.choices()
    assert offered[0] == "UTC" and {LA, KOLKATA, LONDON} <= set(offered)
    assert not {"US/Pacific", "EST5EDT", "Etc/GMT+8"} & set(offered)
    assert zones.known("US/Pacific")  # a legacy alias still reads, it is just not offered
    for bad in ("", "Mars/Olympus_Mons", "../../etc/passwd", None, 42):
        assert zones.guessed(bad) == "UTC"
        assert zones.zone(bad if isinstance(bad, str) else None) == ZoneInfo("UTC")
    assert zones.guessed(KOLKATA) == KOLKATA

"""The fit of a launcher to a posting: a score with reasons anyone can check."""

from __future__ import annotations

import pytest

from core.matching import Fit, Record, fit


@pytest.mark.parametrize(
    ("posting", "launcher", "record", "expected"),
    [
        # All skills, no record yet: skills in full, the record counts as average.
        (
            ["excel", "sql"],
            ["SQL", "excel", "python"],
            Record(),
            Fit(80, ["2 of 2 skills: excel, sql", "no completed internships yet"]),
        ),
        # Half the skills, always on time, rated 5 each time.
        (
            ["excel", "sql"],
            ["sql"],
            Record(completed=2, on_time=2, ratings=(5, 5)),
            Fit(
                70,
                [
                    "1 of 2 skills: sql",
                    "on time in 2 of 2 completed",
                    "rated 5.0 of 5 by 2 employers",
                ],
            ),
        ),
        # No shared skill, late once in two, rated 1 once: the lowest a record can drag.
        (
            ["writing"],
            ["excel"],
            Record(completed=2, on_time=1, ratings=(1,)),
            Fit(
                12, ["0 of 1 skills", "on time in 1 of 2 completed", "rated 1.0 of 5 by 1 employer"]
            ),
        ),
        # Completed but never rated: the rating part is average.
        (
            [],
            [],
            Record(completed=1, on_time=1),
            Fit(
                92,
                [
                    "the posting asks for no particular skills",
                    "on time in 1 of 1 completed",
                    "not rated yet",
                ],
            ),
        ),
    ],
)
def test_fit(posting: list[str], launcher: list[str], record: Record, expected: Fit) -> None:
    assert fit(posting, launcher, record) == expected


def test_skills_outweigh_the_record() -> None:
    newcomer_with_skills = fit(["excel", "sql"], ["excel", "sql"], Record())
    veteran_without = fit(["excel", "sql"], [], Record(completed=9, on_time=9, ratings=(5,) * 9))
    assert newcomer_with_skills.score > veteran_without.score

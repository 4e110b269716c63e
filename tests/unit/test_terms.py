"""The terms of an internship (`core.terms`): built from its posting alone, hashed the same way
wherever they are computed (the API, the workflow's validators), and said as people read them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core import errors
from core.formats import policy_duration
from core.internship import InternshipState, Posting, Stage
from core.settings import Settings
from core.terms import (
    TERMS_CHANGED,
    acceptance_refusal,
    accepted_note,
    email_context,
    terms_hash,
    terms_in,
    terms_of,
)

POLICY = Settings(_env_file=None).policy()  # type: ignore[call-arg]
# The hash of the default terms on a $400, 7-day posting: an acceptance recorded on a timeline
# names it, so it may never change for the same terms (a change here needs a reason).
DEFAULT_HASH = "5d197fb3ce80c091899ede47a8346554dcad1c43855b1b37b5077900f25014ff"


def posting(**changes: Any) -> Posting:
    base = Posting(
        internship_id="int-1",
        employer_id="emp-1",
        company="Acme",
        title="Blog article",
        description="1,200 words",
        category="marketing",
        skills=["writing"],
        estimated_hours=10,
        fee_cents=40000,
        currency="usd",
        duration_days=7,
        policy=POLICY,
        nonce="n1",
    )
    return replace(base, **changes)


def with_policy(**changes: Any) -> Posting:
    return posting(policy=replace(POLICY, **changes))


def test_equal_terms_hash_the_same_whatever_else_the_postings_say() -> None:
    assert terms_hash(posting()) == terms_hash(posting()) == DEFAULT_HASH
    other = posting(
        internship_id="int-2",
        employer_id="emp-2",
        title="Another article",
        skills=["seo"],
        nonce="n2",
        invitation_only=True,
    )
    assert terms_hash(other) == DEFAULT_HASH
    # What the terms don't promise (reminders, the demo clock's TIME_SCALE) changes nothing.
    for quiet in (
        with_policy(time_scale=86400),
        with_policy(applicants_reminder=timedelta(days=1)),
        with_policy(review_reminder=timedelta(days=2)),
        with_policy(dispute_reminder=timedelta(days=1)),
        with_policy(max_open_applications=3),
    ):
        assert terms_hash(quiet) == DEFAULT_HASH


@pytest.mark.parametrize(
    "changed",
    [
        posting(fee_cents=40100),
        posting(currency="eur"),
        posting(duration_days=14),
        with_policy(launcher_share_percent=80),
        with_policy(review_auto_approve=timedelta(days=5)),
        with_policy(max_revision_rounds=3),
        with_policy(revision_time=timedelta(days=2)),
        with_policy(max_extension=timedelta(days=7)),
        with_policy(overdue_escalation=timedelta(days=4)),
        with_policy(overdue_cancel=timedelta(days=11)),
        with_policy(dispute_decision=timedelta(days=5)),
    ],
    ids=lambda p: "changed",
)
def test_terms_hash_differently_when_any_term_differs(changed: Posting) -> None:
    assert terms_hash(changed) != DEFAULT_HASH


def test_the_rules_of_internships_started_before_delivered_work_was_kept_differ() -> None:
    before = terms_of(posting(), delivered_work_kept=False)
    assert before.hash != DEFAULT_HASH and before.dispute_decision is None
    assert before.values()["dispute_default_if_delivered"] is None
    state = InternshipState(posting=posting(), stage=Stage.POSTED, posted_at=datetime.now(UTC))
    assert terms_in(state) == before
    assert terms_in(replace(state, delivered_work_kept=True)).hash == DEFAULT_HASH


def test_the_values_are_plain_and_durations_in_seconds() -> None:
    values = terms_of(posting()).values()
    assert values == {
        "fee_cents": 40000,
        "currency": "usd",
        "launcher_share_percent": 90,
        "launcher_share_cents": 36000,
        "platform_fee_cents": 4000,
        "duration_days": 7,
        "review_auto_approve_seconds": 7 * 86400,
        "max_revision_rounds": 2,
        "revision_time_seconds": 3 * 86400,
        "max_extension_seconds": 14 * 86400,
        "overdue_escalation_seconds": 3 * 86400,
        "overdue_cancel_seconds": 10 * 86400,
        "delivered_work_refunded_by_ops_only": True,
        "dispute_decision_seconds": 7 * 86400,
        "dispute_default_if_delivered": "pay_launcher",
        "dispute_default_if_not_delivered": "refund",
    }


def test_the_lines_say_the_terms_as_people_read_them() -> None:
    lines = dict(terms_of(posting()).lines())
    assert list(lines) == [
        "Fee",
        "Launcher's share",
        "Platform fee",
        "Time to deliver",
        "Review",
        "Revisions",
        "Extensions",
        "Late work",
        "Disputes",
        "Splits",
        "Refunds",
    ]
    assert lines["Fee"] == "$400.00, charged to the employer's card at kickoff."
    assert lines["Launcher's share"] == (
        "90% of the fee, $360.00, paid to the launcher once the work is approved."
    )
    assert lines["Platform fee"] == "$40.00 (10% of the fee), kept by the platform."
    assert lines["Time to deliver"] == "7 days from kickoff."
    assert "within 7 days; work not reviewed by then is approved automatically" in lines["Review"]
    assert (
        "up to 2 revision rounds, each giving the launcher at least 3 days" in (lines["Revisions"])
    )
    assert "up to 14 days past the original one" in lines["Extensions"]
    assert (
        "step in 3 days after it, and 10 days after it the internship is cancelled"
        in (lines["Late work"])
    )
    assert (
        "If they have not decided within 7 days: if work was delivered, the launcher is "
        in (lines["Disputes"])
    )
    assert lines["Refunds"].startswith("Until work is delivered, the employer may cancel")
    assert "only ops can refund it" in lines["Refunds"]


def test_the_lines_say_durations_as_the_workflow_does_and_counts_as_people_do() -> None:
    short = with_policy(
        revision_time=timedelta(hours=36), max_revision_rounds=1, dispute_decision=timedelta(2)
    )
    lines = dict(terms_of(replace(short, fee_cents=12345, currency="chf")).lines())
    assert (
        "up to 1 revision round, each giving the launcher at least 36 hours" in (lines["Revisions"])
    )
    assert "within 48 hours" not in lines["Disputes"] and "within 2 days" in lines["Disputes"]
    assert lines["Fee"].startswith("123.45 CHF")
    assert policy_duration(timedelta(hours=47)) == "47 hours"
    assert policy_duration(timedelta(days=2)) == "2 days"
    none = dict(terms_of(with_policy(max_revision_rounds=0)).lines())
    assert none["Revisions"].startswith("No revision rounds")


def test_internships_started_before_delivered_work_was_kept_say_their_own_rules() -> None:
    lines = dict(terms_of(posting(), delivered_work_kept=False).lines())
    assert "with no deadline" in lines["Disputes"]
    assert lines["Refunds"] == (
        "Until the work is approved, the employer may cancel and is refunded what was charged "
        "in full."
    )
    assert "ops decide instead" not in lines["Late work"]


def test_acceptance_is_of_this_internship_s_terms() -> None:
    state = InternshipState(
        posting=posting(), stage=Stage.POSTED, posted_at=datetime.now(UTC), delivered_work_kept=True
    )
    assert acceptance_refusal(state, "") is None  # requests from before: nothing to check
    assert acceptance_refusal(state, DEFAULT_HASH) is None
    refused = acceptance_refusal(state, terms_hash(with_policy(launcher_share_percent=80)))
    assert refused is not None
    assert (refused.kind, refused.code) == (errors.CONFLICT, TERMS_CHANGED)
    assert accepted_note(DEFAULT_HASH) == "Accepted the terms sha256:5d197fb3ce80c091"


def test_an_email_lists_the_lines_and_the_ref() -> None:
    terms = terms_of(posting())
    said = email_context(terms)
    assert said == {"lines": terms.lines(), "ref": DEFAULT_HASH[:16]}

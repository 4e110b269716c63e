"""Who reads a document (`rulebook.may_read_document`) and how its number is printed."""

from __future__ import annotations

import pytest

from core.documents import display_number
from core.internship import Actor, MemberRole, Role
from core.rulebook import may_read_document

pytestmark = pytest.mark.unit

ORG, LEE = "org_1", "lnc_1"


def member(role: MemberRole, org: str = ORG) -> Actor:
    return Actor(Role.EMPLOYER, org, member_id="m", member_role=role)


@pytest.mark.parametrize(
    ("actor", "receipt", "statement"),
    [
        (Actor(Role.OPS, "ops"), True, True),
        (member(MemberRole.ADMIN), True, True),
        (member(MemberRole.HIRING_MANAGER), True, True),
        (member(MemberRole.FINANCE), True, True),
        (member(MemberRole.VIEWER), False, False),
        (Actor(Role.EMPLOYER, ORG), True, True),  # from before members: the founder, an admin
        (member(MemberRole.ADMIN, "org_2"), False, False),
        (Actor(Role.LAUNCHER, LEE), False, True),
        (Actor(Role.LAUNCHER, "lnc_2"), False, False),
    ],
)
def test_who_reads_a_receipt_and_a_statement(actor: Actor, receipt: bool, statement: bool) -> None:
    assert may_read_document(actor, ORG, "receipt", LEE) is receipt
    assert may_read_document(actor, ORG, "credit_note", LEE) is receipt
    assert may_read_document(actor, ORG, "statement", LEE) is statement


def test_numbers_print_with_the_kind_and_six_digits() -> None:
    assert display_number("receipt", 42) == "R-000042"
    assert display_number("credit_note", 43) == "CN-000043"
    assert display_number("statement", 1234567) == "S-1234567"

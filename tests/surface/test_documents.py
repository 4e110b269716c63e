"""Receipts, credit notes and statements as their readers meet them: the Billing page (members
who read the money), each document's page and PDF (its text read back with pdftotext), the API,
the billing details form (admins only), and a launcher's statements and yearly earnings."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime

from sqlalchemy import update

from core.db import Document, Employer, Launcher
from core.documents import issue_documents
from core.internship import MemberRole, Money, Role, Stage
from tests.surface.conftest import Surface


def pdf_text(data: bytes) -> str:
    assert data.startswith(b"%PDF"), data[:40]
    return subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=data, capture_output=True, check=True
    ).stdout.decode()


def paid_internship(surface: Surface) -> tuple[Employer, Launcher, list[Document]]:
    """An organisation with billing details whose internship was charged and paid out, its
    receipt and statement issued as the projection issues them."""
    org = surface.employer()
    with surface.sessions.begin() as db:
        db.execute(
            update(Employer)
            .where(Employer.id == org.id)
            .values(
                billing_name="Northwind Labs Ltd",
                billing_address="1 Harbour Street\nBristol BS1 4AA",
                tax_id="GB123456789",
            )
        )
    lee = surface.launcher("Lee Launcher")
    money = Money("pi_" + org.id, 40000, "tr_" + org.id, 36000)
    state = surface.internship(org, Stage.PAID, launcher=lee, money=money)
    with surface.sessions.begin() as db:
        docs = issue_documents(db, state, datetime(2026, 3, 2, tzinfo=UTC))
    return org, lee, docs


async def test_billing_page_and_the_documents_pdf_carry_number_amount_and_parties(
    surface: Surface,
) -> None:
    org, lee, (receipt, statement) = paid_internship(surface)
    assert (receipt.number, statement.number) == (1, 2)
    admin = await surface.signed_in(org.email)
    billing = (await admin.get("/billing")).text
    assert "Receipt R-000001" in billing and "Payout statement S-000002" in billing
    assert f'href="/documents/{receipt.id}.pdf"' in billing
    assert "Save the billing details" in billing
    page = (await admin.get(f"/documents/{receipt.id}")).text
    assert "R-000001" in page and "$400.00" in page and "GB123456789" in page
    pdf = await admin.get(f"/documents/{receipt.id}.pdf")
    assert pdf.headers["content-type"] == "application/pdf"
    assert "attachment" in pdf.headers["content-disposition"]
    text = pdf_text(pdf.content)
    for expected in (
        "Receipt",
        "R-000001",
        "$400.00",
        "Northwind Labs Ltd",
        "Bristol",
        "GB123456789",
    ):
        assert expected in text, (expected, text)
    statement_text = pdf_text((await admin.get(f"/documents/{statement.id}.pdf")).content)
    for expected in ("S-000002", "$360.00", "Lee Launcher", "Northwind Labs Ltd"):
        assert expected in statement_text, (expected, statement_text)


async def test_the_api_lists_and_serves_documents_to_those_who_read_the_money(
    surface: Surface,
) -> None:
    org, lee, (receipt, statement) = paid_internship(surface)
    finance = surface.member(org, MemberRole.FINANCE)
    viewer = surface.member(org, MemberRole.VIEWER, name="Vic Viewer")
    async with surface.client(surface.token(Role.EMPLOYER, finance.id)) as http:
        listed = (await http.get("/v1/receipts")).json()
        assert [d["display_number"] for d in listed["items"]] == ["S-000002", "R-000001"]
        one = (await http.get(f"/v1/documents/{receipt.id}")).json()
        assert (one["amount_cents"], one["billing_name"], one["tax_id"]) == (
            40000,
            "Northwind Labs Ltd",
            "GB123456789",
        )
        pdf = await http.get(f"/v1/documents/{receipt.id}", headers={"Accept": "application/pdf"})
        assert "R-000001" in pdf_text(pdf.content)
    async with surface.client(surface.token(Role.EMPLOYER, viewer.id)) as http:
        assert (await http.get("/v1/receipts")).status_code == 403
        assert (await http.get(f"/v1/documents/{receipt.id}")).status_code == 404
    async with surface.client(surface.token(Role.LAUNCHER, lee.id)) as http:
        mine = (await http.get("/v1/receipts")).json()["items"]
        assert [d["id"] for d in mine] == [statement.id]
        assert (await http.get(f"/v1/documents/{receipt.id}")).status_code == 404
        assert (await http.get(f"/v1/documents/{statement.id}")).status_code == 200


async def test_only_admins_change_the_billing_details_and_documents_keep_theirs(
    surface: Surface,
) -> None:
    org, lee, (receipt, _) = paid_internship(surface)
    admin = await surface.signed_in(org.email)
    saved = await admin.submit(
        "/billing",
        "/billing/details",
        billing_name="Northwind Holdings",
        billing_address="2 Quay Road\nLeeds",
        tax_id="GB999",
    )
    assert saved.status_code == 303
    assert "Northwind Holdings" in (await admin.get("/billing")).text
    # The receipt issued before keeps the details it was issued with.
    assert "Northwind Labs Ltd" in (await admin.get(f"/documents/{receipt.id}")).text
    finance = surface.member(org, MemberRole.FINANCE)
    fay = await surface.signed_in(finance.email)
    page = (await fay.get("/billing")).text
    assert "Northwind Holdings" in page and "Save the billing details" not in page
    refused = await fay.submit("/billing", "/billing/details", billing_name="Fay's Company")
    assert refused.status_code in (303, 403)
    with surface.sessions() as db:
        assert db.get(Employer, org.id).billing_name == "Northwind Holdings"  # type: ignore[union-attr]


async def test_a_launcher_sees_their_statements_and_exports_a_years_earnings(
    surface: Surface,
) -> None:
    org, lee, (receipt, statement) = paid_internship(surface)
    browser = await surface.signed_in(lee.email)
    payouts = (await browser.get("/payouts")).text
    assert "S-000002" in payouts and "/payouts/earnings-2026.csv" in payouts
    assert (await browser.get(f"/documents/{receipt.id}")).status_code == 404
    csv = await browser.get("/payouts/earnings-2026.csv")
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.splitlines()
    assert lines[1].startswith(
        "2026-03-02,S-000002,Market research on pet food,Northwind Labs Ltd,360.00,USD"
    )
    assert lines[-1] == "total,,,,360.00,USD"
    assert (await browser.get("/payouts/earnings-2025.csv")).text.splitlines()[1:] == []


async def test_the_api_gives_a_years_earnings_as_the_pages_csv_or_as_json(
    surface: Surface,
) -> None:
    org, lee, (_, statement) = paid_internship(surface)
    browser = await surface.signed_in(lee.email)
    page_csv = (await browser.get("/payouts/earnings-2026.csv")).text
    async with surface.client(surface.token(Role.LAUNCHER, lee.id)) as http:
        csv = await http.get("/v1/launchers/me/earnings", params={"year": 2026})
        assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
        assert csv.headers["content-disposition"] == 'attachment; filename="earnings-2026.csv"'
        assert csv.text == page_csv and csv.text.splitlines()[-1] == "total,,,,360.00,USD"
        as_json = await http.get(
            "/v1/launchers/me/earnings",
            params={"year": 2026},
            headers={"Accept": "application/json"},
        )
        body = as_json.json()
        assert as_json.headers["content-type"] == "application/json"
        assert body["year"] == 2026
        assert [d["display_number"] for d in body["statements"]] == ["S-000002"]
        assert body["statements"][0]["id"] == statement.id
        assert body["totals"] == [{"currency": "usd", "amount_cents": 36000}]
        empty = await http.get(
            "/v1/launchers/me/earnings",
            params={"year": 2025},
            headers={"Accept": "application/json"},
        )
        assert empty.json() == {"year": 2025, "statements": [], "totals": []}
        this_year = await http.get("/v1/launchers/me/earnings")  # this year by default
        this = datetime.now(UTC).year
        assert f'filename="earnings-{this}.csv"' in this_year.headers["content-disposition"]
        too_early = await http.get("/v1/launchers/me/earnings", params={"year": 1999})
        assert too_early.status_code == 422
        assert too_early.json()["error"]["details"]["errors"][0]["field"] == "query.year"
    async with surface.client(surface.token(Role.EMPLOYER, org.id)) as http:
        refused = await http.get("/v1/launchers/me/earnings")
        assert refused.status_code == 403


async def test_a_cursor_past_any_id_lists_from_the_newest(surface: Surface) -> None:
    """A client's cursor larger than any id (Postgres can't even compare it) is no bound."""
    async with surface.client(surface.settings.ops_api_token) as http:
        first = await http.get("/v1/receipts", params={"limit": 5})
        huge = await http.get("/v1/receipts", params={"limit": 5, "cursor": "418670092770490"})
    assert first.status_code == huge.status_code == 200, huge.text
    assert huge.json()["items"] == first.json()["items"]

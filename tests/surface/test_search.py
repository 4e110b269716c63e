"""Searching: launchers search open postings by words, category, skills, fee and duration on
the postings page and the JSON list; ops find any internship by id, title, a party's name or
email, stage and posting days, a page at a time. A search that can't run says what to fix,
beside the field, with what was typed kept; no input is full-text query syntax."""

from __future__ import annotations

import html
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.db import Employer, Launcher
from core.internship import InternshipState, Role, Stage
from tests.surface.conftest import Surface


def tag() -> str:
    """A word no other test's postings have (the surface tests share one database)."""
    return "zq" + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:10])


def listed(page: str) -> set[str]:
    return set(re.findall(r'href="/internships/([A-Za-z0-9_-]+)"', page))


def iid(state: InternshipState) -> str:
    return state.posting.internship_id


def value_of(page: str, name: str) -> str:
    found = re.search(rf'<input id="f-{name}" name="{name}" type="[a-z]+" value="([^"]*)"', page)
    assert found, f"no {name} field"
    return html.unescape(found.group(1))


def error_beside(page: str, name: str) -> str:
    found = re.search(rf'<span class="error-text" id="f-{name}-error">([^<]*)</span>', page)
    return html.unescape(found.group(1)) if found else ""


@pytest.fixture
def postings(surface: Surface) -> dict[str, Any]:
    """Open postings (and one matched) whose titles share a word of their own."""
    word = tag()
    employer = surface.employer()

    def post(title: str, stage: Stage = Stage.POSTED, **fields: Any) -> str:
        posting = {"title": f"{title} {word}", **fields}
        return iid(surface.internship(employer, stage, posting=posting))

    return {
        "word": word,
        "designer": post(
            "Brand designer for a bakery",
            description="Logos and a small style guide.",
            category="marketing",
            skills=["figma", "branding"],
            fee_cents=30000,
            duration_days=7,
        ),
        "sheets": post(
            "Spreadsheet cleanup",
            description="Tidy the sales pipeline in a spreadsheet.",
            category="sales",
            skills=["excel"],
            fee_cents=60000,
            duration_days=21,
        ),
        "survey": post(
            "Customer survey",
            description="Design and send a survey about our design of the store.",
            category="marketing",
            skills=["research", "figma"],
            fee_cents=90000,
            duration_days=14,
        ),
        "matched": post("Brand designer, already matched", Stage.MATCHED),
    }


async def launcher_browser(surface: Surface) -> Any:
    return await surface.signed_in(surface.launcher().email)


# ---------------------------------------------------------------- the postings page


async def test_launchers_search_postings_by_words_in_the_title_and_description(
    surface: Surface, postings: dict[str, Any]
) -> None:
    browser = await launcher_browser(surface)
    word = postings["word"]
    found = await browser.get(f"/postings?q=design+{word}")
    assert found.status_code == 200
    # "design" finds the designer (title, by prefix) and the survey (its description); the
    # matched internship is no posting any more.
    assert listed(found.text) == {postings["designer"], postings["survey"]}
    assert value_of(found.text, "q") == f"design {word}"  # the search stays in the form
    assert "2 open postings" in found.text
    everything = listed((await browser.get(f"/postings?q={word}")).text)
    assert everything == {postings["designer"], postings["sheets"], postings["survey"]}
    stemmed = listed((await browser.get(f"/postings?q=spreadsheets+{word}")).text)
    assert stemmed == {postings["sheets"]}


async def test_launchers_search_postings_by_category_skills_fee_and_duration(
    surface: Surface, postings: dict[str, Any]
) -> None:
    browser = await launcher_browser(surface)
    word = postings["word"]

    async def search(query: str) -> set[str]:
        answer = await browser.get(f"/postings?q={word}&{query}")
        assert answer.status_code == 200, answer.text
        return listed(answer.text)

    assert await search("category=marketing") == {postings["designer"], postings["survey"]}
    assert await search("skills=figma") == {postings["designer"], postings["survey"]}
    assert await search("skills=figma,+Research") == {postings["survey"]}
    assert await search("fee_min=500&fee_max=$900.00") == {postings["sheets"], postings["survey"]}
    assert await search("fee_max=400") == {postings["designer"]}
    assert await search("duration_max=14") == {postings["designer"], postings["survey"]}
    assert await search("category=marketing&skills=figma&fee_min=400&duration_max=14") == {
        postings["survey"]
    }
    page = (await browser.get(f"/postings?q={word}&category=sales&fee_min=500")).text
    assert 'value="sales" selected' in page and value_of(page, "fee_min") == "500"


async def test_a_search_that_cant_run_says_what_to_fix_beside_the_field_and_keeps_it(
    surface: Surface, postings: dict[str, Any]
) -> None:
    browser = await launcher_browser(surface)
    word = postings["word"]
    bad = await browser.get(f"/postings?q={word}&fee_min=cheap&skills=figma")
    assert bad.status_code == 422
    assert "Enter an amount in dollars" in error_beside(bad.text, "fee_min")
    assert value_of(bad.text, "fee_min") == "cheap" and value_of(bad.text, "skills") == "figma"
    assert value_of(bad.text, "q") == word and not listed(bad.text)

    upside_down = await browser.get(f"/postings?q={word}&fee_min=900&fee_max=100")
    assert upside_down.status_code == 422
    assert "below the lowest" in error_beside(upside_down.text, "fee_max")
    assert value_of(upside_down.text, "fee_min") == "900"

    unknown = await browser.get("/postings?category=astrology")
    assert unknown.status_code == 422
    assert "Choose one of the categories" in unknown.text
    days = await browser.get("/postings?duration_max=a+week")
    assert days.status_code == 422 and "number of days" in error_beside(days.text, "duration_max")


@pytest.mark.parametrize("query", ['"', "AND(", "design*", "NEAR(a b)", "'; --", "-", "é…"])
async def test_no_typed_words_are_query_syntax(
    surface: Surface, postings: dict[str, Any], query: str
) -> None:
    browser = await launcher_browser(surface)
    page = await browser.http.get("/postings", params={"q": query})
    assert page.status_code == 200
    async with surface.client(surface.token(Role.LAUNCHER, surface.launcher().id)) as http:
        answer = await http.get("/v1/internships", params={"q": query})
    assert answer.status_code == 200


async def test_with_no_search_the_postings_page_lists_open_postings_as_before(
    surface: Surface, postings: dict[str, Any]
) -> None:
    browser = await launcher_browser(surface)
    page = (await browser.get("/postings")).text
    assert {postings["designer"], postings["sheets"], postings["survey"]} <= listed(page)
    assert postings["matched"] not in listed(page)
    assert "Clear the search" not in page


# ---------------------------------------------------------------- the JSON list


async def test_the_json_list_searches_with_the_same_criteria(
    surface: Surface, postings: dict[str, Any]
) -> None:
    word = postings["word"]
    async with surface.client(surface.token(Role.LAUNCHER, surface.launcher().id)) as http:

        async def ids(**params: Any) -> set[str]:
            answer = await http.get("/v1/internships", params={"q": word, **params})
            assert answer.status_code == 200, answer.text
            return {i["id"] for i in answer.json()["items"]}

        assert await ids(q=f"designers {word}") == {postings["designer"], postings["survey"]}
        assert await ids(category="marketing", skill=["figma", "research"]) == {postings["survey"]}
        assert await ids(fee_min_cents=50000, fee_max_cents=70000) == {postings["sheets"]}
        assert await ids(duration_min_days=10, duration_max_days=14) == {postings["survey"]}
        first = (await http.get("/v1/internships", params={"q": word, "limit": 2})).json()
        rest = await http.get(
            "/v1/internships", params={"q": word, "limit": 2, "cursor": first["next_cursor"]}
        )
        paged = [i["id"] for i in first["items"] + rest.json()["items"]]
        assert len(paged) == 3 and set(paged) == await ids()

        upside_down = await http.get(
            "/v1/internships", params={"fee_min_cents": 900, "fee_max_cents": 100}
        )
        unknown = await http.get("/v1/internships", params={"category": "astrology"})
        negative = await http.get("/v1/internships", params={"fee_min_cents": -1})
        too_many = await http.get("/v1/internships", params={"limit": 1000})
    assert upside_down.status_code == 422
    error = upside_down.json()["error"]
    assert error["code"] == "invalid_request" and error["details"] == {"field": "fee_max_cents"}
    assert "fee_max_cents: The highest fee is below the lowest" in error["message"]
    assert unknown.status_code == 422 and "category" in unknown.json()["error"]["message"]
    assert negative.status_code == 422 and too_many.status_code == 422


async def test_the_search_parameters_are_in_the_openapi_document(surface: Surface) -> None:
    async with surface.client() as http:
        doc = (await http.get("/openapi.json")).json()
    for path, extra in (("/v1/internships", "q"), ("/v1/ops/internships", "q")):
        names = {p["name"] for p in doc["paths"][path]["get"]["parameters"]}
        assert {extra, "category", "skill", "fee_min_cents", "fee_max_cents"} <= names
        assert {"duration_min_days", "duration_max_days", "stage", "posted_from"} <= names
        assert {"posted_to", "limit", "cursor"} <= names
        assert "422" in doc["paths"][path]["get"]["responses"]


# ---------------------------------------------------------------- ops


@pytest.fixture
def world(surface: Surface) -> dict[str, Any]:
    """Internships of two employers, one launcher at work on several, posted on known days."""
    word = tag()
    acme, other = surface.employer(), surface.employer()
    lee = surface.launcher()
    with surface.sessions.begin() as db:
        found = db.get(Employer, acme.id)
        assert found is not None
        found.name = f"Ada {word}"
        person = db.get(Launcher, lee.id)
        assert person is not None
        person.email = f"lee.{word}@example.org"
    day = datetime(2026, 3, 10, 12, tzinfo=UTC)

    def made(employer: Employer, stage: Stage, title: str, days: int, **kw: Any) -> str:
        state = surface.internship(
            employer, stage, posting={"title": title}, posted_at=day + timedelta(days=days), **kw
        )
        return iid(state)

    return {
        "word": word,
        "email": f"lee.{word}@example.org",
        "early": made(acme, Stage.COMPLETED, f"Pricing study {word}", 0, launcher=lee),
        "middle": made(other, Stage.IN_PROGRESS, f"Logo refresh {word}", 5, launcher=lee),
        "late": made(acme, Stage.POSTED, f"Market sizing {word}", 10),
        "unrelated": made(other, Stage.POSTED, "Something else entirely", 10),
    }


async def ops_browser(surface: Surface) -> Any:
    return await surface.signed_in(surface.settings.ops_email)


async def test_ops_find_an_internship_by_its_launchers_email(
    surface: Surface, world: dict[str, Any]
) -> None:
    browser = await ops_browser(surface)
    found = await browser.http.get("/ops/internships", params={"q": world["email"].upper()})
    assert found.status_code == 200
    assert listed(found.text) == {world["early"], world["middle"]}
    assert value_of(found.text, "q") == world["email"].upper()
    assert world["email"] in found.text  # who the launcher is, on each row
    part = await browser.http.get("/ops/internships", params={"q": f"lee.{world['word']}"})
    assert listed(part.text) == {world["early"], world["middle"]}


async def test_ops_find_internships_by_id_title_employer_name_stage_and_days(
    surface: Surface, world: dict[str, Any]
) -> None:
    browser = await ops_browser(surface)
    word = world["word"]

    async def search(**params: str) -> set[str]:
        answer = await browser.http.get("/ops/internships", params=params)
        assert answer.status_code == 200, answer.text
        return listed(answer.text)

    assert await search(q=world["middle"]) == {world["middle"]}
    assert await search(q=f"pricing {word}") == {world["early"]}
    assert await search(q=f"Ada {word}") == {world["early"], world["late"]}
    assert await search(q=word, stage="in_progress") == {world["middle"]}
    assert await search(q=word, posted_from="2026-03-12", posted_to="2026-03-15") == {
        world["middle"]
    }
    assert await search(q=word, posted_to="2026-03-10") == {world["early"]}
    assert world["unrelated"] not in await search(q=word)


async def test_ops_page_through_the_results(surface: Surface, world: dict[str, Any]) -> None:
    employer = surface.employer()
    word = tag()
    made = {
        iid(surface.internship(employer, Stage.POSTED, posting={"title": f"Batch {word}"}))
        for _ in range(55)
    }
    browser = await ops_browser(surface)
    first = await browser.http.get("/ops/internships", params={"q": word, "stage": "posted"})
    assert len(listed(first.text)) == 50
    more = re.search(r'<a href="([^"]+)" rel="next">Next page</a>', first.text)
    assert more, "no link to the next page"
    second = await browser.get(html.unescape(more.group(1)))
    assert second.status_code == 200
    assert listed(first.text) | listed(second.text) == made
    assert len(listed(second.text)) == 5 and 'rel="next"' not in second.text
    assert value_of(second.text, "q") == word  # the search goes with the page
    async with surface.client(surface.token(Role.EMPLOYER, employer.id)) as http:
        assert (await http.get("/v1/internships", params={"limit": 101})).status_code == 422


async def test_ops_search_that_cant_run_says_what_to_fix(surface: Surface) -> None:
    browser = await ops_browser(surface)
    bad = await browser.http.get(
        "/ops/internships",
        params={"q": "x", "posted_from": "2026-05-01", "posted_to": "2026-04-01"},
    )
    assert bad.status_code == 422 and "before the first" in error_beside(bad.text, "posted_to")
    assert value_of(bad.text, "posted_from") == "2026-05-01"
    stage = await browser.http.get("/ops/internships", params={"stage": "lost"})
    assert stage.status_code == 422 and "Choose one of the stages" in stage.text
    cursor = await browser.http.get("/ops/internships", params={"cursor": "bm90LWEtY3Vyc29y"})
    assert cursor.status_code == 422 and "search again" in cursor.text


async def test_ops_reach_the_search_from_their_menu_and_queue(surface: Surface) -> None:
    browser = await ops_browser(surface)
    queue = (await browser.get("/ops")).text
    assert queue.count('href="/ops/internships"') == 2  # the menu and the queue


async def test_only_ops_search_every_internship(surface: Surface, world: dict[str, Any]) -> None:
    launcher = await launcher_browser(surface)
    refused = await launcher.http.get("/ops/internships", params={"q": world["email"]})
    assert refused.status_code == 303 and refused.headers["location"] == "/dashboard"
    lee = surface.launcher()
    async with surface.client(surface.token(Role.LAUNCHER, lee.id)) as http:
        json_refused = await http.get("/v1/ops/internships", params={"q": world["email"]})
        # Words are words for a launcher: an email finds no postings by its owner.
        as_words = await http.get("/v1/internships", params={"q": world["email"]})
    assert json_refused.status_code == 403
    assert as_words.status_code == 200 and as_words.json()["items"] == []
    async with surface.client("ops-surface-token") as http:
        found = await http.get("/v1/ops/internships", params={"q": world["email"]})
        pages = await http.get("/v1/ops/internships", params={"q": world["word"], "limit": 1})
    assert {i["id"] for i in found.json()["items"]} == {world["early"], world["middle"]}
    assert pages.json()["next_cursor"] and len(pages.json()["items"]) == 1

"""Hostile input is refused at the edge with a 4xx that says what to fix, and changes nothing.

Runs on the session's database (SQLite, or Postgres with DATABASE_URL): a NUL that Postgres
would refuse must never reach the workflow or the projection.
"""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from core.settings import Settings
from dev.harness import free_port
from tests.conftest import OPS_TOKEN, Api
from tests.stack.test_api import (
    ACCEPT,
    POSTING,
    act,
    auth,
    employer,
    error_of,
    launcher,
    listed,
    ok,
    post,
)

OPS = auth(OPS_TOKEN)


async def only_valid_posting_listed(api: Api, emp: dict[str, Any]) -> None:
    """A valid posting afterwards is the employer's only one: the refused one started nothing."""
    valid = await post(api, emp)
    assert [i["id"] for i in await listed(api, auth(emp["api_token"]), 1)] == [valid["id"]]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/internships", {**POSTING, "title": "a\u0000b"}, "title"),
        ("/v1/internships", {**POSTING, "description": "bell \u0007 here"}, "description"),
        ("/v1/internships", {**POSTING, "title": "two\nlines"}, "title"),
        ("/v1/internships", {**POSTING, "skills": ["ok", "b\u0000d"]}, "skills.1"),
        ("/v1/internships", {**POSTING, "estimated_hours": "10"}, "estimated_hours"),
        ("/v1/internships", {**POSTING, "fee_cents": True}, "fee_cents"),
        ("/v1/internships", {**POSTING, "duration_days": 7.5}, "duration_days"),
    ],
)
async def test_control_characters_and_loose_types_are_422_and_start_nothing(
    api: Api, path: str, body: dict[str, Any], field: str
) -> None:
    emp = await employer(api)
    error = error_of(await api.http.post(path, json=body, headers=auth(emp["api_token"])), 422)
    assert error["details"]["errors"][0]["field"] == field, error
    await only_valid_posting_listed(api, emp)


async def test_sign_up_with_a_nul_in_the_name_is_422(api: Api) -> None:
    body = {"name": "Ada\u0000", "email": "ada@example.com", "skills": []}
    error = error_of(await api.http.post("/v1/launchers", json=body), 422)
    assert "control characters" in error["message"] and "U+0000" in error["message"]


async def test_multi_line_text_keeps_newlines_and_tabs(api: Api) -> None:
    emp, lnc = await employer(api), await launcher(api)
    iid = (await post(api, emp, description="Steps:\r\n\t1. Read\n\t2. Write"))["id"]
    detail = await ok(await api.http.get(f"/v1/internships/{iid}", headers=OPS))
    assert detail["description"] == "Steps:\n\t1. Read\n\t2. Write"
    applied = await act(api, lnc, iid, "applications", {"pitch": "Line one\nLine two", **ACCEPT})
    assert applied["applicants"][0]["pitch"] == "Line one\nLine two"
    await act(api, lnc, iid, "withdrawal")
    await act(api, emp, iid, "cancellation", {"reason": "tab\there is fine", "refund": True})
    await act(api, emp, iid, "cancellation", {"reason": "again", "refund": 1}, status=422)


@pytest.mark.parametrize(
    "query",
    [
        {"category": "astrology"},
        {"stage": "limbo"},
        {"skill": "a\u0000b"},
        {"employer": "not an id"},
        {"limit": "lots"},
    ],
)
async def test_list_filters_are_checked(api: Api, query: dict[str, str]) -> None:
    error = error_of(await api.http.get("/v1/internships", params=query, headers=OPS), 422)
    field = error["details"]["errors"][0]["field"]
    # A repeatable parameter (`skill`) names the value that is wrong: query.skill.0.
    assert field.split(".")[:2] == ["query", next(iter(query))], field


async def test_bodies_that_are_not_json_are_415_and_malformed_json_names_the_body(
    api: Api,
) -> None:
    emp = await employer(api)
    plain = await api.http.post(
        "/v1/internships",
        content=b"title=Blog",
        headers={**auth(emp["api_token"]), "Content-Type": "text/plain"},
    )
    error = error_of(plain, 415)
    assert "application/json" in error["message"]
    broken = await api.http.post(
        "/v1/internships",
        content=b'{"title": "Blog",',
        headers={**auth(emp["api_token"]), "Content-Type": "application/json"},
    )
    problem = error_of(broken, 422)["details"]["errors"][0]
    assert problem["field"] == "body" and "not valid JSON" in problem["problem"]
    await only_valid_posting_listed(api, emp)


async def test_an_unexpected_error_is_a_500_that_keeps_the_connection(
    env: WorkflowEnvironment, settings: Settings
) -> None:
    local = settings.model_copy(update={"api_port": free_port()})
    app = create_app(local, temporal=env.client)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    async with Api(app, local.api_port) as served:
        failed = await served.http.get("/boom")
        assert failed.status_code == 500 and failed.headers.get("connection") != "close"
        assert failed.json()["error"]["code"] == "internal_error"
        assert "a bug" not in failed.text
        # The same pooled connection answers the next request.
        assert (await served.http.get("/openapi.json")).status_code == 200

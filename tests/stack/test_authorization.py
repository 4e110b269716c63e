"""Who may call what: every endpoint that takes a caller, against every kind of caller.

The matrix below is the whole rule, one row per endpoint (some endpoints have a second row in
another stage), one column per caller. Each cell is the exact status the API must answer. Rows on
an internship name the scene it sits in; refused cells share one internship per scene, and every
refused cell checks that nothing changed (the internship as ops see it, or, on rows without an
internship, every party's account and the list of internships). Allowed cells change things, so
each gets an internship of its own, freshly brought to the row's scene.

The callers, for one internship:
  anonymous  no token
  owner      the employer who posted it
  other      another employer
  selected   the launcher who gets selected (in the `posted` scene: one of two applicants)
  applicant  the other launcher who applied and was not selected
  unrelated  a launcher who never applied
  ops        the ops token
  manager    the owner's colleague, a hiring manager acting only on what they post
  finance    the owner's colleague in finance (reads money, acts on nothing)
  viewer     the owner's colleague who only reads (not even the money)
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import httpx
import pytest
from temporalio.api.common.v1 import Payload
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from core.codec import codec_from_key
from core.internship import workflow_id
from tests.conftest import HISTORY_CODEC_KEY, OPS_TOKEN, Api, unique_email
from tests.stack.test_api import ACCEPT, auth, employer, error_of, launcher, ok, post, until_stage
from tests.stack.test_organisation import colleague

Json = dict[str, Any]
OPS = auth(OPS_TOKEN)
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
CALLERS = (
    "anonymous",
    "owner",
    "other",
    "selected",
    "applicant",
    "unrelated",
    "ops",
    "manager",
    "finance",
    "viewer",
)


# ---------------------------------------------------------------- the cast and their scenes


@dataclass
class Cast:
    """The parties of the matrix; `internships` is every internship the module started."""

    owner: Json
    other: Json
    selected: Json
    applicant: Json
    unrelated: Json
    # The owner's colleagues: a hiring manager who acts only on what they post (none of the
    # scenes' internships), finance, a viewer (each as `POST /v1/organisation/join` answered).
    manager: Json
    finance: Json
    viewer: Json
    internships: list[str] = field(default_factory=list)

    def headers(self, caller: str) -> dict[str, str]:
        if caller == "anonymous":
            return {}
        if caller == "ops":
            return OPS
        return auth(getattr(self, caller)["api_token"])

    def party(self, caller: str) -> Json:
        party: Json = getattr(self, caller)
        return party


async def cast_of(api: Api) -> Cast:
    owner = await employer(api)
    manager = await colleague(api, owner, "hiring_manager")
    await ok(
        await api.http.patch(
            f"/v1/organisation/members/{manager['member']['id']}",
            json={"role": "hiring_manager", "all_internships": False},
            headers=auth(owner["api_token"]),
        )
    )
    # Only the selected launcher is paid, so only they finish payout onboarding.
    return Cast(
        owner=owner,
        other=await employer(api),
        selected=await launcher(api),
        applicant=await launcher(api, onboard=False),
        unrelated=await launcher(api, onboard=False),
        manager=manager,
        finance=await colleague(api, owner, "finance"),
        viewer=await colleague(api, owner, "viewer"),
    )


class Scene(StrEnum):
    """Where an internship stands, and how it got there (each scene extends the one before,
    except `disputed`, which is `in_progress` with a dispute the owner opened)."""

    POSTED = "posted"  # the selected-to-be launcher and the applicant have applied
    MATCHED = "matched"  # the launcher is selected; the applicant was passed over
    IN_PROGRESS = "in_progress"  # kicked off: charged, due in 7 days
    IN_REVIEW = "in_review"  # the launcher submitted
    PAID = "paid"  # approved, and the launcher's share transferred
    DISPUTED = "disputed"  # in progress, with a dispute open


def _steps(cast: Cast) -> list[tuple[Scene, Json, str, Json | None]]:
    """The way to each scene: (scene reached after it, who, action, body)."""
    s = cast.selected
    return [
        (Scene.POSTED, s, "applications", {"pitch": "I have done this before", **ACCEPT}),
        (Scene.POSTED, cast.applicant, "applications", {"pitch": "Me too", **ACCEPT}),
        (Scene.MATCHED, cast.owner, "selection", {"launcher_id": s["id"]}),
        (Scene.IN_PROGRESS, cast.owner, "kickoff", ACCEPT),
        (Scene.IN_REVIEW, s, "submissions", {"url": "https://docs.test/deck", "note": "Deck"}),
        (Scene.PAID, cast.owner, "review", {"decision": "approve", "feedback": "Good"}),
    ]


async def stage(api: Api, cast: Cast, scene: Scene) -> str:
    """A new internship of the cast's owner, brought to `scene` through the API."""
    iid: str = (await post(api, cast.owner))["id"]
    cast.internships.append(iid)
    target = Scene.IN_PROGRESS if scene == Scene.DISPUTED else scene
    order = list(Scene)
    for reached, who, action, body in _steps(cast):
        if order.index(reached) > order.index(target):
            break
        await ok(
            await api.http.post(
                f"/v1/internships/{iid}/{action}", json=body or {}, headers=auth(who["api_token"])
            )
        )
    if scene == Scene.PAID:
        await until_stage(api, cast.owner, iid, "paid")
    if scene == Scene.DISPUTED:
        await ok(
            await api.http.post(
                f"/v1/internships/{iid}/dispute",
                json={"reason": "No word from the launcher for days"},
                headers=auth(cast.owner["api_token"]),
            )
        )
    return iid


async def stop(env: WorkflowEnvironment, internship_ids: list[str]) -> None:
    """Stop what a module left open, so time skipped by later tests fires none of its timers."""
    for iid in internship_ids:
        with contextlib.suppress(RPCError):  # finished already
            await env.client.get_workflow_handle(workflow_id(iid)).terminate("tests over")


# ---------------------------------------------------------------- the matrix


@dataclass(frozen=True)
class Row:
    scene: Scene | None  # the internship the row acts on; None: no internship in the path
    statuses: dict[str, int]


ONE = "/v1/internships/{internship_id}"
INVITATION = "/v1/organisation/invitations/{invitation_id}"
MEMBER = "/v1/organisation/members/{member_id}"
THREAD = "/v1/internships/{internship_id}/threads/{launcher_id}/messages"
NO = None  # no internship
POSTED, MATCHED, WORKING, REVIEW, DISPUTED, PAID = (
    Scene.POSTED,
    Scene.MATCHED,
    Scene.IN_PROGRESS,
    Scene.IN_REVIEW,
    Scene.DISPUTED,
    Scene.PAID,
)
# 401 no token; 404 the internship does not exist for this caller; 403 wrong role (or not
# while a dispute is open); 409 the stage does not allow it, or the caller already did it (or,
# for a launcher's Express dashboard, payouts are not set up yet);
# 200/201 done. Columns: anonymous, owner, other employer, selected launcher, other applicant,
# unrelated launcher, ops; the owner's colleagues are in COLLEAGUES (CALLERS).
# fmt: off
TABLE: list[tuple[str, Scene | None, int, int, int, int, int, int, int]] = [
    # endpoint                                    scene     anon own  oth  sel  app  unr  ops
    ("GET /healthz",                              NO,       200, 200, 200, 200, 200, 200, 200),
    ("GET /metrics",                              NO,       401, 403, 403, 403, 403, 403, 200),
    ("POST /codec/encode",                        NO,       401, 403, 403, 403, 403, 403, 200),
    ("POST /codec/decode",                        NO,       401, 403, 403, 403, 403, 403, 200),
    ("GET /v1/me",                                NO,       401, 200, 200, 200, 200, 200, 200),
    ("POST /v1/me/token",                         NO,       401, 200, 200, 200, 200, 200, 403),
    ("PUT /v1/employers/me/payment_method",       NO,       401, 200, 200, 403, 403, 403, 403),
    ("POST /v1/launchers/me/onboarding_link",     NO,       401, 403, 403, 200, 200, 200, 403),
    # Only the selected launcher finished payout onboarding: the others have no dashboard yet.
    ("POST /v1/launchers/me/dashboard_link",      NO,       401, 403, 403, 200, 409, 409, 403),
    ("GET /v1/launchers/me/earnings",             NO,       401, 403, 403, 200, 200, 200, 403),
    ("GET /v1/launchers/{launcher_id}/portfolio", NO,       401, 200, 200, 200, 200, 200, 200),
    ("GET /v1/launchers/me/recommendations",      NO,       401, 403, 403, 200, 200, 200, 403),
    ("GET /v1/launchers/me/invitations",          NO,       401, 403, 403, 200, 200, 200, 403),
    ("PATCH /v1/employers/me/profile",            NO,       401, 200, 200, 403, 403, 403, 403),
    ("PATCH /v1/launchers/me/profile",            NO,       401, 403, 403, 200, 200, 200, 403),
    ("POST /v1/internships",                      NO,       401, 201, 201, 403, 403, 403, 403),
    ("GET /v1/internships",                       NO,       401, 200, 200, 200, 200, 200, 200),
    ("GET /v1/ops/internships",                   NO,       401, 403, 403, 403, 403, 403, 200),
    (f"GET {ONE}",                                POSTED,   401, 200, 404, 200, 200, 200, 200),
    (f"GET {ONE}",                                MATCHED,  401, 200, 404, 200, 404, 404, 200),
    (f"GET {ONE}/contacts",                       MATCHED,  401, 403, 403, 403, 403, 403, 200),
    (f"GET {ONE}/applicants",                     POSTED,   401, 200, 404, 403, 403, 403, 200),
    (f"GET {ONE}/applicants",                     MATCHED,  401, 200, 404, 403, 404, 404, 200),
    (f"GET {ONE}/candidates",                     POSTED,   401, 200, 404, 403, 403, 403, 403),
    (f"GET {ONE}/candidates",                     MATCHED,  401, 409, 404, 403, 404, 404, 403),
    (f"POST {ONE}/applications",                  POSTED,   401, 403, 404, 409, 409, 200, 403),
    (f"POST {ONE}/applications",                  MATCHED,  401, 403, 404, 409, 404, 404, 403),
    (f"POST {ONE}/selection",                     POSTED,   401, 200, 404, 403, 403, 403, 403),
    (f"POST {ONE}/kickoff",                       POSTED,   401, 409, 404, 403, 403, 403, 403),
    (f"POST {ONE}/kickoff",                       MATCHED,  401, 200, 404, 403, 404, 404, 403),
    (f"POST {ONE}/submissions",                   WORKING,  401, 403, 404, 200, 404, 404, 403),
    (f"POST {ONE}/review",                        WORKING,  401, 409, 404, 403, 404, 404, 403),
    (f"POST {ONE}/review",                        REVIEW,   401, 200, 404, 403, 404, 404, 403),
    (f"POST {ONE}/extension",                     WORKING,  401, 200, 404, 403, 404, 404, 200),
    (f"POST {ONE}/cancellation",                  MATCHED,  401, 200, 404, 403, 404, 404, 200),
    (f"POST {ONE}/cancellation",                  DISPUTED, 401, 403, 404, 403, 404, 404, 200),
    (f"POST {ONE}/withdrawal",                    POSTED,   401, 403, 404, 200, 200, 409, 403),
    (f"POST {ONE}/withdrawal",                    MATCHED,  401, 403, 404, 200, 404, 404, 403),
    (f"POST {ONE}/dispute",                       WORKING,  401, 200, 404, 200, 404, 404, 403),
    (f"POST {ONE}/dispute",                       DISPUTED, 401, 409, 404, 409, 404, 404, 403),
    (f"POST {ONE}/resolution",                    WORKING,  401, 403, 404, 403, 404, 404, 409),
    (f"POST {ONE}/resolution",                    DISPUTED, 401, 403, 404, 403, 404, 404, 200),
    (f"POST {ONE}/invitations",                   POSTED,   401, 200, 404, 403, 403, 403, 403),
    (f"POST {ONE}/invitations",                   MATCHED,  401, 409, 404, 403, 404, 404, 403),
    # Nobody of the cast is invited: the unrelated launcher has nothing to decline.
    (f"POST {ONE}/invitation-declined",           POSTED,   401, 403, 404, 403, 403, 409, 403),
    (f"POST {ONE}/feedback",                      WORKING,  401, 409, 404, 409, 404, 404, 403),
    (f"POST {ONE}/feedback",                      PAID,     401, 200, 404, 200, 404, 404, 403),
    # The caller's own organisation: "other" is an admin of theirs, so ids of the owner's are
    # not found (a new member and invitation of the owner's for each cell).
    ("GET /v1/organisation",                      NO,       401, 200, 200, 403, 403, 403, 403),
    ("PATCH /v1/organisation",                    NO,       401, 200, 200, 403, 403, 403, 403),
    ("GET /v1/organisation/invitations",          NO,       401, 200, 200, 403, 403, 403, 403),
    ("POST /v1/organisation/invitations",         NO,       401, 201, 201, 403, 403, 403, 403),
    (f"DELETE {INVITATION}",                      NO,       401, 200, 404, 403, 403, 403, 403),
    (f"PATCH {MEMBER}",                           NO,       401, 200, 404, 403, 403, 403, 403),
    (f"DELETE {MEMBER}",                          NO,       401, 200, 404, 403, 403, 403, 403),
    # Ops only (the 202 needs a payment Stripe refused: tests/stack/test_payment_retry.py).
    (f"POST {ONE}/payment-retry",                 REVIEW,   401, 403, 403, 403, 403, 403, 409),
    # Conversations: the thread is the selected launcher's (before selection, an applicant's);
    # the other applicant has a thread of their own, the unrelated launcher none. The file and
    # the message are the selected launcher's, in that thread.
    (f"GET {ONE}/threads",                        POSTED,   401, 200, 404, 200, 200, 404, 200),
    (f"GET {THREAD}",                             POSTED,   401, 200, 404, 200, 404, 404, 200),
    (f"GET {THREAD}",                             MATCHED,  401, 200, 404, 200, 404, 404, 200),
    (f"POST {THREAD}",                            POSTED,   401, 201, 404, 201, 404, 404, 201),
    (f"POST {THREAD}",                            DISPUTED, 401, 201, 404, 201, 404, 404, 201),
    (f"POST {ONE}/files",                         POSTED,   401, 201, 404, 201, 201, 404, 201),
    (f"POST {ONE}/files",                         MATCHED,  401, 201, 404, 201, 409, 404, 201),
    ("GET /v1/files/{file_id}",                   POSTED,   401, 200, 404, 200, 404, 404, 200),
    ("POST /v1/messages/{message_id}/reports",    POSTED,   401, 204, 404, 204, 404, 404, 204),
    ("POST /v1/ops/messages/{message_id}/moderation", POSTED, 401, 403, 403, 403, 403, 403, 204),
    ("GET /v1/ops/reports",                       NO,       401, 403, 403, 403, 403, 403, 200),
    # Documents: the caller's own list; by id, the kickoff's receipt (in progress) and the
    # payout's statement (paid), which the launcher paid reads too.
    ("GET /v1/receipts",                          NO,       401, 200, 200, 200, 200, 200, 200),
    ("GET /v1/documents/{document_id}",           WORKING,  401, 200, 404, 404, 404, 404, 200),
    ("GET /v1/documents/{document_id}",           PAID,     401, 200, 404, 200, 404, 404, 200),
]
# fmt: on
# The owner's colleagues (CALLERS' last three: the hiring manager limited to what they post,
# finance, the viewer): 403 on every row but these. A colleague who may not act is refused before
# the stage is looked at, so what they can't do they can't do in any stage.
COLLEAGUES: dict[tuple[str, Scene | None], tuple[int, int, int]] = {
    ("GET /healthz", NO): (200, 200, 200),
    ("GET /v1/me", NO): (200, 200, 200),
    ("POST /v1/me/token", NO): (200, 200, 200),
    ("GET /v1/launchers/{launcher_id}/portfolio", NO): (200, 200, 200),
    ("POST /v1/internships", NO): (201, 403, 403),
    ("GET /v1/internships", NO): (200, 200, 200),
    (f"GET {ONE}", POSTED): (200, 200, 200),
    (f"GET {ONE}", MATCHED): (200, 200, 200),
    (f"GET {ONE}/applicants", POSTED): (200, 200, 200),
    (f"GET {ONE}/applicants", MATCHED): (200, 200, 200),
    (f"GET {ONE}/candidates", POSTED): (200, 200, 200),
    (f"GET {ONE}/candidates", MATCHED): (409, 409, 409),
    ("GET /v1/organisation", NO): (200, 200, 200),
    # Every member reads the organisation's conversations and may report a message; only those
    # who act on the internship write (the hiring manager did not post these).
    (f"GET {ONE}/threads", POSTED): (200, 200, 200),
    (f"GET {THREAD}", POSTED): (200, 200, 200),
    (f"GET {THREAD}", MATCHED): (200, 200, 200),
    ("GET /v1/files/{file_id}", POSTED): (200, 200, 200),
    ("POST /v1/messages/{message_id}/reports", POSTED): (204, 204, 204),
    # Who reads the money (the hiring manager and finance) reads the documents; not the viewer.
    ("GET /v1/receipts", NO): (200, 200, 403),
    ("GET /v1/documents/{document_id}", WORKING): (200, 200, 404),
    ("GET /v1/documents/{document_id}", PAID): (200, 200, 404),
}
MATRIX = {
    (endpoint, scene): Row(
        scene,
        dict(
            zip(
                CALLERS,
                (*statuses, *COLLEAGUES.get((endpoint, scene), (403, 403, 403))),
                strict=True,
            )
        ),
    )
    for endpoint, scene, *statuses in TABLE
}

KNOWN_BUGS: dict[tuple[str, str], str] = {}  # cells that answer otherwise today


def _codec_payload(encrypted: bool) -> Json:
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'"matrix"')
    codec = codec_from_key(HISTORY_CODEC_KEY)
    assert codec is not None
    payload = codec.encode_one(plain) if encrypted else plain
    b64 = base64.b64encode
    return {
        "payloads": [
            {
                "metadata": {k: b64(v).decode() for k, v in payload.metadata.items()},
                "data": b64(payload.data).decode(),
            }
        ]
    }


async def _body(api: Api, cast: Cast, endpoint: str, iid: str | None) -> Json | None:
    """A valid request body, so that an allowed call succeeds and a refusal is about the
    caller or the stage, never the input."""
    action = endpoint.rsplit("/", 1)[-1]
    if action == "extension":
        assert iid is not None
        detail = await ok(await api.http.get(f"/v1/internships/{iid}", headers=OPS))
        due = datetime.fromisoformat(detail["due_at"]) if detail["due_at"] else None
        return {"due_at": ((due or datetime.now().astimezone()) + timedelta(days=1)).isoformat()}
    bodies: dict[str, Json] = {
        "encode": _codec_payload(encrypted=False),
        "decode": _codec_payload(encrypted=True),
        "payment_method": {"payment_method": "pm_card_visa"},
        "internships": {
            "title": "Market sizing",
            "description": "Size the market for our product in two countries.",
            "category": "finance",
            "estimated_hours": 8,
            "fee_cents": 30000,
            "duration_days": 10,
        },
        "applications": {"pitch": "I would like to do this", **ACCEPT},
        "kickoff": ACCEPT,
        "selection": {"launcher_id": cast.selected["id"]},
        "submissions": {"url": "https://docs.test/work", "note": "Done"},
        "review": {"decision": "approve", "feedback": "Thanks"},
        "cancellation": {"reason": "Plans changed"},
        "dispute": {"reason": "We disagree on the scope"},
        "resolution": {"outcome": "refund", "note": "Refunded in full"},
        "feedback": {"rating": 4, "comment": "Good to work with"},
        "invitations": {"launcher_id": cast.unrelated["id"]},
        "profile": {"website": "https://example.test/about"},  # a launcher's or a company's
        "organisation": {"notify_email": "hiring@example.com"},
        "{member_id}": {"role": "viewer"},
        "messages": {"body": "A question about the brief"},
        "reports": {"reason": "Not what this is for"},
        "moderation": {"hide": True, "reason": "Off topic"},
    }
    if endpoint == "POST /v1/organisation/invitations":
        return {"email": unique_email("colleague"), "role": "viewer"}
    return bodies.get(action) if endpoint.startswith(("POST", "PUT", "PATCH")) else None


async def _path_ids(api: Api, cast: Cast, template: str, iid: str | None) -> dict[str, str]:
    """An invitation and a member of the owner's organisation, new for each cell that names
    one (an allowed cell withdraws or removes it); a message of the selected launcher's, with
    a file, in their thread."""
    ids: dict[str, str] = {}
    if "{message_id}" in template or "{file_id}" in template:
        sent = await ok(
            await api.http.post(
                THREAD.format(internship_id=iid, launcher_id=cast.selected["id"]),
                data={"body": "My draft"},
                files={"files": ("draft.pdf", PDF, "application/pdf")},
                headers=auth(cast.selected["api_token"]),
            ),
            201,
        )
        ids["message_id"], ids["file_id"] = str(sent["id"]), str(sent["files"][0]["id"])
    if "{invitation_id}" in template:
        sent = await ok(
            await api.http.post(
                "/v1/organisation/invitations",
                json={"email": unique_email("invited"), "role": "viewer"},
                headers=auth(cast.owner["api_token"]),
            ),
            201,
        )
        ids["invitation_id"] = sent["id"]
    if "{member_id}" in template:
        ids["member_id"] = (await colleague(api, cast.owner))["member"]["id"]
    if "{document_id}" in template:  # the newest: the receipt, or once paid, the statement
        ids["document_id"] = str(await _document_of(api, cast, iid))
    return ids


async def _document_of(api: Api, cast: Cast, iid: str | None) -> int:
    """The newest document of the owner's internship `iid`, page by page of theirs."""
    params: dict[str, Any] = {"limit": 100}
    while True:
        listed = await ok(
            await api.http.get("/v1/receipts", params=params, headers=auth(cast.owner["api_token"]))
        )
        found = [d["id"] for d in listed["items"] if d["internship_id"] == iid]
        if found:
            return int(found[0])
        assert listed["next_cursor"], f"no document of {iid}"
        params["cursor"] = listed["next_cursor"]


async def _call(
    api: Api, cast: Cast, endpoint: str, caller: str, iid: str | None
) -> httpx.Response:
    method, template = endpoint.split(" ", 1)
    ids = await _path_ids(api, cast, template, iid)
    path = template.format(internship_id=iid, launcher_id=cast.selected["id"], **ids)
    if path.endswith("/files"):
        upload = {"file": ("notes.pdf", PDF, "application/pdf")}
        return await api.http.post(path, files=upload, headers=cast.headers(caller))
    body = await _body(api, cast, endpoint, iid)
    return await api.http.request(method, path, json=body, headers=cast.headers(caller))


async def _snapshot(api: Api, cast: Cast, iid: str | None) -> Any:
    """What a refused call must leave as it was: the internship as ops see it (its stage,
    timeline, payment, everything); on rows without one, every party's account (a rotated
    token would answer 401) and the internships on the list that the cast did not start."""
    if iid is not None:
        return await ok(await api.http.get(f"/v1/internships/{iid}", headers=OPS))
    accounts = []
    for caller in CALLERS[1:]:
        me = await api.http.get("/v1/me", headers=cast.headers(caller))
        accounts.append((me.status_code, me.json()))
    page = await ok(await api.http.get("/v1/internships", params={"limit": 100}, headers=OPS))
    return accounts, {i["id"] for i in page["items"]} - set(cast.internships)


def _unchanged(before: Any, after: Any) -> bool:
    if isinstance(before, dict):
        return bool(before == after)
    # No internship the cast did not start has appeared (older ones may leave the first page
    # as the cast's own internships reach the list).
    return bool(before[0] == after[0] and not after[1] - before[1])


# ---------------------------------------------------------------- the tests


@pytest.fixture(scope="module")
async def cast(api_server: Api, env: WorkflowEnvironment) -> AsyncIterator[Cast]:
    cast = await cast_of(api_server)
    yield cast
    await stop(env, cast.internships)


@pytest.fixture(scope="module")
def scenes() -> dict[Scene, str]:
    """One internship per scene, shared by every cell that must not change it."""
    return {}


def _cells() -> list[Any]:
    cells = []
    for (endpoint, scene), r in MATRIX.items():
        for caller, status in r.statuses.items():
            bug = KNOWN_BUGS.get((endpoint, caller))
            marks = [pytest.mark.xfail(strict=True, reason=bug)] if bug else []
            cell_id = f"{endpoint} [{scene or '-'}] {caller}={status}"
            cells.append(pytest.param(endpoint, scene, caller, status, marks=marks, id=cell_id))
    return cells


@pytest.mark.parametrize(("endpoint", "scene", "caller", "status"), _cells())
async def test_matrix_cell(
    api_server: Api,
    cast: Cast,
    scenes: dict[Scene, str],
    endpoint: str,
    scene: Scene | None,
    caller: str,
    status: int,
) -> None:
    api = api_server
    changes = status < 300 and not endpoint.startswith("GET")
    iid: str | None = None
    if scene is not None:
        if changes:  # an allowed transition moves the internship on: one of its own
            iid = await stage(api, cast, scene)
        else:
            if scene not in scenes:
                scenes[scene] = await stage(api, cast, scene)
            iid = scenes[scene]
    before = None if changes else await _snapshot(api, cast, iid)
    response = await _call(api, cast, endpoint, caller, iid)
    if status >= 400:
        error = error_of(response, status)
        if status == 409 and scene is not None:  # says where the internship stands
            expected = Scene.IN_PROGRESS if scene == Scene.DISPUTED else scene
            assert error["details"]["stage"] == expected, error
    else:
        assert response.status_code == status, response.text
    if endpoint == "POST /v1/internships" and status == 201:
        cast.internships.append(response.json()["id"])
    if endpoint == "POST /v1/me/token" and status == 200:  # the party goes on with the new token
        cast.party(caller)["api_token"] = response.json()["api_token"]
    if not changes:
        after = await _snapshot(api, cast, iid)
        assert _unchanged(before, after), f"{endpoint} as {caller} changed state"


async def _document(api: Api) -> Json:
    return await ok(await api.http.get("/openapi.json"))


def _needs_caller(operation: Json) -> bool:
    """It reads a bearer token: an Authorization header parameter, or a security scheme."""
    return bool(operation.get("security")) or any(
        p["in"] == "header" and p["name"].lower() == "authorization"
        for p in operation.get("parameters", [])
    )


async def test_the_matrix_covers_every_endpoint_that_takes_a_caller(
    api_server: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    """A new endpoint that reads a token must join the matrix: this fails until it does."""
    assert set(COLLEAGUES) <= set(MATRIX), "a colleagues' row names no row of TABLE"
    doc = await _document(api_server)
    documented = {
        f"{method.upper()} {path}"
        for path, operations in doc["paths"].items()
        for method, operation in operations.items()
        if _needs_caller(operation)
    }
    assert {endpoint for endpoint, _ in MATRIX} == documented
    cells = sum(len(r.statuses) for r in MATRIX.values())
    assert cells == len(MATRIX) * len(CALLERS) >= 200
    with capsys.disabled():
        endpoints = len(documented)
        print(f"\nauthorization matrix: {cells} cells, {len(MATRIX)} rows, {endpoints} endpoints")


async def test_every_status_of_the_matrix_is_declared(api_server: Api) -> None:
    doc = await _document(api_server)
    undeclared = set()
    for (endpoint, _), r in MATRIX.items():
        method, path = endpoint.split(" ", 1)
        declared = set(doc["paths"][path][method.lower()]["responses"])
        undeclared |= {(endpoint, s) for s in r.statuses.values() if str(s) not in declared}
    assert not undeclared, sorted(undeclared)

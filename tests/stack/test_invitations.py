"""Invitations over the API with the real workflow and projection: whom to invite, ranked by
fit; an invitation-only posting seen by the invited alone; applying answers the invitation."""

from __future__ import annotations

import uuid
from typing import Any

from tests.conftest import Api, eventually
from tests.stack.test_api import ACCEPT, act, auth, employer, error_of, listed, ok, post
from tests.stack.test_matching import items, sign_up

Json = dict[str, Any]


async def test_an_invitation_only_posting_is_for_the_launchers_invited(api: Api) -> None:
    emp = await employer(api)
    tag = uuid.uuid4().hex[:8]  # skills no other test uses, so the ranking is this test's
    skills = [f"{tag}-copy", f"{tag}-seo"]
    both, one = await sign_up(api, *skills), await sign_up(api, skills[0], "drawing")
    outsider = await sign_up(api, "research")
    iid = (await post(api, emp, skills=skills, invitation_only=True))["id"]
    owner = auth(emp["api_token"])

    whom = items(await api.http.get(f"/v1/internships/{iid}/candidates", headers=owner))
    assert [c["launcher_id"] for c in whom] == [both["id"], one["id"]]
    assert whom[0]["reasons"][0] == f"2 of 2 skills: {', '.join(skills)}"
    assert whom[0]["score"] > whom[1]["score"]

    error_of(await api.http.get(f"/v1/internships/{iid}", headers=auth(outsider["api_token"])), 404)
    await act(api, emp, iid, "invitations", {"launcher_id": both["id"]})
    seen = await listed(api, auth(both["api_token"]), 1, skill=skills[0])
    assert [i["id"] for i in seen] == [iid]
    after = items(await api.http.get(f"/v1/internships/{iid}/candidates", headers=owner))
    assert [c["launcher_id"] for c in after] == [one["id"]]  # invited: no longer a candidate

    await act(api, both, iid, "applications", {"pitch": "I write about this every week.", **ACCEPT})
    detail = await ok(await api.http.get(f"/v1/internships/{iid}", headers=owner))
    assert [(i["launcher_id"], i["answer"]) for i in detail["invitations"]] == [
        (both["id"], "accepted")
    ]

    async def answered() -> list[Json]:
        mine = await api.http.get("/v1/launchers/me/invitations", headers=auth(both["api_token"]))
        found: list[Json] = items(mine)
        return found if found and found[0]["answer"] == "accepted" else []

    [invitation] = await eventually(answered)
    assert invitation["internship"]["id"] == iid
    # Never listed to a launcher nobody invited.
    others = await ok(
        await api.http.get(
            "/v1/internships", params={"skill": skills[0]}, headers=auth(outsider["api_token"])
        )
    )
    assert others["items"] == []
    # Nor recommended to one who fits it but was not invited (an open posting like it is).
    open_one = (await post(api, emp, skills=skills))["id"]

    async def recommended() -> list[str]:  # once the projection has the new posting
        fits = items(
            await api.http.get(
                "/v1/launchers/me/recommendations",
                params={"limit": 50},
                headers=auth(one["api_token"]),
            )
        )
        found = [r["internship"]["id"] for r in fits]
        return found if open_one in found else []

    assert iid not in await eventually(recommended)

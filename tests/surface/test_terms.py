"""The terms of an internship (issue 20): pinned when it was posted, shown to everyone who may
read it, and accepted explicitly, by the launcher applying and the employer kicking off."""

from __future__ import annotations

import re
from dataclasses import replace

from api.app import create_app
from core.internship import Application, Kickoff, Role, Stage
from core.terms import terms_in
from tests.surface.conftest import OPS_TOKEN, Surface
from tests.surface.test_internship_api import POSTING
from tests.surface.test_internship_page import beside, forms_on


async def test_applying_without_accepting_the_terms_is_refused_and_records_nothing(
    surface: Surface,
) -> None:
    employer, lee = surface.employer(), surface.launcher()
    iid = surface.internship(employer, Stage.POSTED).posting.internship_id
    async with surface.client(surface.token(Role.LAUNCHER, lee.id)) as http:
        missing = await http.post(f"/v1/internships/{iid}/applications", json={"pitch": "Me"})
        declined = await http.post(
            f"/v1/internships/{iid}/applications", json={"pitch": "Me", "accept_terms": False}
        )
    for refused in (missing, declined):
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert error["code"] == "invalid_request"
        assert "accept_terms" in error["message"] and "terms" in error["message"]
        assert "send accept_terms: true" in error["message"]
        assert error["details"]["errors"][0]["field"] == "accept_terms"
    assert surface.workflows.updates(iid) == []


async def test_terms_accepted_are_this_internship_s_or_refused(surface: Surface) -> None:
    employer, lee = surface.employer(), surface.launcher()
    state = surface.internship(employer, Stage.POSTED)
    iid, accepted = state.posting.internship_id, terms_in(state).hash
    async with surface.client(surface.token(Role.LAUNCHER, lee.id)) as http:
        other = await http.post(
            f"/v1/internships/{iid}/applications",
            json={"pitch": "Me", "accept_terms": True, "terms_hash": "0" * 64},
        )
        assert other.status_code == 409, other.text
        error = other.json()["error"]
        assert error["code"] == "terms_changed"
        assert "read its terms again" in error["message"]
        assert surface.workflows.updates(iid) == []
        # The terms named are this internship's: the application carries their hash.
        named = await http.post(
            f"/v1/internships/{iid}/applications",
            json={"pitch": "Me", "accept_terms": True, "terms_hash": accepted},
        )
    assert named.status_code == 200, named.text
    [asked] = surface.workflows.updates(iid)
    assert asked.request == Application(asked.request.by, "Me", accepted)


async def test_kicking_off_accepts_the_terms_too(surface: Surface) -> None:
    employer, lee = surface.employer(), surface.launcher()
    state = surface.internship(employer, Stage.MATCHED, launcher=lee)
    iid = state.posting.internship_id
    async with surface.client(surface.token(Role.EMPLOYER, employer.id)) as http:
        unsaid = await http.post(f"/v1/internships/{iid}/kickoff", json={})
        nobody = await http.post(f"/v1/internships/{iid}/kickoff")
        stale = await http.post(
            f"/v1/internships/{iid}/kickoff", json={"accept_terms": True, "terms_hash": "a" * 64}
        )
        assert (unsaid.status_code, nobody.status_code, stale.status_code) == (422, 422, 409)
        assert surface.workflows.updates(iid) == []
        done = await http.post(f"/v1/internships/{iid}/kickoff", json={"accept_terms": True})
    assert done.status_code == 200, done.text
    [asked] = surface.workflows.updates(iid)
    assert asked.request == Kickoff(asked.request.by, terms_in(state).hash)


async def test_everyone_who_may_read_the_internship_reads_its_terms(surface: Surface) -> None:
    employer, lee = surface.employer(), surface.launcher()
    state = surface.internship(employer, Stage.POSTED, delivered_work_kept=True)
    iid, terms = state.posting.internship_id, terms_in(state)
    read = {}
    for who, token in (
        ("owner", surface.token(Role.EMPLOYER, employer.id)),
        ("prospect", surface.token(Role.LAUNCHER, lee.id)),
        ("ops", OPS_TOKEN),
    ):
        async with surface.client(token) as http:
            read[who] = (await http.get(f"/v1/internships/{iid}")).json()["terms"]
    assert read["owner"] == read["prospect"] == read["ops"]
    shown = read["owner"]
    assert shown["hash"] == terms.hash and re.fullmatch(r"[0-9a-f]{64}", shown["hash"])
    assert {k: v for k, v in shown.items() if k not in ("lines", "hash")} == terms.values()
    assert shown["fee_cents"] == 40000 and shown["launcher_share_cents"] == 36000
    assert shown["platform_fee_cents"] == 4000 and shown["review_auto_approve_seconds"] == 604800
    assert shown["dispute_decision_seconds"] == 7 * 86400
    assert shown["lines"] == [{"label": k, "text": v} for k, v in terms.lines()]
    assert {"label": "Fee", "text": "$400.00, charged to the employer's card at kickoff."} in (
        shown["lines"]
    )


async def test_a_change_of_policy_for_new_internships_never_changes_these(
    surface: Surface,
) -> None:
    employer = surface.employer()
    token = surface.token(Role.EMPLOYER, employer.id)
    async with surface.client(token) as http:
        first = (await http.post("/v1/internships", json=POSTING)).json()
    # The policies change (a new deployment's settings): the next posting is under them.
    changed = surface.settings.model_copy(
        update={
            "launcher_share_percent": 80,
            "review_auto_approve_days": 3,
            "dispute_decision_days": 5,
        }
    )
    later = Surface(
        create_app(changed, workflows=surface.workflows),
        surface.workflows,
        surface.sessions,
        changed,
    )
    async with later.client(token) as http:
        second = (await http.post("/v1/internships", json=POSTING)).json()
        first_now = (await http.get(f"/v1/internships/{first['id']}")).json()
    assert first_now["terms"] == first["terms"]
    assert first["terms"]["launcher_share_percent"] == 90
    assert second["terms"]["launcher_share_percent"] == 80
    assert second["terms"]["review_auto_approve_seconds"] == 3 * 86400
    assert second["terms"]["hash"] != first["terms"]["hash"]
    lines = {line["label"]: line["text"] for line in first_now["terms"]["lines"]}
    assert lines["Launcher's share"].startswith("90% of the fee, $360.00")


async def test_the_page_shows_the_terms_to_everyone_who_may_read_it(surface: Surface) -> None:
    employer, lee = surface.employer(), surface.launcher()
    state = surface.internship(employer, Stage.POSTED, delivered_work_kept=True)
    iid, terms = state.posting.internship_id, terms_in(state)
    for email in (employer.email, lee.email, surface.settings.ops_email):
        browser = await surface.signed_in(email)
        page = (await browser.get(f"/internships/{iid}")).text
        section = re.search(r'<section id="terms".*?</section>', page, re.S)
        assert section, email
        shown = section.group(0)
        assert "The terms of this internship" in shown
        assert f"Terms ref. <code>{terms.hash[:16]}</code>" in shown
        # A label above its sentence (no table to scroll sideways on a 390 px phone).
        assert '<dl class="terms">' in shown and "<table" not in shown
        for label, sentence in terms.lines():
            assert f"<dt>{label.replace(chr(39), '&#39;')}</dt>" in shown
            assert sentence.replace("'", "&#39;") in shown
    # The launcher's form: the box, linking to the terms, with the hash of the terms shown.
    launcher_page = (await (await surface.signed_in(lee.email)).get(f"/internships/{iid}")).text
    assert "applications" in forms_on(launcher_page, iid)
    assert 'name="accept_terms" value="true" required' in launcher_page
    assert 'I accept <a href="#terms">the terms of this internship</a>' in launcher_page
    assert f'name="terms_hash" value="{terms.hash}"' in launcher_page


async def test_applying_without_the_box_keeps_the_pitch_and_says_why(surface: Surface) -> None:
    employer, lee = surface.employer(), surface.launcher()
    iid = surface.internship(employer, Stage.POSTED).posting.internship_id
    browser = await surface.signed_in(lee.email)
    here = f"/internships/{iid}"
    sent = await browser.submit(here, f"{here}/applications", pitch="I ran surveys for shops.")
    assert sent.status_code == 422
    assert surface.workflows.updates(iid) == []
    assert beside(sent.text, "accept_terms") == (
        "Tick the box to accept the terms of this internship (read them below)."
    )
    assert ">I ran surveys for shops.</textarea>" in sent.text
    assert 'aria-describedby="f-accept_terms-error"' in sent.text
    # Ticked, with the hash of the terms the page showed: sent, with that hash.
    hashed = re.search(r'name="terms_hash" value="([0-9a-f]{64})"', sent.text)
    assert hashed
    done = await browser.submit(
        here,
        f"{here}/applications",
        pitch="I ran surveys for shops.",
        accept_terms="true",
        terms_hash=hashed.group(1),
    )
    assert done.status_code == 303, done.text
    [asked] = surface.workflows.updates(iid)
    assert asked.request.accepted_terms == hashed.group(1)


async def test_kicking_off_without_the_box_is_refused_beside_it(surface: Surface) -> None:
    employer, lee = surface.employer(), surface.launcher()
    state = surface.internship(employer, Stage.MATCHED, launcher=lee)
    iid = state.posting.internship_id
    surface.workflows.then[iid] = replace(state, stage=Stage.IN_PROGRESS)
    browser = await surface.signed_in(employer.email)
    here = f"/internships/{iid}"
    sent = await browser.submit(here, f"{here}/kickoff")
    assert sent.status_code == 422
    assert surface.workflows.updates(iid) == []
    assert beside(sent.text, "accept_terms").startswith("Tick the box to accept the terms")
    assert "kickoff" in forms_on(sent.text, iid)
    # Terms that are not this internship's (another tab's, say): refused, nothing done.
    stale = await browser.submit(here, f"{here}/kickoff", accept_terms="true", terms_hash="b" * 64)
    assert stale.status_code == 409
    assert "read its terms again" in stale.text and surface.workflows.updates(iid) == []

"""Schema fuzzing: every operation of the live OpenAPI document, as every kind of caller.

Schemathesis reads /openapi.json from the API served over real HTTP (with the real worker behind
it) and generates requests from it, valid ones and ones that break the schema, for each operation
and each caller: anonymous, an employer, a launcher and ops. No answer may be a server error, and
every answer must conform to the document (status, content type, headers, body); a request the
document calls valid must not be refused by the API's request models either.

Paths name real things where that is easy: an internship of the employer's in the stage its
operation needs (the launcher applied to it or was selected for it) and the launcher's own id on
portfolios, besides generated ids. So transitions reach the workflow, not only a 404.

The API runs on the test session's event loop; the fuzzer sends its blocking requests from a
thread, so the loop keeps serving them. Examples are bounded and derandomized: every run sends
the same cases.
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import hypothesis
import jsonschema_rs
import pytest
import requests
import schemathesis
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.schemas import APIOperation, BaseSchema
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from core.settings import Settings
from tests.conftest import Api
from tests.stack.test_api import error_of
from tests.stack.test_authorization import Cast, Scene, cast_of, stage

# Schemathesis' own strategies draw from `random` in places; Hypothesis seeds it for each
# example, so the runs stay the same, and the warning is about schemathesis, not these tests.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies"
    ":hypothesis.errors.HypothesisDeprecationWarning"
)
CALLERS = ("anonymous", "employer", "launcher", "ops")
# Who the employer and the launcher are in the cast (see test_authorization.py).
PARTIES = {"employer": "owner", "launcher": "selected"}
# Per operation, caller and generation mode: 18 cases per operation and caller at most
# (operations with nothing that can be invalid have no negative cases).
EXAMPLES = {GenerationMode.POSITIVE: 12, GenerationMode.NEGATIVE: 6}
# The stage each internship operation is fuzzed in: one where it can succeed (a new one is
# fuzzed in `matched` until it is named here).
SCENES = {
    "": Scene.IN_REVIEW,
    "contacts": Scene.MATCHED,
    "applicants": Scene.POSTED,
    "applications": Scene.POSTED,
    "selection": Scene.POSTED,
    "kickoff": Scene.MATCHED,
    "submissions": Scene.IN_PROGRESS,
    "review": Scene.IN_REVIEW,
    "extension": Scene.IN_PROGRESS,
    "cancellation": Scene.MATCHED,
    "withdrawal": Scene.MATCHED,
    "dispute": Scene.IN_PROGRESS,
    "resolution": Scene.DISPUTED,
    "feedback": Scene.PAID,
}
ROTATION = "POST /v1/me/token"
# The inbound mail webhook's body is a raw email (unsigned here: every case is a 400).
schemathesis.openapi.media_type(
    "message/rfc822",
    st.sampled_from(
        [
            b"From: a@example.com\r\nTo: reply+x@reply.example\r\nSubject: Re\r\n\r\nYes\r\n",
            b"",
            b"\x00\xff not an email",
        ]
    ),
)
# Cases sent, per caller (the last test reports them).
SENT: Counter[str] = Counter()
KEYS = itertools.count()


def _labels() -> list[str]:
    """The operations as the code declares them, to name one test each at collection; the
    first test checks that the live document has exactly these."""
    # Building the app opens nothing: this database is never connected to.
    unused = f"sqlite:///{Path(tempfile.gettempdir()) / 'openapi-only.db'}"
    app = create_app(Settings(_env_file=None, database_url=unused))  # type: ignore[call-arg]
    return [
        f"{method.upper()} {path}"
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    ]


LABELS = _labels()
# (caller, operation) pairs that fail today: each is a bug for the API to fix.
KNOWN_BUGS: dict[tuple[str, str], str] = {}


@pytest.fixture(scope="module")
async def schema(api_server: Api) -> BaseSchema:
    url = f"{api_server.url}/openapi.json"
    loaded: BaseSchema = await asyncio.to_thread(schemathesis.openapi.from_url, url)
    return loaded


@pytest.fixture(scope="module")
async def cast(api_server: Api) -> Cast:
    return await cast_of(api_server)


async def _pinned(api: Api, cast: Cast, caller: str, label: str) -> list[dict[str, Any]]:
    """Parts of a request to pin to real values, in cases sent besides freely generated ones."""
    _, path = label.split(" ", 1)
    if "{launcher_id}" in path:
        return [{"path_parameters": {"launcher_id": cast.selected["id"]}}]
    if "{internship_id}" not in path or caller == "anonymous":
        return []
    action = path.split("{internship_id}", 1)[1].strip("/")
    iid = await stage(api, cast, SCENES.get(action, Scene.MATCHED))
    real: dict[str, Any] = {"path_parameters": {"internship_id": iid}}
    if action == "selection":  # the one body that names somebody: name the applicant too
        return [real, {**real, "body": {"launcher_id": cast.selected["id"]}}]
    return [real]


# ---------------------------------------------------------------- checks


def _compiles(pattern: str) -> bool:
    try:
        jsonschema_rs.validator_for({"type": "string", "pattern": pattern})
    except jsonschema_rs.ValidationError:
        return False
    return True


def _declared(operation: APIOperation, field: str) -> dict[str, Any]:
    """The schema the document declares for one field the API refused, named as its 422
    names it ("company", "skills.1", "query.cursor", "header.Idempotency-Key")."""
    location, _, name = field.partition(".")
    for parameter in operation.definition.raw.get("parameters", []):
        if parameter["in"] == location and parameter["name"].lower() == name.lower():
            return dict(parameter["schema"])
    content = operation.definition.raw.get("requestBody", {}).get("content", {})
    ref = content.get("application/json", {}).get("schema", {}).get("$ref", "")
    model = operation.schema.raw_schema["components"]["schemas"].get(ref.rsplit("/", 1)[-1], {})
    prop: dict[str, Any] = model.get("properties", {}).get(location, {})
    return dict(prop.get("items", prop) if name else prop)


def _known_disagreement(declared: dict[str, Any], problem: str) -> bool:
    """Where the document admits what the request models refuse, knowingly:
    - a pattern JSON Schema tools cannot compile, so they ignore it (none today:
      test_declared_patterns_compile keeps it so);
    - `format: email`, which admits the special-use domains (`.test`, `localhost`) that
      pydantic's EmailStr refuses (no JSON Schema keyword says so);
    - integers written with a fraction (`5.0`): JSON Schema's `integer` admits them, the API's
      strict integers refuse them on purpose (no "10" for 10, no 10.0 either)."""
    for schema in [declared, *declared.get("anyOf", [])]:  # optional parameters: T or null
        pattern = schema.get("pattern")
        if (
            (pattern is not None and not _compiles(pattern))
            or schema.get("format") == "email"
            or (schema.get("type") == "integer" and problem == "Input should be a valid integer")
        ):
            return True
    return False


def request_model_accepts_valid_input(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    """A case the document calls valid is not refused by the request models (the 422 that
    lists the fields at fault). Refusals that depend on the state, on Stripe or on the fee
    floor name no such list and are fine."""
    if case.meta is None or case.meta.generation.mode != GenerationMode.POSITIVE:
        return
    if response.status_code != 422:
        return
    errors = response.json()["error"]["details"].get("errors", [])
    unknown = [
        e
        for e in errors
        if not _known_disagreement(_declared(case.operation, e["field"]), e["problem"])
    ]
    if unknown:
        raise AssertionError(f"valid by the document, refused by the API: {unknown}")


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    request_model_accepts_valid_input,
]


# ---------------------------------------------------------------- the fuzzer


def _send(
    case: schemathesis.Case,
    mode: GenerationMode,
    session: requests.Session,
    caller: str,
    headers: dict[str, str],
    failures: dict[str, str],
) -> None:
    operation = case.operation
    if mode == GenerationMode.POSITIVE and case.headers:
        # A generated Idempotency-Key repeats across cases ("0"), and a key reused with another
        # request is refused (422): a fresh one per case lets valid requests reach the workflow.
        for name, key in list(case.headers.items()):
            if name.lower() == "idempotency-key" and isinstance(key, str):
                case.headers[name] = f"{key[:240]}-{next(KEYS)}"
    response = case.call(session=session, headers=headers, timeout=30)
    SENT[caller] += 1
    try:
        case.validate_response(response, checks=CHECKS, headers=headers)
    except FailureGroup as group:
        for failure in group.exceptions:
            key = f"{type(failure).__name__} {response.status_code}: {failure.title}"
            curl = case.as_curl_command(headers=headers)
            failures.setdefault(key, f"{failure.message}\n    {curl}")
    if headers and operation.label == ROTATION and response.status_code == 200:
        # The token was rotated: go on with the new one, as its owner would.
        headers["Authorization"] = f"Bearer {response.json()['api_token']}"


def _fuzz(
    operation: APIOperation, caller: str, headers: dict[str, str], pins: list[dict[str, Any]]
) -> dict[str, str]:
    """Send the examples of one operation as one caller: every distinct failure, with a curl
    command that reproduces it."""
    failures: dict[str, str] = {}
    with requests.Session() as session:
        for mode, examples in EXAMPLES.items():
            # Pinned cases twice as likely as free ones: most go to a real internship.
            strategies = [operation.as_strategy(generation_mode=mode)]
            strategies += [operation.as_strategy(generation_mode=mode, **pin) for pin in pins] * 2

            def send(case: schemathesis.Case, mode: GenerationMode) -> None:
                _send(case, mode, session, caller, headers, failures)

            run = hypothesis.settings(
                max_examples=examples,
                deadline=None,
                derandomize=True,
                database=None,
                phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
                suppress_health_check=list(hypothesis.HealthCheck),
            )(hypothesis.given(case=st.one_of(strategies), mode=st.just(mode))(send))
            try:
                run()
            except hypothesis.errors.Unsatisfiable:
                # Nothing this operation takes can be invalid (only an optional, untyped
                # header, say): there is no negative case to send.
                assert mode == GenerationMode.NEGATIVE
    return failures


# ---------------------------------------------------------------- the tests


def test_the_live_document_has_the_operations_fuzzed(schema: BaseSchema) -> None:
    results = list(schema.get_all_operations())
    live = [result.ok().label for result in results if isinstance(result, Ok)]
    assert len(live) == len(results), "the document has operations schemathesis cannot read"
    assert sorted(live) == sorted(LABELS)


@pytest.mark.parametrize(
    ("caller", "label"),
    [
        pytest.param(
            caller,
            label,
            id=f"{caller} {label}",
            marks=[pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[caller, label])]
            if (caller, label) in KNOWN_BUGS
            else [],
        )
        for caller in CALLERS
        for label in LABELS
    ],
)
async def test_fuzz(api: Api, schema: BaseSchema, cast: Cast, caller: str, label: str) -> None:
    method, path = label.split(" ", 1)
    operation = schema[path][method]
    pins = await _pinned(api, cast, caller, label)
    headers = cast.headers(PARTIES.get(caller, caller))
    failures = await asyncio.to_thread(_fuzz, operation, caller, headers, pins)
    if label == ROTATION and caller in PARTIES:
        cast.party(PARTIES[caller])["api_token"] = headers["Authorization"].removeprefix("Bearer ")
    assert not failures, "\n\n".join(f"{k}\n{v}" for k, v in failures.items())


def _patterns(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["pattern"]} if isinstance(node.get("pattern"), str) else set()
        return found.union(*(_patterns(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_patterns(v) for v in node))
    return set()


def test_declared_patterns_compile(schema: BaseSchema) -> None:
    broken = sorted(p for p in _patterns(schema.raw_schema) if not _compiles(p))
    assert not broken, broken


def test_the_documented_422_is_the_error_shape(schema: BaseSchema) -> None:
    doc = schema.raw_schema
    wrong = set()
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            content = operation["responses"].get("422", {}).get("content", {})
            ref = content.get("application/json", {}).get("schema", {}).get("$ref", "")
            declared = doc["components"]["schemas"].get(ref.rsplit("/", 1)[-1], {})
            if "error" not in declared.get("required", []):
                wrong.add(f"{method.upper()} {path}")
    assert not wrong, sorted(wrong)


async def test_a_body_that_is_not_utf8_is_malformed_json(api: Api) -> None:
    response = await api.http.post(
        "/v1/launchers", content=b'{"name": "\xff"}', headers={"Content-Type": "application/json"}
    )
    problem = error_of(response, 422)["details"]["errors"][0]
    assert problem["field"] == "body" and "not valid JSON" in problem["problem"]


def test_fuzz_cases_sent(capsys: pytest.CaptureFixture[str]) -> None:
    total = sum(SENT.values())
    with capsys.disabled():
        print(f"\nschema fuzz: {total} cases sent, per caller {dict(SENT)}")
    if total:  # nothing was sent when only this test was selected
        assert total >= len(LABELS) * len(CALLERS) * sum(EXAMPLES.values()) * 3 // 4

"""Stored histories must replay on today's workflow code.

A change to the lifecycle that would break workflows already running fails here; guard such
changes with `workflow.patched(...)`. Re-record after an intended, patched change with
`RECORD_HISTORIES=1 .venv/bin/python -m pytest -m stack`, in one process (the lifecycle tests
write tests/histories/; `make test`'s parallel processes would list it while it is written).
"""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from core.codec import data_converter
from tests.conftest import HISTORIES, HISTORY_CODEC_KEY
from workflows.internship import InternshipWorkflow

STORED = {p.stem: p.read_text() for p in sorted(HISTORIES.glob("*.json"))}


def test_histories_are_stored() -> None:
    assert len(STORED) >= 10, "tests/histories/ lost its recorded lifecycles"


@pytest.mark.parametrize("name", STORED)
async def test_stored_history_replays(name: str) -> None:
    history = WorkflowHistory.from_json(name, STORED[name])
    replayer = Replayer(
        workflows=[InternshipWorkflow], data_converter=data_converter(HISTORY_CODEC_KEY)
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None

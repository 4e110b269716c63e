"""The stack layer: the workflow run by the real worker and its activities, on Temporal's
time-skipping test server, with the local Stripe server, a real SMTP listener, the database and
the API over HTTP (the session fixtures of tests/conftest.py: `world`, `api`, `env`, `worker`).

test_money_properties.py drives the unit layer's harness (the workflow with its activities
replaced) for about 90 s, too long for `make unit`: its fixtures come from tests/unit/conftest.py.
"""

from __future__ import annotations

from tests.unit.conftest import harness, unit_env

__all__ = ["harness", "unit_env"]

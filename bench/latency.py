"""Latency: each transition through the API (HTTP to `python -m api`, which makes the update)
against the same transition as a direct `execute_update` on the bare baseline, at 1 and at 20
concurrent clients; and the 5xx answers with 20 and with 100 clients driving lifecycles.
"""

from __future__ import annotations

from bench.lifecycle import Pair, drive, drivers
from bench.stack import Service, Stack

# (concurrent clients, lifecycles each): 7 transitions per lifecycle, 140 samples or more.
LEVELS = ((1, 20), (20, 3))
CROWD = 100  # clients for the error count, one lifecycle each


async def measure(stack: Stack, svc: Service, pairs: list[Pair]) -> dict[str, object]:
    bare, api = drivers(stack.bare_client, svc.http, pairs)
    out: dict[str, object] = {}
    for clients, each in LEVELS:
        theirs = await drive(clients, each, bare)
        ours = await drive(clients, each, api)
        for q, name in ((0.5, "p50"), (0.99, "p99")):
            out[f"api_{name}_ratio_{clients}"] = round(ours.percentile(q) / theirs.percentile(q), 3)
            out[f"api_{name}_ms_{clients}"] = round(ours.percentile(q) * 1000, 1)
            out[f"baseline_{name}_ms_{clients}"] = round(theirs.percentile(q) * 1000, 1)
        out[f"errors_5xx_{clients}"] = ours.errors_5xx
        out[f"lifecycles_failed_{clients}"] = len(ours.failures) + len(theirs.failures)
    crowd = await drive(CROWD, 1, api)
    out[f"errors_5xx_{CROWD}"] = crowd.errors_5xx
    out[f"lifecycles_failed_{CROWD}"] = len(crowd.failures)
    out[f"crowd_lifecycles_per_s_{CROWD}"] = round(crowd.rate, 2)
    return out

"""bench.guard's verdict: CI fails when a happy path costs more billable actions than committed,
or more than half again the committed CPU over the bare baseline's (measured in the same run),
or when a lifecycle did not complete."""

from __future__ import annotations

from bench.guard import BUDGET, Budget, failures
from bench.throughput import cpu_ratio

BUDGETED = Budget(
    happy_path_actions=29, cpu_ratio_to_bare=4.0, cpu_ms_per_lifecycle_total=400, lifecycles=5
)


def measured(**figures: object) -> dict[str, object]:
    return {
        "happy_path_actions": 29,
        "cpu_ratio_to_bare": 4.0,
        "cpu_ms_per_lifecycle_total": 400.0,
        "lifecycles_failed_5": 0,
        **figures,
    }


def test_within_the_budget_nothing_fails() -> None:
    assert failures(measured(), BUDGETED) == []
    assert failures(measured(happy_path_actions=25), BUDGETED) == []
    # Noise: up to half again the committed ratio passes.
    assert failures(measured(cpu_ratio_to_bare=6.0), BUDGETED) == []


def test_a_slower_machine_is_not_a_regression() -> None:
    # Twice the milliseconds, and the bare baseline's twice too: the same ratio.
    assert failures(measured(cpu_ms_per_lifecycle_total=800.0), BUDGETED) == []


def test_one_more_billable_action_fails() -> None:
    [failure] = failures(measured(happy_path_actions=30), BUDGETED)
    assert failure.startswith("happy_path_actions=30")
    assert "29" in failure


def test_more_than_half_again_the_cpu_fails() -> None:
    [failure] = failures(measured(cpu_ratio_to_bare=6.01), BUDGETED)
    assert failure.startswith("cpu_ratio_to_bare=6.01")
    assert "limit 6.00" in failure


def test_the_allowed_growth_is_the_budgets() -> None:
    strict = Budget(29, 4.0, 400, cpu_growth_allowed=1.1, lifecycles=5)
    assert failures(measured(cpu_ratio_to_bare=4.5), strict) != []


def test_both_regressions_are_reported_together() -> None:
    found = failures(measured(happy_path_actions=31, cpu_ratio_to_bare=9.0), BUDGETED)
    assert len(found) == 2


def test_an_incomplete_run_fails_rather_than_passing_unmeasured() -> None:
    assert any("did not complete" in f for f in failures(measured(lifecycles_failed_5=2), BUDGETED))
    # No lifecycle completed: no CPU figure at all.
    unmeasured = measured()
    del unmeasured["cpu_ratio_to_bare"]
    assert failures(unmeasured, BUDGETED) == ["no cpu_ratio_to_bare measured"]


def test_the_committed_budget_loads() -> None:
    budget = Budget.load(BUDGET)
    assert budget.happy_path_actions <= 29  # the README's target
    assert budget.cpu_ratio_to_bare > 1


def test_the_ratio_is_left_out_when_a_side_completed_nothing() -> None:
    ours, bare = {"cpu_ms_per_lifecycle_total": 380.0}, {"cpu_ms_per_lifecycle_bare_total": 100.0}
    assert cpu_ratio(ours, bare) == {"cpu_ratio_to_bare": 3.8}
    assert cpu_ratio({}, bare) == {} and cpu_ratio(ours, {}) == {}

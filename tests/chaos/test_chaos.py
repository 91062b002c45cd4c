"""The short chaos suite: each fault, on redis and on hybrid, under load from real processes.

What each test shows (the guarantees of docs/reliability.md, "Chaos suite"):

- no request fails while Redis is killed, stopped, resharded or failing over (fail-open);
  only requests in flight on a SIGKILLed worker, or sent on its connections before its
  replacement is up, are lost, with the worker;
- no read that starts more than the stale bound after an acknowledged invalidation returns
  the invalidated version (for an invalidation acknowledged during the fault, the bound counts
  from the fault's end);
- no invalidation is lost: at the end every worker serves the last acknowledged version;
- the cache comes back: a hit on an entry filled after the fault.

`python -m tests.chaos.run` runs the same scenarios at full scale and prints the numbers.
"""

from __future__ import annotations

import asyncio

import pytest

from .report import format_table
from .runner import BACKENDS, SCENARIOS, ChaosApps, Scenario, run_scenario, violations

pytestmark = [pytest.mark.redis, pytest.mark.chaos, pytest.mark.timeout(90)]

CASES = [
    pytest.param(scenario, backend, id=f"{backend}-{scenario.slug}")
    for scenario in SCENARIOS
    if scenario.short
    for backend in BACKENDS
]


@pytest.mark.parametrize(("scenario", "backend"), CASES)
async def test_guarantees_hold_under_the_fault(
    chaos_apps: ChaosApps, scenario: Scenario, backend: str
) -> None:
    # Inside pytest-timeout's limit, so that a hang fails with the scenario's own traceback.
    outcome = await asyncio.wait_for(run_scenario(chaos_apps, scenario, backend), 80)
    assert not violations(outcome), f"{scenario.name}, {backend}:\n{format_table([outcome])}"

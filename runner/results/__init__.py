"""What the stored trials of a study say, read alike by the runner (runner.rounds: which round comes next)
and the report: below both, above the trials.

- `configs`: a configuration (complete trials with equal params but the seed), its curves, a trial left out.
- `counted`: which stored trials count for a spec (its code and config now, a user module's versions).
- `reading`: a study's stored trials read from one Store into configurations, and their per-image correctness.
- `stats`: every figure of chance: means, t-intervals, paired t-tests, the bootstrap, Holm, the effects.
- `looks`: seeds in rounds: what the stored trials decide at each look, the plan of a study in rounds.
"""
from __future__ import annotations

from runner.results.configs import CURVES, Config, Curve, Excluded, config_key
from runner.results.looks import Plan, plan, plan_in, stored_plan
from runner.results.reading import Stored, configurations, read_stored

__all__ = ["CURVES", "Config", "Curve", "Excluded", "config_key", "Plan", "plan", "plan_in", "stored_plan", "Stored",
           "configurations", "read_stored"]

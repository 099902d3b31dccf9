"""Draws over the cap in the first and the last quarter of a search's trials (by number), and its budget:
python reports/bench/refused/count.py STORAGE STUDY"""
import sys

import optuna

from runner.record import state_of

trials = sorted(optuna.load_study(study_name=sys.argv[2], storage=sys.argv[1]).get_trials(), key=lambda t: t.number)
states = [state_of(t) for t in trials]
q = len(states) // 4
print(f"{len(states)} draws: {states.count('refused')} refused (over the cap), "
      f"{sum(s in ('complete', 'pruned') for s in states)} finished, {states.count('fail')} failed")
print(f"refused in the first quarter: {states[:q].count('refused')} of {q}; "
      f"in the last quarter: {states[-q:].count('refused')} of {q}")

"""The pruner comparison's table (reports/pruners/run.sh): each pruner's search at an equal wall-clock budget.

    python reports/pruners/table.py OUT [MINUTES]
"""
import sys
from datetime import timedelta

import optuna
from optuna.trial import TrialState

out = sys.argv[1]
budget = timedelta(minutes=float(sys.argv[2]) if len(sys.argv) > 2 else 12)
url = f"sqlite:///{out}/prune.sqlite"
wall = {line.split()[0]: line.split()[2].removeprefix("seconds=") for line in open(f"{out}/times.txt")}
print(f"| pruner | trials started | complete | pruned | refused (over the cap) | epochs trained "
      f"| best val acc within {budget.seconds // 60} min (%) | best val acc, all (%) | wall s |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for arm in ("median", "patient", "hyperband", "none"):
    trials = optuna.load_study(study_name=f"prune_{arm}-search", storage=url).get_trials()
    start = min(t.datetime_start for t in trials if t.datetime_start)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    refused = [t for t in trials if t.state == TrialState.FAIL and "max_params" in str(t.user_attrs.get("fail_reason"))]
    epochs = sum(len(t.user_attrs.get("epochs", [])) for t in trials if "copy_of" not in t.user_attrs)
    within = [t.value for t in complete if t.datetime_complete - start <= budget]
    print(f"| {arm} | {len(trials) - len(refused)} | {len(complete)} | {len(pruned)} | {len(refused)} | {epochs} "
          f"| {max(within):.2f} | {max(t.value for t in complete):.2f} | {wall.get(arm, '?')} |")

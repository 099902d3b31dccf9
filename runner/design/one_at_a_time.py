"""One factor at a time against a baseline ([grid].design = "one-at-a-time"): the settings and their comparisons.

The question "does X improve the model?" is a comparison of the model with X against the same model without
it, trained the same way. A full grid answers it among other things, a fraction of stacks answers another
question (each factor averaged over stacks of the others); this design asks it directly and nothing else:

- the baseline is the first value of every [grid] axis (or a [[runs]] entry with baseline = true);
- every other value of an axis is added to the baseline alone: axes of 2, 2 and 3 values plan
  1 + 1 + 1 + 2 = 5 settings;
- [grid].across crosses them with other axes (a budget: lr, epochs, the model...), and every comparison is
  taken within one of its combinations;
- a [[runs]] entry (a stack of several factors) is crossed with the across axes it does not set itself and
  compared with the baseline at the same budget; one of another model, or marked baseline = "tuned" (the
  baseline at its own best budget, what the others are also held against), is compared with none.

Plain dicts in, plain dicts out: runner.spec builds its settings and comparisons from these.
"""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any

from runner.text import toml_value

__all__ = ["NAME", "Comparison", "budgets", "settings", "comparisons", "within_text"]

NAME = "one-at-a-time"  # [grid].design's word for it


@dataclass(frozen=True)
class Comparison:
    """One setting against its baseline, within one combination of the across axes."""
    setting: dict[str, Any]  # what is compared (model and every axis it sets)
    baseline: dict[str, Any]  # the baseline it is compared with, at the same budget
    factor: str  # the axis changed, or a [[runs]] entry's label
    off: Any  # the baseline's value of the axis (a run: "baseline")
    on: Any  # the setting's value (a run: its label)
    within: dict[str, Any]  # the across axes' values both share ({} without across)


def _key(setting: dict[str, Any]) -> str:
    return json.dumps(setting, sort_keys=True)


def budgets(across: tuple[tuple[str, tuple[Any, ...]], ...]) -> list[dict[str, Any]]:
    """Every combination of the across axes, in the order a full grid lists them ([{}] without any)."""
    names = [a for a, _ in across]
    return [dict(zip(names, values)) for values in itertools.product(*(v for _, v in across))]


def within_text(within: dict[str, Any]) -> str:
    """The across axes' values as a label: "lr=0.05 epochs=20"; "" without across."""
    return " ".join(f"{a}={toml_value(v)}" for a, v in within.items())


def _base(grid: tuple[tuple[str, tuple[Any, ...]], ...], baseline_run: dict[str, Any] | None) -> dict[str, Any]:
    return {**{a: v[0] for a, v in grid}, **(baseline_run or {})}


def _run_budgets(run: dict[str, Any], across: tuple) -> list[dict[str, Any]]:
    """The combinations of the across axes a run is crossed with: those it does not set itself."""
    return budgets(tuple((a, v) for a, v in across if a not in run))


def settings(grid: tuple, across: tuple, runs: list[dict[str, Any]], roles: list[str]) -> list[dict[str, Any]]:
    """Every setting, baseline first within each budget, then each change alone, then the runs; duplicates
    removed. `roles` holds each run's role: "" (compared), "baseline" or "tuned"."""
    base_run = next((r for r, role in zip(runs, roles) if role == "baseline"), None)
    base = _base(grid, base_run)
    out: dict[str, dict[str, Any]] = {}
    for within in budgets(across):
        out.setdefault(_key({**base, **within}), {**base, **within})
        for axis, values in grid:
            for v in values:
                if v != base[axis]:
                    s = {**base, axis: v, **within}
                    out.setdefault(_key(s), s)
    for run, role in zip(runs, roles):
        if role == "baseline":
            continue
        for within in _run_budgets(run, across):
            s = {**within, **run}
            out.setdefault(_key(s), s)
    return list(out.values())


def comparisons(grid: tuple, across: tuple, runs: list[dict[str, Any]], roles: list[str], labels: list[str],
                model_of: Any, budget_keys: set[str]) -> list[Comparison]:
    """Each setting against the baseline at its budget.

    Args:
        model_of: setting -> its model's name (a setting may leave the model to the spec's first).
        budget_keys: the keys a run may set that name a budget rather than a factor (the train keys): a run
            that sets them is compared with the baseline at its own budget, if the design has one.
    """
    base_run = next((r for r, role in zip(runs, roles) if role == "baseline"), None)
    base = _base(grid, base_run)
    planned = {_key(s) for s in settings(grid, across, runs, roles)}
    out = []
    for within in budgets(across):
        baseline = {**base, **within}
        for axis, values in grid:
            for v in values:
                if v != base[axis]:
                    out.append(Comparison({**base, axis: v, **within}, baseline, axis, base[axis], v, within))
    for run, role, label in zip(runs, roles, labels):
        if role or model_of(run) != model_of(base):
            continue
        for within in _run_budgets(run, across):
            setting = {**within, **run}
            own = {k: setting[k] for k in setting if k in budget_keys or k in dict(across)}
            baseline = {**base, **own}
            if _key(baseline) not in planned or _key(baseline) == _key(setting):
                continue
            shared = {a: setting[a] for a, _ in across if a in setting}
            out.append(Comparison(setting, baseline, label, "baseline", label, shared))
    return out

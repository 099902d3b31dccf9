"""Reading an exploration: how each configuration fits, and the budget and strengths it chooses to confirm.

Overfitting, from each configuration's mean curves (train accuracy as trained, held-out accuracy and loss):
- underfits: its training accuracy as trained (augmentation and dropout on) ends below its held-out accuracy;
- overfits: its held-out loss bottoms out at or before three quarters of its epochs and ends at least 10% above
  that lowest value;
- neither, otherwise.

The choice (a one-at-a-time design across two or more budgets), from the study's metric on the held-out split:
- the budget: where the compared settings of the baseline's model (each regularizer alone, each [[runs]] stack)
  do best on average;
- the tuned baseline's: where the baseline itself does best; each other model's: where it does best;
- kept: every factor and [[runs]] entry whose difference from the baseline is positive at the chosen budget; for a
  numeric axis with several values, its best one there; the stack: the kept single factors together.
"""
from __future__ import annotations

import json
from typing import Any

import numpy as np

from runner.design.one_at_a_time import budgets, within_text
from runner.report.contents import Choice, Config, Fit, config_key
from runner.spec import Spec

__all__ = ["fits", "choose", "FIT_RULE", "CHOICE_RULE", "OVERFIT_EPOCH_SHARE", "OVERFIT_RISE"]

OVERFIT_EPOCH_SHARE = 0.75  # the held-out loss bottoms out by this share of the epochs ...
OVERFIT_RISE = 0.10  # ... and ends at least this much above its lowest
FIT_RULE = (f"underfits: its training accuracy as trained (augmentation and dropout on) ends below its held-out "
            f"accuracy; overfits: its held-out loss bottoms out within the first {OVERFIT_EPOCH_SHARE:.0%} of its "
            f"epochs and ends at least {OVERFIT_RISE:.0%} above that lowest; neither, otherwise")
CHOICE_RULE = (
    "the budget is the one at which the compared settings of the baseline's model (each regularizer alone, each "
    "stack) have the highest mean of the study's metric on the held-out split",
    "the tuned baseline's budget is the one at which the baseline itself does best, and each other model's the one "
    "at which it does best",
    "kept for the confirmation: every regularizer (and stack) whose difference from the baseline is positive at the "
    "chosen budget, for a numeric axis with several values its best one there; the stack is the kept regularizers "
    "together",
)


def fits(configs: list[Config]) -> list[Fit]:
    """Each configuration's fit, by FIT_RULE."""
    out = []
    for c in configs:
        loss, train, held = c.curves["test_loss"], c.curves["train_acc"], c.curves["test_acc"]
        if not loss.epochs:
            continue
        best = int(np.argmin(loss.mean))
        last = len(loss.epochs) - 1
        rise = loss.mean[last] / loss.mean[best] - 1 if loss.mean[best] > 0 else 0.0
        gap = train.mean[last] - held.mean[last]
        early = loss.epochs[best] <= OVERFIT_EPOCH_SHARE * loss.epochs[last]
        verdict = "underfits" if gap < 0 else "overfits" if early and rise >= OVERFIT_RISE else "neither"
        out.append(Fit(c.label, train.mean[last], held.mean[last], gap, loss.epochs[best], loss.epochs[last], rise,
                       verdict))
    return out


def _key(spec: Spec, setting: dict[str, Any]) -> str:
    params = dict(spec.point(setting, 0).params)
    params.pop("seed")
    return config_key(params)


def choose(spec: Spec, configs: list[Config]) -> Choice | None:
    """What an exploration across budgets chooses (CHOICE_RULE); None for any other study, or before the baseline
    and its comparisons have a complete trial at every budget."""
    combos = budgets(spec.across)
    comparisons = spec.comparisons()
    if not spec.against_baseline or len(combos) < 2 or not comparisons:
        return None
    sign = 1.0 if spec.study.direction == "maximize" else -1.0
    value = {c.key: float(np.mean(c.final)) for c in configs}
    at = lambda s: value.get(_key(spec, s))  # noqa: E731
    rows, score = [], {}
    for combo in combos:
        mine = [c for c in comparisons if c.within == combo]
        base = at(mine[0].baseline) if mine else None
        values = [v for c in mine if (v := at(c.setting)) is not None]
        if base is None or len(values) < len(mine):
            return None
        rows.append((within_text(combo), base, float(np.mean(values)), len(values)))
        score[json.dumps(combo)] = (float(np.mean(values)), base)
    budget = json.loads(max(score, key=lambda k: sign * score[k][0]))
    tuned = json.loads(max(score, key=lambda k: sign * score[k][1]))
    first = next(iter(spec.models))
    base_model = comparisons[0].baseline.get("model", first)
    models = []
    for name in spec.models:
        if name == base_model:
            continue
        mine = [(s, v) for s in spec.settings() if s.get("model", first) == name and (v := at(s)) is not None]
        if mine:
            s, v = max(mine, key=lambda sv: sign * sv[1])
            models.append((name, {a: s[a] for a, _ in spec.across if a in s}, v))
    settings = []
    for factor, on in dict.fromkeys((c.factor, json.dumps(c.on)) for c in comparisons):
        mine = [(c, v) for c in comparisons if c.factor == factor and json.dumps(c.on) == on
                and (v := at(c.setting)) is not None]
        c, v = max(mine, key=lambda cv: sign * cv[1])
        settings.append((f"{factor} = {on}" if c.off != "baseline" else factor, v, within_text(c.within)))
    here = [(c, at(c.setting) - at(c.baseline)) for c in comparisons if c.within == budget]
    kept: dict[str, tuple[Any, float]] = {}
    for c, delta in here:
        if sign * delta <= 0:
            continue
        numeric = isinstance(c.on, float) and not isinstance(c.on, bool)
        key = c.factor if numeric else f"{c.factor}={json.dumps(c.on)}"
        if key not in kept or sign * delta > sign * kept[key][1]:
            kept[key] = (c.on, delta)
    kept_rows = tuple((k.split("=")[0], on, d) for k, (on, d) in kept.items())
    best_of: dict[str, tuple[Any, float]] = {}  # one value per axis in the stack: its best there
    for f, on, d in kept_rows:
        if f in dict(spec.grid) and (f not in best_of or sign * d > sign * best_of[f][1]):
            best_of[f] = (on, d)
    stack = tuple((f, on) for f, (on, _) in best_of.items())
    return Choice(CHOICE_RULE, tuple(rows), budget, tuned, tuple(models), tuple(settings), kept_rows, stack)

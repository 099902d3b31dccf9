"""The report's statistics: mean and std over seeds, paired t-tests, Holm's correction, the grid's effects."""
from __future__ import annotations

import itertools
import json
import math
from typing import Any, Callable

import numpy as np

from runner.report.data import Config, Effect, config_key
from runner.spec import REGULARIZERS, Spec, is_layer_axis

__all__ = ["ALPHA", "holm", "versus_best", "mean_of", "std_of", "paired_t", "grid_effects"]

ALPHA = 0.05  # significance level, after Holm's correction


# ---------------------------------------------------------------- statistics


def mean_of(xs: tuple[float, ...] | list[float]) -> float | None:
    """The mean of the values; None when there are none."""
    return float(np.mean(xs)) if len(xs) else None


def std_of(xs: tuple[float, ...] | list[float]) -> float | None:
    """The sample standard deviation (ddof=1) of the values; None with fewer than 2."""
    return float(np.std(xs, ddof=1)) if len(xs) > 1 else None


def paired_t(diffs: list[float]) -> tuple[float, tuple[float, float] | None, float | None]:
    """(mean, 95% t-interval, two-sided p of the paired t-test) of paired differences."""
    from scipy import stats

    n = len(diffs)
    mean = float(np.mean(diffs)) if n else math.nan
    if n < 2:
        return mean, None, None
    sd = float(np.std(diffs, ddof=1))
    if sd == 0.0:  # every pair moved by the same amount: t is infinite (or 0/0 = no effect)
        return mean, (mean, mean), (1.0 if mean == 0.0 else 0.0)
    se = sd / math.sqrt(n)
    q = float(stats.t.ppf(0.975, n - 1))
    p = float(2 * stats.t.sf(abs(mean / se), n - 1))
    return mean, (mean - q * se, mean + q * se), p


def holm(ps: list[float | None]) -> list[float | None]:
    """Holm's step-down correction of p-values (None stays None and is not counted)."""
    order = sorted((i for i, p in enumerate(ps) if p is not None), key=lambda i: (ps[i], i))
    out: list[float | None] = [None] * len(ps)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * ps[i]))  # type: ignore[operator]
        out[i] = running
    return out


def _verdict(delta: float, p: float | None, direction: str) -> str:
    if p is None:
        return "too few pairs"
    if p >= ALPHA:
        return "no detectable effect"
    better = delta > 0 if direction == "maximize" else delta < 0
    return "improves" if better else "hurts"


# ---------------------------------------------------------------- effects


def _factors(spec: Spec) -> list[tuple[str, Any, tuple[Any, ...]]]:
    """(axis, "off" value, other values) for each grid axis with 2+ values, except model."""
    out = []
    for axis, values in spec.grid:
        if axis == "model" or len(values) < 2:
            continue
        off = REGULARIZERS[axis].default if axis in REGULARIZERS else values[0]
        off = off if off in values else values[0]
        out.append((axis, off, tuple(v for v in values if v != off)))
    return out


def _grid_models(spec: Spec) -> list[str]:
    grid = dict(spec.grid)
    return list(grid.get("model", (next(iter(spec.models)),)))


def _grid_finals(spec: Spec, model: str, configs: list[Config]) -> dict[tuple[str, int], float]:
    """(key without model, seed) -> final metric, for the model's trials at grid settings only."""
    grid = dict(spec.grid)
    names = list(grid)
    keys = set()
    for values in itertools.product(*grid.values()):
        setting = dict(zip(names, values))
        if setting.get("model", model) == model:
            params = dict(spec.point(setting, 0).params)
            params.pop("seed")
            keys.add(config_key(params))
    out = {}
    for c in configs:
        if c.key in keys:
            for seed, value in zip(c.seeds, c.final):
                out[config_key(c.params), seed] = value
    return out


def _pairs(finals: dict[tuple[str, int], float], signs: dict[tuple[tuple[str, Any], ...], float]) -> list[float]:
    """Contrasts over matched trials: sum of sign * final over the corners, for every base that has all.

    `signs` maps a tuple of (axis, value) assignments (a corner) to its sign in the contrast.
    """
    corners = list(signs)
    anchor = dict(corners[0])
    diffs = []
    for (key, seed), _ in sorted(finals.items()):
        params = json.loads(key)
        if any(params.get(a) != v for a, v in anchor.items()):
            continue
        total = 0.0
        for corner, sign in signs.items():
            value = finals.get((config_key({**params, **dict(corner)}), seed))
            if value is None:
                break
            total += sign * value
        else:
            diffs.append(total)
    return diffs


def versus_best(configs: list[Config], direction: str) -> list[Effect]:
    """Every other configuration against the best, paired by seed (other minus best), Holm-corrected."""
    best = configs[0]
    by_seed = dict(zip(best.seeds, best.final))
    rows = [(c.model, "vs best", best.label, c.label, [v - by_seed[s] for s, v in zip(c.seeds, c.final) if s in by_seed])
            for c in configs[1:]]

    def verdict(delta: float, p: float | None) -> str:
        if p is None:
            return "too few pairs"
        return "worse" if p < ALPHA else "no detectable difference"
    return _tested(rows, verdict)


def grid_effects(spec: Spec, configs: list[Config]) -> tuple[list[Effect], list[Effect]]:
    """Main effects and two-way interactions of the grid's factors, Holm-corrected per family."""
    mains: list[tuple[str, str, Any, Any, list[float]]] = []
    inters: list[tuple[str, str, Any, Any, list[float]]] = []
    factors = _factors(spec)
    for model in _grid_models(spec):
        finals = _grid_finals(spec, model, configs)
        mine = [f for f in factors if not is_layer_axis(f[0]) or f[0].split(".")[0] == model]  # not another's layer
        for axis, off, ons in mine:
            for on in ons:
                diffs = _pairs(finals, {((axis, on),): 1.0, ((axis, off),): -1.0})
                mains.append((model, axis, off, on, diffs))
        for (a, a0, a_ons), (b, b0, b_ons) in itertools.combinations(mine, 2):
            for a1, b1 in itertools.product(a_ons, b_ons):
                signs = {((a, a1), (b, b1)): 1.0, ((a, a1), (b, b0)): -1.0,
                         ((a, a0), (b, b1)): -1.0, ((a, a0), (b, b0)): 1.0}
                inters.append((model, f"{a} x {b}", [a0, b0], [a1, b1], _pairs(finals, signs)))
    direction = spec.study.direction
    effects = _tested(mains, lambda d, p: _verdict(d, p, direction))
    interactions = _tested(inters, lambda d, p: "too few pairs" if p is None
                           else "interacts" if p < ALPHA else "no detectable interaction")
    return effects, interactions


def _tested(rows: list[tuple[str, str, Any, Any, list[float]]],
            verdict: Callable[[float, float | None], str]) -> list[Effect]:
    tests = [paired_t(diffs) for *_, diffs in rows]
    corrected = holm([p for _, _, p in tests])
    return [Effect(model, factor, off, on, len(diffs), mean, ci, p, pc, verdict(mean, pc))
            for (model, factor, off, on, diffs), (mean, ci, p), pc in zip(rows, tests, corrected)]

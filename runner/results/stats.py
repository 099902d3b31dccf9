"""The statistics of stored trials: mean and std over seeds, paired t-tests, Holm's correction, the grid's effects.

Two tests for every effect and every comparison with the best:
- the paired t-test over seeds, which treats the test set as the whole world;
- a bootstrap that resamples both the seeds (the pairs) and the test images, so that the interval
  also counts that the 10,000 test images are a sample. It needs each trial's predictions (stored
  from format 2 on); the verdict uses it where it exists.
Beside the bootstrap, from the same per-image contrasts, what decides a verdict (runner.design.power):
the smallest effect the seeds detect with 80% power at the Holm level the contrast was tested at, the
floor that unlimited seeds would reach, and the seeds that would detect the effect observed.

A fractional grid ([grid].design) has no two settings that differ in one axis only: its main effects
and interactions are contrasts over its runs, one value per seed (runner.design.fractional).
"""
from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import numpy as np

from runner.design import (POWER, Design, aliases, estimable_interactions, estimate_interactions, estimate_main_effects,
                           floor, holm_levels, minimum_detectable_effect, seeds_needed, split_contrast,
                           z_statistic)
from runner.design.one_at_a_time import within_text
from runner.results.configs import Config, config_key
from runner.spec import REGULARIZERS, Spec, is_layer_axis

__all__ = ["Effect", "ALPHA", "BOOTSTRAP", "CHUNK", "POWER", "holm", "versus_best", "mean_of", "std_of", "paired_t", "t_interval",
           "grid_effects", "bootstrap", "power_figures", "Correct", "Pair", "Row", "effect_rows", "best_rows",
           "baseline_rows", "setting_key", "versus_row", "effects_of",
           "sequential", "Sequential"]

ALPHA = 0.05  # significance level, after Holm's correction
BOOTSTRAP = 4000  # resamples of the bootstrap; seeded, so the same trials give the same report
CHUNK = 250  # resamples drawn at a time (the image weights of a chunk: images x 250 floats)
Correct = dict[tuple[str, int], np.ndarray]  # (config key, seed) -> 100 * (predicted == label) per test image


@dataclass(frozen=True)
class Effect:
    """A main effect (to vs from) or a two-way interaction, over paired differences."""

    model: str  # the grid's model whose trials were compared
    factor: str  # an axis, or "a x b" for an interaction
    from_: Any  # the "off" value; for an interaction a list, one value per factor
    to: Any
    n_pairs: int
    delta_mean: float
    ci95: tuple[float, float] | None  # t-interval; None with fewer than 2 pairs
    p_raw: float | None  # paired t-test
    p_value: float | None  # Holm-corrected
    verdict: str  # improves | hurts | no detectable effect | too few pairs (interactions: interacts | ...);
    # from the bootstrap over seeds and test images where the trials stored their predictions, else the t-test
    boot_ci95: tuple[float, float] | None = None  # 95% percentile interval, seeds and test images resampled
    boot_p_raw: float | None = None  # two-sided bootstrap p
    boot_p: float | None = None  # Holm-corrected
    # What decides the verdict (runner.design.power: normal approximation, 80% power), from the bootstrap's
    # per-image contrasts; None where the bootstrap is not the test (no stored predictions, a loss metric).
    level: float | None = None  # the two-sided level Holm's step-down tested it at: 0.05 / (tested - rank)
    detectable: float | None = None  # the smallest |effect| that detectable_seeds seeds detect at `level`
    detectable_seeds: int | None = None  # the seeds it was measured with
    floor: float | None = None  # the same with unlimited seeds: what the test images alone can resolve
    seeds_needed: int | None = None  # the fewest seeds that detect delta_mean; None when it is at or below the floor
    detectable_next: float | None = None  # what detectable_seeds + 1 seeds would detect
    aliases: tuple[str, ...] = ()  # a fractional grid's interaction: the two-way interactions sharing its estimate
    within: str = ""  # one-at-a-time: the across axes' values both sides share ("lr=0.05 epochs=16"), else ""

    @property
    def decisive(self) -> tuple[tuple[float, float] | None, float | None]:
        """(interval, Holm p) of the test the verdict uses: the bootstrap where it exists, else the t-test."""
        return (self.boot_ci95, self.boot_p) if self.boot_p is not None else (self.ci95, self.p_value)


class Pair(NamedTuple):
    """One paired difference of a contrast: the seed it was measured with, its value, and its corners'
    (per-image correctness or None where not stored, sign); a fraction's pair is one seed's contrast."""
    seed: int
    value: float
    corners: list[tuple[np.ndarray | None, float]]


Contrast = list[Pair]


class Row(NamedTuple):
    """One effect to test: whose trials, which factor, from and to what, its pairs and what it is aliased with."""
    model: str
    factor: str
    off: Any
    on: Any
    pairs: Contrast
    aliases: tuple[str, ...] = ()
    within: str = ""  # one-at-a-time: the across axes' values the comparison is taken at ("lr=0.05 epochs=16")


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


def t_interval(xs: tuple[float, ...]) -> tuple[float, float, float] | None:
    """(mean, low, high) of a 95% t-interval; None with fewer than 2 values."""
    mean, ci, _ = paired_t(list(xs))  # the t-interval of values is that of their "differences" from 0
    return None if ci is None else (mean, ci[0], ci[1])


def bootstrap(contrasts: list[np.ndarray | None], seed: int = 0) -> list[tuple[tuple[float, float], float] | None]:
    """(95% percentile interval, two-sided p) of each contrast's mean, resampling pairs and test images.

    A contrast is a (pairs, images) array: each row is one pair's per-image contribution (for a main
    effect, on minus off, in points), so its mean over images is the pair's difference in accuracy.
    One resample draws the test images with replacement (the same draw for every contrast: they share
    one test set) and the pairs with replacement. p is twice the share of resampled means on the far
    side of 0 (+1 smoothing), as a percentile bootstrap's test. None for a contrast without predictions.

    The sums are exact: the per-image values are multiples of a power of two (100 * correct, signed; a
    fraction's contrasts scale them by 2 / 2^k) and the weights are the images' integer counts, so every
    partial sum is exactly representable and a resampled mean that is 0 is 0 on any machine. Weighted by
    count / n instead, its sign was rounding noise that depended on BLAS (its kernel for the CPU, its
    threads): p moved by up to 0.01 between machines, or between 1 and 2 cores, for the same trials.
    """
    rng = np.random.default_rng(seed)
    todo = [i for i, c in enumerate(contrasts) if c is not None and c.shape[0] >= 2 and c.shape[1] > 0]
    if not todo:
        return [None] * len(contrasts)
    n = contrasts[todo[0]].shape[1]
    means = {i: np.empty(BOOTSTRAP) for i in todo}
    for start in range(0, BOOTSTRAP, CHUNK):
        m = min(CHUNK, BOOTSTRAP - start)
        counts = rng.multinomial(n, np.full(n, 1 / n), size=m).T.astype(np.float64)  # (images, m): integers
        for i in todo:
            c = contrasts[i]
            pair_sums = c @ counts  # (pairs, m): n x each pair's difference on the resampled images, exact
            picks = rng.integers(0, c.shape[0], size=(m, c.shape[0]))  # the pairs, resampled
            means[i][start:start + m] = pair_sums[picks, np.arange(m)[:, None]].sum(1) / (n * c.shape[0])
    out: list[tuple[tuple[float, float], float] | None] = [None] * len(contrasts)
    for i in todo:
        x = means[i]
        lo, hi = np.percentile(x, [2.5, 97.5])
        p = min(1.0, 2 * (min(int((x <= 0).sum()), int((x >= 0).sum())) + 1) / (BOOTSTRAP + 1))
        out[i] = ((float(lo), float(hi)), p)
    return out


def _contrast(pairs: Contrast) -> np.ndarray | None:
    """The (pairs, images) array of a contrast, or None when a corner has no stored predictions."""
    if not pairs:
        return None
    rows = []
    for _, _, corners in pairs:
        if any(c is None for c, _ in corners):
            return None
        rows.append(sum(sign * c for c, sign in corners))
    if len({len(r) for r in rows}) != 1:
        return None
    return np.stack(rows)


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


def _grid_configs(spec: Spec, model: str, configs: list[Config]) -> list[Config]:
    """The model's configurations at grid settings."""
    keys = set()
    for setting in spec.grid_settings():  # a fraction's own: a [[runs]] entry at another setting is none of them
        if setting.get("model", model) == model:
            params = dict(spec.point(setting, 0).params)
            params.pop("seed")
            keys.add(config_key(params))
    return [c for c in configs if c.key in keys]


def _grid_finals(mine: list[Config], correct: Correct | None) -> tuple[dict[tuple[str, int], float], Correct | None]:
    """(key without model, seed) -> final metric, and -> predictions, for one model's grid configurations."""
    finals = {(config_key(c.params), s): v for c in mine for s, v in zip(c.seeds, c.final)}
    if correct is None:
        return finals, None
    return finals, {(config_key(c.params), s): correct[c.key, s] for c in mine for s in c.seeds if (c.key, s) in correct}


def _pairs(finals: dict[tuple[str, int], float], signs: dict[tuple[tuple[str, Any], ...], float],
           correct: Correct | None = None) -> Contrast:
    """Contrasts over matched trials: sum of sign * final over the corners, for every base that has all.

    `signs` maps a tuple of (axis, value) assignments (a corner) to its sign in the contrast. Each
    pair comes with its corners' predictions (from `correct`, keyed as `finals`; None where missing).
    """
    corners = list(signs)
    anchor = dict(corners[0])
    out: Contrast = []
    for (key, seed), _ in sorted(finals.items()):
        params = json.loads(key)
        if any(params.get(a) != v for a, v in anchor.items()):
            continue
        total, found = 0.0, []
        for corner, sign in signs.items():
            other = config_key({**params, **dict(corner)})
            value = finals.get((other, seed))
            if value is None:
                break
            total += sign * value
            found.append((None if correct is None else correct.get((other, seed)), sign))
        else:
            out.append(Pair(seed, total, found))
    return out


def best_rows(configs: list[Config], correct: Correct | None = None) -> list[Row]:
    """Every other configuration against the first (the best), paired by seed: other minus best."""
    best = configs[0]
    by_seed = dict(zip(best.seeds, best.final))
    get = (lambda key, s: None) if correct is None else (lambda key, s: correct.get((key, s)))
    return [Row(c.model, "vs best", best.label, c.label,
                [Pair(s, v - by_seed[s], [(get(c.key, s), 1.0), (get(best.key, s), -1.0)])
                 for s, v in zip(c.seeds, c.final) if s in by_seed])
            for c in configs[1:]]


def versus_best(configs: list[Config], direction: str, correct: Correct | None = None) -> list[Effect]:
    """Every other configuration against the best, paired by seed (other minus best), Holm-corrected."""
    rows = best_rows(configs, correct)

    def verdict(delta: float, p: float | None) -> str:
        if p is None:
            return "too few pairs"
        return "worse" if p < ALPHA else "no detectable difference"
    return _tested(rows, verdict)


def effects_of(rows: list[Row], direction: str) -> list[Effect]:
    """Rows tested as effects (improves | hurts | no detectable effect), Holm-corrected over them."""
    return _tested(rows, lambda d, p: _verdict(d, p, direction))


def grid_effects(spec: Spec, configs: list[Config], correct: Correct | None = None) -> tuple[list[Effect], list[Effect]]:
    """Main effects and two-way interactions of the grid's factors, Holm-corrected per family.

    Args:
        correct: each trial's per-image correctness (by config key and seed), for the bootstrap.
    """
    mains, inters = effect_rows(spec, configs, correct)
    direction = spec.study.direction
    effects = _tested(mains, lambda d, p: _verdict(d, p, direction))
    interactions = _tested(inters, lambda d, p: "too few pairs" if p is None
                           else "interacts" if p < ALPHA else "no detectable interaction")
    return effects, interactions


def setting_key(spec: Spec, setting: dict[str, Any]) -> str:
    """A setting's configuration key, as the report groups its trials."""
    params = dict(spec.point(setting, 0).params)
    params.pop("seed")
    return config_key(params)


def versus_row(model: str, factor: str, off: Any, on: Any, mine: Config | None, base: Config | None,
            correct: Correct | None, within: str = "") -> Row:
    """A configuration against another, paired by seed: mine minus base (no pairs where either is missing)."""
    if mine is None or base is None:
        return Row(model, factor, off, on, [], within=within)
    by_seed = dict(zip(base.seeds, base.final))
    get = (lambda key, s: None) if correct is None else (lambda key, s: correct.get((key, s)))
    pairs = [Pair(s, v - by_seed[s], [(get(mine.key, s), 1.0), (get(base.key, s), -1.0)])
             for s, v in zip(mine.seeds, mine.final) if s in by_seed]
    return Row(model, factor, off, on, pairs, within=within)


def baseline_rows(spec: Spec, configs: list[Config], correct: Correct | None = None) -> list[Row]:
    """One factor at a time: each setting against its baseline at the same budget (Spec.comparisons), paired
    by seed; a comparison whose trials are not stored yet has no pairs."""
    by_key = {c.key: c for c in configs}
    first = next(iter(spec.models))
    return [versus_row(c.setting.get("model", first), c.factor, c.off, c.on, by_key.get(setting_key(spec, c.setting)),
                    by_key.get(setting_key(spec, c.baseline)), correct, within_text(c.within))
            for c in spec.comparisons()]


def effect_rows(spec: Spec, configs: list[Config], correct: Correct | None = None) -> tuple[list[Row], list[Row]]:
    """The grid's main effects and two-way interactions to test, each with its pairs (see grid_effects); for a
    one-at-a-time design, its comparisons with the baseline and no interactions."""
    if spec.against_baseline:
        return baseline_rows(spec, configs, correct), []
    mains: list[Row] = []
    inters: list[Row] = []
    factors = _factors(spec)
    d = spec.fraction()
    for model in _grid_models(spec):
        finals, by_key = _grid_finals(_grid_configs(spec, model, configs), correct)  # this model's only
        if d is not None:  # one model; every factor is its own (Spec.fraction refuses the others)
            m, i = _fraction_effects(spec, d, model, factors, finals, by_key)
            mains, inters = mains + m, inters + i
            continue
        own = spec.models[model].own if model in spec.models else (lambda axis: False)
        mine = [f for f in factors if (not is_layer_axis(f[0]) or f[0].split(".")[0] == model)  # not another's layer
                and not own(f[0])]  # nor a regularizer a user's module has built in or not
        for axis, off, ons in mine:
            for on in ons:
                diffs = _pairs(finals, {((axis, on),): 1.0, ((axis, off),): -1.0}, by_key)
                mains.append(Row(model, axis, off, on, diffs))
        for (a, a0, a_ons), (b, b0, b_ons) in itertools.combinations(mine, 2):
            for a1, b1 in itertools.product(a_ons, b_ons):
                signs = {((a, a1), (b, b1)): 1.0, ((a, a1), (b, b0)): -1.0,
                         ((a, a0), (b, b1)): -1.0, ((a, a0), (b, b0)): 1.0}
                inters.append(Row(model, f"{a} x {b}", [a0, b0], [a1, b1], _pairs(finals, signs, by_key)))
    return mains, inters


class Sequential(NamedTuple):
    """A contrast as the group-sequential rule reads it (runner.design.sequential): its estimate in points,
    its variance parts, its seeds and its z (power.z_statistic: t over seeds and images, as a normal score)."""
    estimate: float
    sigma_seed2: float
    sigma_image2: float
    seeds: int
    z: float


def sequential(row: Row) -> Sequential | None:
    """The row's statistic for the sequential rule; None without stored predictions or with fewer than 2 seeds."""
    contrast = _contrast(row.pairs)
    seeds = len({p.seed for p in row.pairs})
    if contrast is None or seeds < 2:
        return None
    estimate = float(np.mean([p.value for p in row.pairs]))
    split = split_contrast(contrast, rows_per_seed=contrast.shape[0] / seeds)
    z = z_statistic(estimate, *split, seeds, df_seed=contrast.shape[0] - 1)
    return Sequential(estimate, split.sigma_seed2, split.sigma_image2, seeds, z)


def _fraction_effects(spec: Spec, d: Design, model: str, factors: list[tuple[str, Any, tuple[Any, ...]]],
                      finals: dict[tuple[str, int], float], by_key: Correct | None) -> tuple[list[Row], list[Row]]:
    """A fraction's main effects, and its two-way interactions that no main effect is aliased with (one per
    aliased set), as contrasts over its runs: per seed with every run complete, the mean at the factor's value
    minus the mean at its "off" value (runner.design.fractional); each seed's per-image contrast beside it."""
    keys = _run_keys(spec, d, finals)
    seeds = sorted({s for _, s in finals if all((k, s) in finals for k in keys)}) if keys else []
    y = np.array([[finals[k, s] for s in seeds] for k in keys]).reshape(len(d.signs), len(seeds))  # (runs, seeds)
    images = None
    if by_key is not None and seeds and all((k, s) in by_key for k in keys for s in seeds) and \
            len({len(by_key[k, s]) for k in keys for s in seeds}) == 1:
        images = np.stack([np.stack([by_key[k, s] for s in seeds]) for k in keys])  # (runs, seeds, images)
    values = dict(spec.grid)
    turn = {axis: 1.0 if on == values[axis][1] else -1.0 for axis, _, (on,) in factors}  # the design's -1 is the first

    def row(factor: str, off: Any, on: Any, sign: float, per_seed: Any, per_image: Any, also: tuple = ()) -> Row:
        pairs = [Pair(s, sign * float(per_seed[j]), [(None if per_image is None else sign * per_image[j], 1.0)])
                 for j, s in enumerate(seeds)]
        return Row(model, factor, off, on, pairs, also)
    mains_y = estimate_main_effects(d, y)
    mains_i = estimate_main_effects(d, images) if images is not None else {}
    mains = [row(axis, off, on, turn[axis], mains_y[axis], mains_i.get(axis)) for axis, off, (on,) in factors]
    inters, done = [], set()
    offs = {axis: (off, on) for axis, off, (on,) in factors}
    for name in estimable_interactions(d):
        if name in done:
            continue
        twins = tuple(o for o in aliases(d)[name] if o.count(" x ") == 1)  # the two-ways sharing its estimate
        done.update(twins)
        a, b = name.split(" x ")
        per_seed = estimate_interactions(d, y, [name])[name]
        per_image = estimate_interactions(d, images, [name])[name] if images is not None else None
        inters.append(row(name, [offs[a][0], offs[b][0]], [offs[a][1], offs[b][1]], turn[a] * turn[b], per_seed,
                          per_image, twins))
    return mains, inters


def _run_keys(spec: Spec, d: Design, finals: dict[tuple[str, int], float]) -> list[str]:
    """Each run's configuration key (without the model), in the design's order; none without a stored trial."""
    if not finals:
        return ["" for _ in d.runs]  # no key: no run is complete
    template = json.loads(next(iter(finals))[0])  # every other param is the same in each run of a fraction
    values = dict(spec.grid)
    return [config_key({**template, **{f: values[f][i] for f, i in run.items()}}) for run in d.runs]


def _tested(rows: list[Row], verdict: Callable[[float, float | None], str]) -> list[Effect]:
    """Each row's t-test over seeds and bootstrap over seeds and test images, each Holm-corrected over the
    rows, and the bootstrap's power figures; the verdict from the bootstrap where every row has one, else from
    the t-test (and then no power figures)."""
    tests = [paired_t([p.value for p in r.pairs]) for r in rows]
    corrected = holm([p for _, _, p in tests])
    contrasts = [_contrast(r.pairs) for r in rows]
    boots = bootstrap(contrasts)
    boot_corrected = holm([b[1] if b else None for b in boots])
    if not (any(boots) and all(b is not None or p is None for b, (_, _, p) in zip(boots, tests))):
        boots, boot_corrected = [None] * len(rows), [None] * len(rows)  # one test decides a whole family
    levels = holm_levels([b[1] if b else None for b in boots], ALPHA)
    out = []
    for r, (mean, ci, p), pc, b, bc, c, level in zip(rows, tests, corrected, boots, boot_corrected, contrasts, levels):
        decisive = bc if b is not None else pc
        power = power_figures(c, len({x.seed for x in r.pairs}), mean, level) if b is not None else {}
        out.append(Effect(r.model, r.factor, r.off, r.on, len(r.pairs), mean, ci, p, pc, verdict(mean, decisive),
                          b[0] if b else None, b[1] if b else None, bc, aliases=r.aliases, within=r.within, **power))
    return out


def power_figures(contrast: np.ndarray | None, seeds: int, effect: float, level: float | None) -> dict[str, Any]:
    """What decides a verdict, from a contrast's (rows, images) per-image values over `seeds` seeds (the rows
    split evenly between them) tested at Holm's `level`: Effect's level, detectable, detectable_seeds, floor
    and seeds_needed (runner.design.power, normal approximation, 80% power); {} without them."""
    if contrast is None or level is None or seeds < 2:
        return {}
    split = split_contrast(contrast, rows_per_seed=contrast.shape[0] / seeds)  # type: ignore[arg-type]
    return {"level": level, "detectable_seeds": seeds,
            "detectable": minimum_detectable_effect(*split, seeds, level, POWER),
            "detectable_next": minimum_detectable_effect(*split, seeds + 1, level, POWER),
            "floor": floor(split.sigma_image2, level, POWER),
            "seeds_needed": seeds_needed(effect, *split, level, POWER)}

"""`runner report`: a study's answer as Markdown, computed from stored trials only (it never trains).

    build_report(spec, url) -> Report       every number the report shows, read from storage
    render_markdown(report) -> str          the full report
    write_report(report, out_dir)           report.md, summary.json and the PNG figures
    update_readme(path, report, out_dir)    the summary between a README's runner:report markers
    make_report(spec, url, out, readme)     all of the above, every input checked before any write

A configuration is the set of complete trials with equal params except the seed; its numbers are
mean ± sample std over seeds. A factor's main effect is the mean of paired differences (on minus
off, same seed, every other param equal) with a t-interval and a paired t-test; the p-values are
Holm-corrected over all the factors tested (and, separately, over all the interactions).
The same stored trials give byte-identical Markdown, JSON and PNGs: nothing depends on the clock.
"""
from __future__ import annotations

import io
import itertools
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.exc import SQLAlchemyError

from runner.errors import RunnerError, StorageError, read_text
from runner.spec import REGULARIZERS, Spec
from runner.store import EpochRow, Store

__all__ = [
    "ReportError", "Curve", "Config", "Effect", "Known", "Excluded", "Figure", "Report",
    "build_report", "render_markdown", "render_summary", "summary_json", "render_files", "write_report",
    "update_readme", "make_report", "default_out_dir", "holm", "effect_sentence", "interaction_sentence",
    "comparison_table", "effects_table", "curves_png", "effects_png", "REPORT_FILE", "SUMMARY_FILE",
    "START_MARKER", "END_MARKER",
]

REPORT_FILE = "report.md"
SUMMARY_FILE = "summary.json"
START_MARKER = "<!-- runner:report:start -->"
END_MARKER = "<!-- runner:report:end -->"
ALPHA = 0.05  # significance level, after Holm's correction
LECUN_1998_ACC = 99.05  # % test accuracy of LeNet-5 in LeCun et al. 1998 (0.95% error, no distortions)
FULL_MNIST = (60_000, 10_000)  # train and test images of the published benchmark
DPI = 100  # fixed, so that figures are byte-identical from run to run
# Per-epoch metrics drawn for every curve: column of runner_epochs -> (panel title, y label).
CURVES = {
    "train_loss": ("train loss", "cross-entropy loss (log scale)"),
    "test_loss": ("test loss", "cross-entropy loss (log scale)"),
    "train_acc": ("train accuracy", "accuracy (%)"),
    "test_acc": ("test accuracy", "accuracy (%)"),
}
METRIC_WORDS = {"test_acc": ("test accuracy", "points"), "test_loss": ("test loss", "")}


class ReportError(RunnerError):
    """A report that cannot be made: no complete trials, a README without markers, a bad folder."""


# ---------------------------------------------------------------- the report as data


@dataclass(frozen=True)
class Curve:
    """One per-epoch metric of a configuration: the mean over seeds and the min-max band."""

    epochs: tuple[int, ...]
    mean: tuple[float, ...]
    lo: tuple[float, ...]
    hi: tuple[float, ...]


@dataclass(frozen=True)
class Config:
    """Complete trials with equal params except the seed; tuples hold one value per seed."""

    key: str  # JSON of the params without the seed: the configuration's identity
    model: str
    arch: str  # lenet5 | mlp
    params: dict[str, Any]  # every axis -> value (neither model nor seed)
    label: str  # the model and the axes that differ from their default
    slug: str  # the label as a file name
    regularized: bool  # some regularizer is not off
    param_count: int
    seeds: tuple[int, ...]
    final: tuple[float, ...]  # the study's metric at the final epoch
    final_acc: tuple[float, ...]  # % test accuracy at the final epoch
    best_acc: tuple[float, ...]  # % test accuracy at the best epoch
    final_loss: tuple[float, ...]  # test loss at the final epoch
    gap: tuple[float, ...]  # train minus test accuracy at the final epoch, points
    seconds_per_epoch: float | None
    curves: dict[str, Curve]  # keys of CURVES


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
    verdict: str  # improves | hurts | no detectable effect | too few pairs (interactions: interacts | ...)


@dataclass(frozen=True)
class Known:
    """LeNet-5 with every regularizer off against LeCun et al. 1998."""

    label: str
    seeds: int
    mean: float
    std: float | None
    lo: float  # the seed spread: min and max of the final accuracies
    hi: float
    reference: float
    full_data: bool  # trained and tested on all of MNIST, as the reference was


@dataclass(frozen=True)
class Excluded:
    """A trial left out of the statistics: failed, still running, or a duplicate."""

    number: int
    state: str
    label: str
    seed: int | None
    reason: str


@dataclass(frozen=True)
class Figure:
    """One PNG: learning curves of configurations (by key), or the effects plot."""

    file: str
    title: str
    kind: str  # curves | effects
    keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class Report:
    study: str
    description: str
    spec_path: str
    metric: str  # test_acc | test_loss
    direction: str  # maximize | minimize
    axes: tuple[str, ...]  # the axes whose value differs between configurations
    data: list[tuple[str, str]]  # (item, value) rows
    train: list[tuple[str, str]]
    provenance: list[tuple[str, str]]
    seeds: tuple[int, ...]
    param_tables: list[tuple[str, list[str], list[list[str]], int]]
    configs: list[Config]  # sorted by the study's metric, best first
    known: Known | None
    effects: list[Effect]
    interactions: list[Effect]
    excluded: list[Excluded]
    figures: list[Figure]

    def config(self, key: str) -> Config:
        """The configuration with this key."""
        return next(c for c in self.configs if c.key == key)


# ---------------------------------------------------------------- reading storage


def _load_trials(spec: Spec, url: str | None) -> tuple[str, list[FrozenTrial], dict[int, list[EpochRow]]]:
    """(storage URL, every trial of the study by number, epochs of the complete ones)."""
    store = Store(url, create=False)
    try:
        study = store.open_study(spec.study.name, spec.study.direction, create=False)
        trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
        complete = [t._trial_id for t in trials if t.state == TrialState.COMPLETE]
        return store.url, trials, store.epochs(complete)
    except (SQLAlchemyError, optuna.exceptions.OptunaError) as e:
        raise StorageError(f"{store.url}: cannot read study {spec.study.name!r}: {e}") from None
    finally:
        store.dispose()


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    return str(v)


def _key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)


class _Axes:
    """Axis order and each axis's default, to label configurations the same way everywhere."""

    def __init__(self, spec: Spec, trials: list[FrozenTrial]):
        extra = sorted({k for t in trials for k in t.params} - {"model", "seed", *spec.axis_names})
        self.names = (*spec.axis_names, *extra)
        self.spec = spec

    def default(self, model: str, axis: str) -> Any:
        if model in self.spec.models:
            point = self.spec.point({"model": model}, 0)
            return point.params.get(axis, REGULARIZERS[axis].default if axis in REGULARIZERS else None)
        return REGULARIZERS[axis].default if axis in REGULARIZERS else getattr(self.spec.train, axis, None)

    def params(self, trial: FrozenTrial) -> dict[str, Any]:
        return {a: trial.params[a] for a in self.names if a in trial.params}

    def label(self, model: str, params: dict[str, Any]) -> str:
        changed = [f"{a}={_fmt(v)}" for a, v in params.items() if v != self.default(model, a)]
        return " ".join([model, *changed])


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", label.replace("=", "-")).strip("-")


# ---------------------------------------------------------------- statistics


def _mean(xs: tuple[float, ...] | list[float]) -> float | None:
    return float(np.mean(xs)) if len(xs) else None


def _std(xs: tuple[float, ...] | list[float]) -> float | None:
    return float(np.std(xs, ddof=1)) if len(xs) > 1 else None


def _paired_t(diffs: list[float]) -> tuple[float, tuple[float, float] | None, float | None]:
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


# ---------------------------------------------------------------- configurations


def _curves(rows: list[list[EpochRow]]) -> dict[str, Curve]:
    out = {}
    epochs = sorted({r.epoch for trial in rows for r in trial})
    for name in CURVES:
        per_epoch = [[getattr(r, name) for trial in rows for r in trial if r.epoch == e] for e in epochs]
        out[name] = Curve(tuple(epochs), tuple(float(np.mean(v)) for v in per_epoch),
                          tuple(float(min(v)) for v in per_epoch), tuple(float(max(v)) for v in per_epoch))
    return out


def _config(key: str, model: str, params: dict[str, Any], trials: list[FrozenTrial],
            epochs: dict[int, list[EpochRow]], axes: _Axes) -> Config:
    rows = [epochs.get(t._trial_id, []) for t in trials]
    with_rows = [r for r in rows if r]
    final_acc = tuple(r[-1].test_acc if r else t.intermediate_values[max(t.intermediate_values)]
                      for t, r in zip(trials, rows) if r or t.intermediate_values)
    best_acc = tuple(t.user_attrs.get("best_test_acc", max(e.test_acc for e in r) if r else math.nan)
                     for t, r in zip(trials, rows))
    per_epoch_s = [float(np.mean([e.seconds for e in r])) for r in with_rows]
    label = axes.label(model, params)
    attrs = trials[0].user_attrs
    return Config(
        key=key, model=model, arch=attrs.get("config", {}).get("model", {}).get("arch", model),
        params=params, label=label, slug=_slug(label),
        regularized=any(params.get(r, k.default) != k.default for r, k in REGULARIZERS.items()),
        param_count=int(attrs.get("param_count", 0)), seeds=tuple(t.params["seed"] for t in trials),
        final=tuple(float(t.value) for t in trials), final_acc=final_acc,
        best_acc=tuple(b for b in best_acc if not math.isnan(b)),
        final_loss=tuple(r[-1].test_loss for r in with_rows),
        gap=tuple(r[-1].train_acc - r[-1].test_acc for r in with_rows),
        seconds_per_epoch=_mean(per_epoch_s), curves=_curves(with_rows),
    )


def _group(trials: list[FrozenTrial], axes: _Axes) -> tuple[dict[str, list[FrozenTrial]], list[Excluded]]:
    """Complete trials by configuration key (one per seed), and every trial left out."""
    groups: dict[str, list[FrozenTrial]] = {}
    first: dict[tuple[str, int], int] = {}
    excluded = []
    for t in trials:
        model = t.params.get("model", "?")
        params = axes.params(t)
        label = axes.label(model, params)
        seed = t.params.get("seed")
        if t.state != TrialState.COMPLETE:
            excluded.append(Excluded(t.number, t.state.name.lower(), label, seed,
                                     str(t.user_attrs.get("fail_reason", ""))))
            continue
        key = _key({"model": model, **params})
        if (key, seed) in first:
            excluded.append(Excluded(t.number, "complete", label, seed,
                                     f"duplicate of trial {first[key, seed]} (same config and seed)"))
            continue
        first[key, seed] = t.number
        groups.setdefault(key, []).append(t)
    return groups, excluded


def _spec_order(spec: Spec) -> dict[str, int]:
    keys = {}
    for setting in spec.settings():
        params = dict(spec.point(setting, 0).params)
        params.pop("seed")
        keys.setdefault(_key(params), len(keys))
    return keys


def _configs(spec: Spec, groups: dict[str, list[FrozenTrial]], epochs: dict[int, list[EpochRow]],
             axes: _Axes) -> list[Config]:
    order = _spec_order(spec)
    configs = []
    for key, trials in sorted(groups.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[1][0].number)):
        params = json.loads(key)
        model = params.pop("model")
        params = {a: params[a] for a in axes.names if a in params}
        configs.append(_config(key, model, params, trials, epochs, axes))
    sign = -1.0 if spec.study.direction == "maximize" else 1.0
    return sorted(configs, key=lambda c: sign * float(np.mean(c.final)))  # stable: ties keep spec order


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
            keys.add(_key(params))
    out = {}
    for c in configs:
        if c.key in keys:
            for seed, value in zip(c.seeds, c.final):
                out[_key(c.params), seed] = value
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
            value = finals.get((_key({**params, **dict(corner)}), seed))
            if value is None:
                break
            total += sign * value
        else:
            diffs.append(total)
    return diffs


def _effects(spec: Spec, configs: list[Config]) -> tuple[list[Effect], list[Effect]]:
    """Main effects and two-way interactions of the grid's factors, Holm-corrected per family."""
    mains: list[tuple[str, str, Any, Any, list[float]]] = []
    inters: list[tuple[str, str, Any, Any, list[float]]] = []
    factors = _factors(spec)
    for model in _grid_models(spec):
        finals = _grid_finals(spec, model, configs)
        for axis, off, ons in factors:
            for on in ons:
                diffs = _pairs(finals, {((axis, on),): 1.0, ((axis, off),): -1.0})
                mains.append((model, axis, off, on, diffs))
        for (a, a0, a_ons), (b, b0, b_ons) in itertools.combinations(factors, 2):
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
    tests = [_paired_t(diffs) for *_, diffs in rows]
    corrected = holm([p for _, _, p in tests])
    return [Effect(model, factor, off, on, len(diffs), mean, ci, p, pc, verdict(mean, pc))
            for (model, factor, off, on, diffs), (mean, ci, p), pc in zip(rows, tests, corrected)]


# ---------------------------------------------------------------- setup, known result, figures


_TRAIN_ORDER = {k: i for i, k in enumerate(("epochs", "batch_size", "optimizer", "lr", "momentum", "schedule"))}


def _distinct(values: list[Any]) -> str:
    shown = sorted({json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else _fmt(v) for v in values})
    return ", ".join(shown) if shown else "not recorded"


def _setup(complete: list[FrozenTrial]) -> tuple[list[tuple[str, str]], ...]:
    attrs = [t.user_attrs for t in complete]
    cfg = [a.get("config", {}) for a in attrs]
    data = [("source", _distinct([a.get("data_source") for a in attrs if "data_source" in a])),
            ("official MNIST files", _distinct([a.get("data_official") for a in attrs if "data_official" in a])),
            ("checksum", _distinct([a.get("data_checksum") for a in attrs if "data_checksum" in a])),
            ("train images", _distinct([f"{a['train_size']:,}" for a in attrs if "train_size" in a])),
            ("test images", _distinct([f"{a['test_size']:,}" for a in attrs if "test_size" in a]))]
    for k in ("mean", "std"):
        data.append((f"normalization {k}", _distinct([c["data"][k] for c in cfg if k in c.get("data", {})])))
    train_keys = sorted({k for c in cfg for k in c.get("train", {})}, key=lambda k: (_TRAIN_ORDER.get(k, 99), k))
    train = [(k, _distinct([c["train"][k] for c in cfg if k in c.get("train", {})])) for k in train_keys]
    train += [(r, _distinct([c["regularizers"][r] for c in cfg if r in c.get("regularizers", {})]))
              for r in REGULARIZERS]
    versions = sorted({lib for a in attrs for lib in a.get("versions", {})})
    wall = sum(a.get("wall_seconds", 0.0) for a in attrs)
    prov = [("code version", _distinct([a.get("code_version") for a in attrs if "code_version" in a]))]
    prov += [(lib, _distinct([a["versions"][lib] for a in attrs if lib in a.get("versions", {})]))
             for lib in versions]
    prov += [(k, _distinct([a.get(k) for a in attrs if k in a])) for k in ("python", "device", "cpu", "threads")]
    prov += [("workers", str(len({a.get("worker") for a in attrs if "worker" in a}))),
             ("total compute", f"{_duration(wall)} of wall time over {len(complete)} complete trials")]
    return data, train, prov


def _duration(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {s:02d} s" if m else f"{seconds:.1f} s"


def _model_of_arch(spec: Spec, configs: list[Config], arch: str) -> str | None:
    names = [n for n, m in spec.models.items() if m.arch == arch] + [c.model for c in configs if c.arch == arch]
    return next((n for n in names if any(c.model == n for c in configs)), None)


def _baseline(spec: Spec, configs: list[Config], model: str, regs_off: bool) -> Config | None:
    """The model's default point (with every regularizer off, if asked), if it was stored."""
    if model not in spec.models:
        return None
    params = dict(spec.point({"model": model}, 0).params)
    params.pop("seed")
    if regs_off:
        params.update({r: k.default for r, k in REGULARIZERS.items() if r in params})
    return next((c for c in configs if c.key == _key(params)), None)


def _known(baseline: Config | None, complete: list[FrozenTrial]) -> Known | None:
    if baseline is None or not baseline.final_acc:
        return None
    sizes = {(t.user_attrs.get("train_size"), t.user_attrs.get("test_size")) for t in complete}
    return Known(baseline.label, len(baseline.final_acc), float(np.mean(baseline.final_acc)),
                 _std(baseline.final_acc), min(baseline.final_acc), max(baseline.final_acc),
                 LECUN_1998_ACC, sizes == {FULL_MNIST})


def _figures(spec: Spec, configs: list[Config], effects: list[Effect]) -> list[Figure]:
    models = list(dict.fromkeys([m for m in spec.models] + [c.model for c in configs]))
    shown: list[Config] = []
    for model in models:
        mine = [c for c in configs if c.model == model]  # best first
        base = _baseline(spec, configs, model, regs_off=False)
        for c in (base, mine[0] if mine else None):
            if c is not None and c not in shown:
                shown.append(c)
    figures = [Figure(f"curves-{c.slug}.png", c.label, "curves", (c.key,)) for c in shown]
    lenet, mlp = _model_of_arch(spec, configs, "lenet5"), _model_of_arch(spec, configs, "mlp")
    overlay = [_baseline(spec, configs, lenet, regs_off=True) if lenet else None,
               _baseline(spec, configs, mlp, regs_off=False) if mlp else None,
               next((c for c in configs if c.model == lenet and c.regularized), None)]
    keys = tuple(dict.fromkeys(c.key for c in overlay if c is not None))
    if len(keys) > 1:
        figures.append(Figure("compare.png", "LeNet-5, the MLP and the best regularized LeNet-5", "curves", keys))
    if any(e.ci95 is not None for e in effects):
        figures.append(Figure("effects.png", "Main effects on the final metric", "effects"))
    return figures


# ---------------------------------------------------------------- build


def build_report(spec: Spec, url: str | None) -> Report:
    """Every number of the report, from the trials stored for `spec`'s study at `url`."""
    storage, trials, epochs = _load_trials(spec, url)
    axes = _Axes(spec, trials)
    groups, excluded = _group(trials, axes)
    if not groups:
        states = ", ".join(f"{n} {s}" for s, n in sorted(_count_states(trials).items())) or "no trials"
        raise ReportError(f"{storage}: study {spec.study.name!r} has no complete trials ({states}); "
                          f"run `runner grid {spec.path}` first")
    configs = _configs(spec, groups, epochs, axes)
    complete = [t for ts in groups.values() for t in ts]
    complete.sort(key=lambda t: t.number)
    effects, interactions = _effects(spec, configs)
    data, train, prov = _setup(complete)
    lenet = _model_of_arch(spec, configs, "lenet5")
    known = _known(_baseline(spec, configs, lenet, regs_off=True) if lenet else None, complete)
    varying = tuple(a for a in axes.names if len({_fmt(c.params.get(a)) for c in configs}) > 1)
    from runner.counts import parameter_tables

    return Report(
        study=spec.study.name, description=spec.study.description, spec_path=spec.path,
        metric=spec.study.metric, direction=spec.study.direction, axes=varying,
        data=data, train=train, provenance=prov,
        seeds=tuple(sorted({t.params["seed"] for t in complete})),
        param_tables=parameter_tables(spec), configs=configs, known=known, effects=effects,
        interactions=interactions, excluded=excluded, figures=_figures(spec, configs, effects),
    )


def _count_states(trials: list[FrozenTrial]) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in trials:
        out[t.state.name.lower()] = out.get(t.state.name.lower(), 0) + 1
    return out


# ---------------------------------------------------------------- Markdown


def _table(names: list[str], rows: list[list[str]], right: set[int] | None = None) -> str:
    right = right or set()
    lines = ["| " + " | ".join(names) + " |",
             "|" + "|".join("---:" if i in right else "---" for i in range(len(names))) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _pm(xs: tuple[float, ...], digits: int = 2) -> str:
    if not xs:
        return "–"
    if len(xs) == 1:
        return f"{xs[0]:.{digits}f}"
    return f"{np.mean(xs):.{digits}f} ± {np.std(xs, ddof=1):.{digits}f}"


def _p(p: float | None) -> str:
    if p is None:
        return "–"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _num(x: float, metric: str) -> str:
    return f"{x:+.2f}" if metric == "test_acc" else f"{x:+.4f}"


def _ci(ci: tuple[float, float] | None, metric: str) -> str:
    return "–" if ci is None else f"[{_num(ci[0], metric)}, {_num(ci[1], metric)}]"


def _change(e: Effect) -> str:
    if isinstance(e.from_, list):
        return ", ".join(f"{_fmt(a)} → {_fmt(b)}" for a, b in zip(e.from_, e.to))
    return f"{_fmt(e.from_)} → {_fmt(e.to)}"


def effect_sentence(e: Effect, metric: str) -> str:
    """One plain sentence that says only what the numbers support."""
    words, unit = METRIC_WORDS[metric]
    unit = f" {unit}" if unit else ""
    what = f"{e.factor} ({_change(e)})"
    if e.verdict == "too few pairs":
        return f"{what}: too few paired trials ({e.n_pairs}) to tell."
    numbers = f"{_num(e.delta_mean, metric)}{unit} {_ci(e.ci95, metric)}"
    if e.verdict == "no detectable effect":
        return f"{what}: no detectable effect on {words} ({numbers}, {_p(e.p_value)})."
    if e.verdict == "hurts":
        return f"{what} hurts {words}: {numbers} ({_p(e.p_value)})."
    digits = 2 if metric == "test_acc" else 4  # improves: the size of the gain and its interval
    lo, hi = sorted(abs(x) for x in e.ci95) if e.ci95 else (math.nan, math.nan)
    return (f"{what} improves {words} by {abs(e.delta_mean):.{digits}f}{unit} "
            f"[{lo:.{digits}f}, {hi:.{digits}f}] ({_p(e.p_value)}).")


def interaction_sentence(e: Effect, metric: str) -> str:
    """What an interaction contrast means, in words."""
    words, unit = METRIC_WORDS[metric]
    unit = f" {unit}" if unit else ""
    (a, b), (a0, b0), (a1, b1) = e.factor.split(" x "), e.from_, e.to
    more = "larger" if e.delta_mean > 0 else "smaller"
    return (f"The change in {words} from {a} {_fmt(a0)} → {_fmt(a1)} is {abs(e.delta_mean):.{2 if unit else 4}f}"
            f"{unit} {more} with {b}={_fmt(b1)} than with {b}={_fmt(b0)} "
            f"{_ci(e.ci95, metric)} ({_p(e.p_value)}).")


def _known_sentence(k: Known) -> str:
    diff = k.mean - k.reference
    spread = f"{k.lo:.2f}–{k.hi:.2f}%" if k.seeds > 1 else f"{k.lo:.2f}% (one seed: no spread)"
    within = "within" if k.lo <= k.reference <= k.hi else "outside"
    std = f" ± {k.std:.2f}" if k.std is not None else ""
    text = (f"LeNet-5 with every regularizer off (`{k.label}`) reaches {k.mean:.2f}{std}% test accuracy "
            f"over {k.seeds} seed{'s' if k.seeds != 1 else ''} ({100 - k.mean:.2f}% error), "
            f"{abs(diff):.2f} points {'above' if diff > 0 else 'below'} the {k.reference:.2f}% "
            f"({100 - k.reference:.2f}% error) of LeCun et al. 1998; the published figure lies "
            f"{within} the seed spread ({spread}).")
    if not k.full_data:
        text += (" These trials did not use all 60,000 training and 10,000 test images, so the "
                 "comparison with the published figure does not hold.")
    return text


def _config_rows(report: Report) -> tuple[list[str], list[list[str]], set[int]]:
    names = ["#", "model", *report.axes, "parameters", "seeds", "final test acc (%)", "best test acc (%)",
             "final test loss", "train − test (points)", "s / epoch"]
    rows = []
    for i, c in enumerate(report.configs, 1):
        rows.append([str(i), c.model, *(_fmt(c.params.get(a, "")) for a in report.axes),
                     f"{c.param_count:,}", str(len(c.seeds)), _pm(c.final_acc), _pm(c.best_acc),
                     _pm(c.final_loss, 4), _pm(c.gap),
                     "–" if c.seconds_per_epoch is None else f"{c.seconds_per_epoch:.1f}"])
    first_number = 2 + len(report.axes)
    return names, rows, {0, *range(first_number, len(names))}


def comparison_table(report: Report) -> str:
    """Every configuration, best first by the study's metric."""
    names, rows, right = _config_rows(report)
    return _table(names, rows, right)


def effects_table(report: Report, effects: list[Effect] | None = None) -> str:
    """Main effects (or the given interactions) as a Markdown table."""
    effects = report.effects if effects is None else effects
    words, unit = METRIC_WORDS[report.metric]
    model = ["model"] if len({e.model for e in effects}) > 1 else []
    names = [*model, "factor", "change", f"Δ {words}{' (' + unit + ')' if unit else ''}",
             "95% CI", "p (Holm)", "pairs", "verdict"]
    rows = [[*([e.model] if model else []), e.factor, _change(e), _num(e.delta_mean, report.metric),
             _ci(e.ci95, report.metric), _p(e.p_value).removeprefix("p = ").removeprefix("p "), str(e.n_pairs),
             e.verdict]
            for e in effects]
    first = len(model) + 2  # the numeric columns: delta, CI, p, pairs
    return _table(names, rows, {first, first + 1, first + 2, first + 3})


def _answer(report: Report) -> list[str]:
    best = report.configs[0]
    words, _ = METRIC_WORDS[report.metric]
    value = _pm(best.final, 2 if report.metric == "test_acc" else 4) + ("%" if report.metric == "test_acc" else "")
    lines = [f"- Best configuration: `{best.label}`, {value} final {words} "
             f"({len(best.seeds)} seed{'s' if len(best.seeds) != 1 else ''}, {best.param_count:,} parameters)."]
    if report.known:
        lines.append(f"- {_known_sentence(report.known)}")
    lines += [f"- {effect_sentence(e, report.metric)}" for e in report.effects]
    return lines


def render_markdown(report: Report) -> str:
    """The full report as Markdown; figures are linked by file name, beside the report."""
    m = report.metric
    out = [f"# {report.study}: {report.description}" if report.description else f"# {report.study}", ""]
    out += [f"Generated by `runner report {report.spec_path}` from {sum(len(c.seeds) for c in report.configs)} "
            f"complete trials in {len(report.configs)} configurations; ranked by final {METRIC_WORDS[m][0]}.", ""]
    out += ["## The answer", "", *_answer(report), ""]
    out += ["## Setup", "", "### Data", "", _table(["item", "value"], [list(r) for r in report.data]), ""]
    out += ["### Training", "", _table(["key", "value"], [list(r) for r in report.train]), "",
            f"Seeds: {', '.join(map(str, report.seeds))} ({len(report.seeds)}); every configuration "
            f"runs once per seed.", ""]
    out += ["### Provenance", "", _table(["item", "value"], [list(r) for r in report.provenance]), ""]
    out += ["## Parameter counts", ""]
    for title, names, rows, total in report.param_tables:
        out += [f"### {title}", "", _table(names, rows, {len(names) - 1}), "", f"Total: **{total:,}** parameters.", ""]
    out += ["## Comparison", "",
            "Every configuration, best first; mean ± std over seeds. Train accuracy is the running "
            "accuracy on the training batches as seen during the last epoch (augmented, dropout on), "
            "not a clean evaluation, so the train − test gap is only a rough measure of overfitting.",
            "", comparison_table(report), ""]
    out += _curves_section(report)
    out += ["## Known accuracy: LeNet-5 against LeCun et al. 1998", ""]
    out += [_known_sentence(report.known) if report.known else
            "No complete trials of LeNet-5 with every regularizer off: nothing to compare.", ""]
    out += ["The 1998 network differs from this one in its details (scaled tanh units, trainable "
            "subsampling, sparse C3 connections, an RBF output layer), so the comparison is a sanity "
            "check, not a replication.", ""]
    out += _effects_section(report)
    out += _excluded_section(report)
    return "\n".join(out).rstrip() + "\n"


def _curves_section(report: Report) -> list[str]:
    out = ["## Learning curves", "",
           "Mean over seeds; the band spans the minimum and maximum over seeds.", ""]
    for f in report.figures:
        if f.kind == "curves":
            labels = [report.config(k).label for k in f.keys]
            title = f.title if len(f.keys) > 1 else f"`{f.title}`"
            out += [f"### {title}", ""]
            if len(f.keys) > 1:
                out += [f"Compared: {', '.join(f'`{x}`' for x in labels)}.", ""]
            out += [f"![{f.title}]({f.file})", ""]
    return out


def _effects_section(report: Report) -> list[str]:
    words = METRIC_WORDS[report.metric][0]
    regularizers_only = all(e.factor in REGULARIZERS for e in report.effects)
    out = ["## Do the regularizers help?" if regularizers_only else "## What each grid factor changes", ""]
    if not report.effects:
        return out + ["The grid has no factor with two or more values: no effects to estimate.", ""]
    models = ", ".join(f"`{m}`" for m in dict.fromkeys(e.model for e in report.effects))
    out += [f"Main effect of each grid factor on the final {words}, on the trials of {models} at grid "
            "settings: the mean of paired differences (each value minus the factor's first, same seed, "
            "every other param equal), "
            f"a 95% t-interval and a paired t-test, Holm-corrected over the {len(report.effects)} "
            f"comparisons; verdicts at corrected p < {ALPHA}.", ""]
    out += [effects_table(report), ""]
    out += [f"- {effect_sentence(e, report.metric)}" for e in report.effects]
    out += [""]
    if any(f.kind == "effects" for f in report.figures):
        out += ["![Main effects](effects.png)", ""]
    out += ["### Interactions", ""]
    if not report.interactions:
        return out + ["Fewer than two factors: no interactions to test.", ""]
    shown = [e for e in report.interactions if e.p_value is not None and e.p_value < ALPHA]
    out += [f"Two-way interactions, (on, on) − (on, off) − (off, on) + (off, off) paired by seed and the "
            f"other params, Holm-corrected over the {len(report.interactions)} tested.", ""]
    if not shown:
        return out + [f"None has corrected p < {ALPHA}.", ""]
    out += [effects_table(report, shown), ""]
    out += [f"- {interaction_sentence(e, report.metric)}" for e in shown]
    return out + [""]


def _excluded_section(report: Report) -> list[str]:
    out = ["## Trials left out", ""]
    if not report.excluded:
        return out + ["None: every stored trial is complete and in the statistics.", ""]
    rows = [[str(x.number), x.state, x.label, "–" if x.seed is None else str(x.seed), x.reason]
            for x in report.excluded]
    return out + ["Failed, running or duplicate trials; none of them is in the statistics above.", "",
                  _table(["trial", "state", "label", "seed", "reason"], rows, {0, 3}), ""]


def render_summary(report: Report, link: str) -> str:
    """The README's summary: answer, comparison, effects, key figures; `link` is the report's folder."""
    prefix = "" if link in ("", ".") else link.rstrip("/") + "/"
    out = [f"**{report.description or report.study}** (study `{report.study}`)", "", *_answer(report), "",
           comparison_table(report), ""]
    if report.effects:
        out += [effects_table(report), ""]
    for f in report.figures:
        if f.file in ("compare.png", "effects.png"):
            out += [f"![{f.title}]({prefix}{f.file})", ""]
    out += [f"Full report: [{prefix}{REPORT_FILE}]({prefix}{REPORT_FILE})"]
    return "\n".join(out).strip() + "\n"


# ---------------------------------------------------------------- JSON


def _r(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) else float(f"{x:.7g}")  # 7 significant digits, small p too


def summary_json(report: Report) -> str:
    """summary.json: configurations and effects, accuracies in percent."""
    def effect(e: Effect) -> dict[str, Any]:
        return {"model": e.model, "factor": e.factor, "from": e.from_, "to": e.to, "n_pairs": e.n_pairs,
                "delta_mean": _r(e.delta_mean), "ci95": None if e.ci95 is None else [_r(e.ci95[0]), _r(e.ci95[1])],
                "p_raw": _r(e.p_raw), "p_value": _r(e.p_value), "verdict": e.verdict}

    k = report.known
    doc = {
        "study": report.study, "metric": report.metric, "direction": report.direction,
        "configs": [{"model": c.model, "params": c.params, "label": c.label, "param_count": c.param_count,
                     "seeds": len(c.seeds), "final_mean": _r(_mean(c.final)), "final_std": _r(_std(c.final)),
                     "best_mean": _r(_mean(c.best_acc)), "final_test_loss": _r(_mean(c.final_loss)),
                     "gap_mean": _r(_mean(c.gap)), "seconds_per_epoch": _r(c.seconds_per_epoch)}
                    for c in report.configs],
        "effects": [effect(e) for e in report.effects],
        "interactions": [effect(e) for e in report.interactions],
        "known": None if k is None else {"label": k.label, "mean": _r(k.mean), "std": _r(k.std),
                                         "reference": k.reference, "difference": _r(k.mean - k.reference),
                                         "within_seed_spread": k.lo <= k.reference <= k.hi,
                                         "full_data": k.full_data},
        "excluded": [{"number": x.number, "state": x.state, "label": x.label, "seed": x.seed,
                      "reason": x.reason} for x in report.excluded],
    }
    return json.dumps(doc, indent=2) + "\n"


# ---------------------------------------------------------------- figures


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _style() -> Any:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.style
    return matplotlib.style.context("default")  # the same look whatever the user's matplotlibrc


def curves_png(report: Report, figure: Figure) -> bytes:
    """Four panels (train/test x loss/accuracy), one line and band per configuration."""
    from matplotlib.figure import Figure as MplFigure
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    configs = [report.config(k) for k in figure.keys]
    with _style():
        fig = MplFigure(figsize=(10, 7 + 0.25 * len(configs)), layout="constrained")
        axes = fig.subplots(2, 2, sharex=True, sharey="row")
        for ax, name in zip(axes.flat, CURVES):
            title, ylabel = CURVES[name]
            for i, c in enumerate(configs):
                curve = c.curves[name]
                color = f"C{i}"
                ax.plot(curve.epochs, curve.mean, marker="o", ms=3, color=color,
                        label=f"{c.label} ({len(c.seeds)} seeds)")
                ax.fill_between(curve.epochs, curve.lo, curve.hi, color=color, alpha=0.2, linewidth=0)
            ax.set_title(title)
            ax.set_ylabel(ylabel)
            ax.grid(True, alpha=0.3)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if name.endswith("loss"):  # labels 0.1, 0.2, 0.5, 1, 2 rather than 2 x 10^-1
                ax.set_yscale("log")
                ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
                ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
                ax.yaxis.set_minor_formatter(NullFormatter())
        for ax in axes[1]:
            ax.set_xlabel("epoch")
        _focus_accuracy(axes[1][0], configs)
        # below the panels: a long configuration label inside one would squeeze the others
        fig.legend(*axes[1][1].get_legend_handles_labels(), loc="outside lower center", fontsize="small")
        fig.suptitle(f"{figure.title}: mean over seeds, band = min-max")
        return _png(fig)


def _focus_accuracy(ax: Any, configs: list[Config]) -> None:
    """Zoom the accuracy row past the first epoch, where every curve is near its end value."""
    lows = [v for c in configs for name in ("train_acc", "test_acc") for v in c.curves[name].lo[1:]]
    highs = [v for c in configs for name in ("train_acc", "test_acc") for v in c.curves[name].hi]
    if len(lows) and len(configs[0].curves["test_acc"].epochs) > 2:
        lo, hi = min(lows), min(100.0, max(highs))
        ax.set_ylim(lo - 0.1 * (hi - lo + 0.1), hi + 0.05 * (hi - lo + 0.1))


def effects_png(report: Report) -> bytes:
    """Each main effect with its 95% interval, against zero."""
    from matplotlib.figure import Figure as MplFigure

    words, unit = METRIC_WORDS[report.metric]
    effects = [e for e in report.effects if e.ci95 is not None]
    several = len({e.model for e in effects}) > 1
    with _style():
        fig = MplFigure(figsize=(9, 1.4 + 0.6 * len(effects)), layout="constrained")
        ax = fig.subplots()
        ys = list(range(len(effects)))[::-1]
        for y, e in zip(ys, effects):
            color = {"improves": "C2", "hurts": "C3"}.get(e.verdict, "C7")
            ax.errorbar([e.delta_mean], [y], xerr=[[e.delta_mean - e.ci95[0]], [e.ci95[1] - e.delta_mean]],
                        fmt="o", color=color, capsize=4)
        ax.axvline(0.0, color="black", linewidth=0.8)
        prefix = (lambda e: f"{e.model}: ") if several else (lambda e: "")
        ax.set_yticks(ys, [f"{prefix(e)}{e.factor} ({_change(e)})\n{e.verdict}, {_p(e.p_value)}"
                           for e in effects], fontsize="small")
        ax.set_xlabel(f"change in final {words}{' (' + unit + ')' if unit else ''}, mean and 95% CI over paired seeds")
        ax.set_ylim(-0.7, len(effects) - 0.3)
        ax.grid(True, axis="x", alpha=0.3)
        ax.set_title("Main effects with 95% CI; p Holm-corrected\n"
                     "green: improves, red: hurts, grey: no detectable effect", fontsize="medium")
        return _png(fig)


# ---------------------------------------------------------------- files


def default_out_dir(study: str) -> Path:
    """reports/<study name>/ under the current directory."""
    return Path("reports") / study


def render_files(report: Report) -> dict[str, bytes]:
    """Every file of the report folder, by name, rendered in memory."""
    files = {REPORT_FILE: render_markdown(report).encode(), SUMMARY_FILE: summary_json(report).encode()}
    for f in report.figures:
        files[f.file] = curves_png(report, f) if f.kind == "curves" else effects_png(report)
    return files


def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise ReportError(f"{out_dir}: exists and is not a folder; give --out a folder")
    parent = next((p for p in [out_dir, *out_dir.parents] if p.exists()), Path("."))
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise ReportError(f"{out_dir}: cannot write here ({parent} is not a writable folder)")


def _write_files(files: dict[str, bytes], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, content in files.items():
        path = out_dir / name
        path.write_bytes(content)
        paths.append(path)
    return paths


def write_report(report: Report, out_dir: str | Path) -> list[Path]:
    """Write report.md, summary.json and the figures into `out_dir`; return the paths."""
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)
    return _write_files(render_files(report), out_dir)


def _readme_text(path: Path, report: Report, out_dir: Path) -> str:
    """The README with the summary between its markers; raise ReportError if it has none."""
    text = read_text(path, ReportError, "README")
    start, end = text.find(START_MARKER), text.find(END_MARKER)
    if start < 0 or end < 0 or end < start or text.count(START_MARKER) > 1 or text.count(END_MARKER) > 1:
        raise ReportError(f"{path}: needs one line {START_MARKER} and, after it, one line {END_MARKER} "
                          f"around the results; add them where the results should go")
    link = Path(os.path.relpath(out_dir.absolute(), path.absolute().parent)).as_posix()
    body = render_summary(report, link)
    return text[:start + len(START_MARKER)] + "\n" + body + text[end:]


def update_readme(path: str | Path, report: Report, out_dir: str | Path) -> Path:
    """Replace what lies between the README's runner:report markers with the report's summary."""
    path = Path(path)
    text = _readme_text(path, report, Path(out_dir))
    path.write_text(text, encoding="utf-8")
    return path


def make_report(spec: Spec, url: str | None, out_dir: str | Path | None = None,
                readme: str | Path | None = None) -> tuple[Report, list[Path]]:
    """Build the report and write its folder (and the README's summary); check everything first."""
    report = build_report(spec, url)
    out = Path(out_dir) if out_dir is not None else default_out_dir(report.study)
    _check_out_dir(out)
    readme_text = _readme_text(Path(readme), report, out) if readme is not None else None
    files = render_files(report)
    written = _write_files(files, out)
    if readme is not None:
        Path(readme).write_text(readme_text, encoding="utf-8")  # type: ignore[arg-type]
        written.append(Path(readme))
    return report, written

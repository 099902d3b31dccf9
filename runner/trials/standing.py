"""What the storage holds of a spec's points: how many are complete and how many would run, which changed
since their trials were stored (the field, and what the storage has instead), and the best result so far.

`runner grid --dry-run` says it before anything runs, and `runner grid` ends with it, read from the storage
(so that two processes sharing a spec and a database end with the same count); the report names a changed
field through `field_changes` when it leaves a trial out.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from optuna.trial import FrozenTrial, TrialState

from runner import record
from runner.spec import Point, Spec
from runner.store import Store
from runner.text import plural, toml_value

__all__ = ["Change", "Standing", "field_changes", "changed_points", "changed_lines", "standing", "count_line",
           "best_line", "next_lines"]

# a user's module whose code changed is said by runner.sources.stale_sources, with its versions
SAID_ELSEWHERE = ("model.source_sha256", "data.source_sha256")


@dataclass(frozen=True)
class Change:
    """A field of a point's resolved config ("train.lr") that the spec now gives otherwise than the storage has."""

    field: str
    now: Any  # None: the spec no longer gives the field
    stored: Any  # None: the trial was stored without it (a format that had no such key, runner.formats)

    def text(self) -> str:
        """"train.lr is 0.05 in the spec, 0.1 in the storage"."""
        def shown(v: Any) -> str:
            return "not set" if v is None else toml_value(v)
        return f"{self.field} is {shown(self.now)} in the spec, {shown(self.stored)} in the storage"


def field_changes(stored: dict[str, Any], now: dict[str, Any], prefix: str = "") -> list[Change]:
    """Every leaf of two resolved configs that differs, by its dotted name; a value the spec gives as "auto"
    (mean, std) matches the number the trial computed and stored."""
    out = []
    for key in sorted(set(stored) | set(now), key=lambda k: (k not in now, k)):
        a, b, name = stored.get(key), now.get(key), f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out += field_changes(a, b, name + ".")
        elif a != b and b != "auto":
            out.append(Change(name, b, a))
    return out


def _params_key(params: dict[str, Any]) -> tuple:
    return tuple(sorted(params.items()))


def changed_points(spec: Spec, trials: list[FrozenTrial]) -> dict[tuple[Change, ...], list[tuple[Point, FrozenTrial]]]:
    """The spec's points with no complete trial of their config but one of their params (model, axes, seed)
    made with another config, grouped by what changed (fields said elsewhere left out)."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE and record.of(t).config_hash]
    hashes = {record.of(t).config_hash for t in complete}
    by_params = {_params_key(t.params): t for t in complete}
    out: dict[tuple[Change, ...], list[tuple[Point, FrozenTrial]]] = {}
    for point in spec.points():
        then = by_params.get(_params_key(point.params))
        if point.config_hash in hashes or then is None:
            continue
        changes = tuple(c for c in field_changes(record.of(then).config, point.resolved())
                        if c.field not in SAID_ELSEWHERE)
        if changes:
            out.setdefault(changes, []).append((point, then))
    return out


def changed_lines(spec: Spec, trials: list[FrozenTrial]) -> list[str]:
    """One line per kind of change: how many points it touches, each field and what the storage has, and that
    they train again (their old trials stay, another configuration's results)."""
    lines = []
    for changes, pairs in changed_points(spec, trials).items():
        n = len(pairs)
        lines.append(f"{plural(n, 'point')} changed since {'its trial was' if n == 1 else 'their trials were'} "
                     f"stored: {'; '.join(c.text() for c in changes)} (e.g. {pairs[0][0].label()} seed "
                     f"{pairs[0][0].seed}: config {pairs[0][0].config_hash} now, {record.of(pairs[0][1]).config_hash} "
                     f"stored); {'it trains' if n == 1 else 'they train'} again, and the stored "
                     f"{'trial stays' if n == 1 else 'trials stay'} as another configuration's")
    return lines


@dataclass(frozen=True)
class Standing:
    """A spec's points as the storage holds them, all workers' trials counted."""

    total: int
    complete: int
    to_run: int
    failed: int  # failed and not retried (--retry-failed runs them again)
    best: FrozenTrial | None  # the best complete trial of the spec's points, by [study].metric


def standing(spec: Spec, store: Store, todo: list[Point], done: int) -> Standing:
    """The spec's standing in `store`, from `pending`'s (todo, done) with --retry-failed as it was asked."""
    claims = store.claims(spec.study.name)
    points = spec.points()
    running = {p.config_hash for p in todo}
    failed = sum(1 for p in points if (c := claims.get(p.config_hash)) and c.state == "failed"
                 and p.config_hash not in running)
    best = None
    if spec.study.name in store.study_names():
        mine = {p.config_hash for p in points}
        complete = [t for t in store.load_study(spec.study.name).get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                    if record.of(t).config_hash in mine and t.value is not None]
        pick = max if spec.study.direction == "maximize" else min
        best = pick(complete, key=lambda t: t.value, default=None)
    return Standing(len(points), done, len(todo), failed, best)


def count_line(spec: Spec, s: Standing) -> str:
    """"6 points: 2 complete in the storage, 4 to run" (and the failed ones left out)."""
    failed = f", {s.failed} failed (--retry-failed runs them again)" if s.failed else ""
    return f"{plural(s.total, 'point')}: {s.complete} complete in the storage, {s.to_run} to run{failed}"


def best_line(spec: Spec, s: Standing) -> str | None:
    """The best complete trial so far: its number, its point and its metric; None when none is complete."""
    t = s.best
    if t is None:
        return None
    rec = record.of(t)
    return (f"best so far: trial {t.number}, {rec.label} seed {t.params.get('seed')}: "
            f"{spec.study.metric} {t.value:.4g}")


def next_lines(spec: Spec, storage: str | None) -> list[str]:
    """The commands to run next: the report, and the table of every trial."""
    where = f" --storage {storage}" if storage else ""
    sort = f"{'-' if spec.study.direction == 'maximize' else ''}{spec.study.metric}"
    return [f"next: runner report {spec.path}{where}",
            f"      runner trials --study {spec.study.name}{where} --sort {sort}"]

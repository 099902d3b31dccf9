"""Seeds in rounds ([study].seeds = { first, max, until }): what the stored trials decide at every look.

The same stored trials give the same looks, wherever they are read (runner.results.reading): `runner grid`
reads them to know which round to run next (runner.rounds), `runner watch` and the report to say where the
study stands.

- until = "effects": a look after every round (every setting one more seed). Each main effect's z
  (stats.sequential: over seeds and test images, from the stored per-image predictions) is compared with
  Lan-DeMets O'Brien-Fleming boundaries under Holm's step-down (runner.design.sequential). Another round
  runs while an effect is undecided and one of those undecided could still be decided within max seeds,
  were its estimate the truth (sequential.can_still_decide).
- until = "best": racing. At each look every configuration still in the race is compared with the best
  of them; one whose z of "it minus the best" crosses the lower boundary (Bonferroni over all the others)
  leaves the race, and the next round adds a seed only to those left.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from runner.design.sequential import ALPHA, boundaries, can_still_decide, decide_effects, still_in_race
from runner.errors import StorageError
from runner.results.configs import Config
from runner.results.reading import configurations, correct, predictions, read_stored
from runner.results.stats import Correct, best_rows, effect_rows, sequential
from runner.spec import Rounds, Spec
from runner.store import Store

__all__ = ["LookEffect", "Look", "Plan", "plan", "plan_in", "stored_plan", "RULES"]

RULES = {
    "effects": ("after each round, every main effect's z (over seeds and test images) against Lan-DeMets "
                "O'Brien-Fleming boundaries, information = seeds / max, with Holm's step-down over the effects; "
                "another round while an undecided effect could still be decided within max seeds"),
    "best": ("racing: after each round, every configuration still in the race against the best of them, z of "
             "\"it minus the best\" over seeds and test images against the lower Lan-DeMets O'Brien-Fleming "
             "boundary at 0.05 / (configurations - 1); the next round adds a seed only to those left"),
}


@dataclass(frozen=True)
class LookEffect:
    """A main effect at one look."""
    factor: str
    estimate: float | None  # on minus off, in the metric's units; None: no statistic (no stored predictions)
    z: float | None
    verdict: str  # improves | hurts | undecided
    decidable: bool  # undecided and could still be decided within max seeds


@dataclass(frozen=True)
class Look:
    """What one look found, after `seeds` seeds."""
    seeds: int
    bound: float  # the z boundary at this look: the first Holm step's (effects), the race's (best)
    effects: tuple[LookEffect, ...] = ()  # until = "effects"
    best: str | None = None  # until = "best": the best configuration's label
    left: tuple[tuple[str, float], ...] = ()  # until = "best": (label, z) of those that left the race here
    racing: int = 0  # until = "best": configurations still in the race after it


@dataclass(frozen=True)
class Plan:
    """Where a study of rounds stands: its looks so far, and the round at hand or why there is none."""
    rounds: Rounds
    looks: tuple[Look, ...]
    seeds: int  # the seeds of the round at hand; when stopped, those of the last look
    race: dict[int, frozenset[str]] = field(default_factory=dict)  # StudySpec.race: seed -> settings that run it
    stopped: str | None = None  # why no more rounds run; None: the round of `seeds` seeds is to complete

    @property
    def round(self) -> int:
        """The round at hand (1 for the first), or the last one run."""
        return self.seeds - self.rounds.first + 1

    def spec(self, spec: Spec) -> Spec:
        """`spec` as the round at hand runs it: seeds 0 to seeds - 1, racing's seeds only where still racing."""
        return replace(spec, study=replace(spec.study, seeds=tuple(range(self.seeds)), race=dict(self.race)))


def _first(c: Config, n: int) -> Config | None:
    """The configuration's trials of seeds 0 to n - 1; None unless it has all of them."""
    keep = [i for i, s in enumerate(c.seeds) if s < n]
    if sorted(c.seeds[i] for i in keep) != list(range(n)):
        return None
    return replace(c, seeds=tuple(c.seeds[i] for i in keep), final=tuple(c.final[i] for i in keep),
                   trial_ids=tuple(c.trial_ids[i] for i in keep))


def plan(spec: Spec, configs: list[Config], correct: Correct | None) -> Plan:
    """The looks the stored trials (`configs`, every seed; `correct`, their per-image correctness) allow."""
    rounds = spec.study.rounds
    assert rounds is not None, "a study of a fixed list of seeds has no rounds"
    keys = list(dict.fromkeys(p.setting_key for p in replace(spec, study=replace(spec.study, seeds=(0,))).points()))
    by_key = {c.key: c for c in configs if c.key in set(keys)}
    if rounds.until == "best":
        return _race(spec, rounds, keys, by_key, correct)
    return _effects(spec, rounds, keys, by_key, correct)


def plan_in(spec: Spec, store: Store) -> Plan:
    """Where a study of seeds in rounds stands, from its trials stored in `store`; its first round when
    nothing is stored yet."""
    assert spec.study.rounds is not None
    try:
        stored = read_stored(spec, store)
    except StorageError:
        return plan(spec, [], None)
    if not stored.groups:
        return plan(stored.spec, [], None)
    configs = configurations(stored)
    return plan(stored.spec, configs, correct(stored.spec, store, configs, predictions(store, configs, "test")))


def stored_plan(spec: Spec, url: str | None) -> Plan:
    """plan_in the storage at `url` (its first round where there is no database yet)."""
    try:
        store = Store(url, create=False)
    except StorageError:
        return plan(spec, [], None)
    try:
        return plan_in(spec, store)
    finally:
        store.dispose()


def _effects(spec: Spec, rounds: Rounds, keys: list[str], by_key: dict[str, Config], correct: Correct | None) -> Plan:
    looks: list[Look] = []
    verdicts = None
    n = rounds.first
    while True:
        now = [_first(by_key[k], n) if k in by_key else None for k in keys]
        if any(c is None for c in now):
            return Plan(rounds, tuple(looks), n)
        mains, _ = effect_rows(spec, [c for c in now if c is not None], correct)
        stats = [sequential(r) for r in mains]
        zs = [s.z if s else None for s in stats]
        seen = list(range(rounds.first, n + 1))
        verdicts = decide_effects(zs, seen, rounds.max, decided=verdicts, direction=spec.study.direction)
        undecided = sum(v == "undecided" for v in verdicts)
        level = ALPHA / max(undecided, 1)
        effects = tuple(LookEffect(r.factor + (f" at {r.within}" if r.within else ""), s.estimate if s else None, s.z if s else None, v,
                                   v == "undecided" and s is not None and
                                   can_still_decide(s.estimate, s.sigma_seed2, s.sigma_image2, seen, rounds.max, level))
                        for r, s, v in zip(mains, stats, verdicts))
        looks.append(Look(n, boundaries(seen, rounds.max, ALPHA / max(len(mains), 1))[-1], effects))
        if not mains:
            return Plan(rounds, tuple(looks), n, stopped="the grid has no main effect to decide")
        if all(z is None for z in zs):
            return Plan(rounds, tuple(looks), n, stopped="no trial stored its predictions: no effect can be tested")
        if not undecided:
            return Plan(rounds, tuple(looks), n, stopped=f"every main effect was decided at {n} seeds")
        if n >= rounds.max:
            return Plan(rounds, tuple(looks), n, stopped=f"max = {rounds.max} seeds reached with "
                                                         f"{undecided} effect{'s' * (undecided != 1)} undecided")
        if not any(e.decidable for e in effects):
            return Plan(rounds, tuple(looks), n, stopped=f"none of the {undecided} undecided effects could be "
                                                         f"decided within max = {rounds.max} seeds")
        n += 1


def _race(spec: Spec, rounds: Rounds, keys: list[str], by_key: dict[str, Config], correct: Correct | None) -> Plan:
    looks: list[Look] = []
    racing = list(keys)  # in the spec's order
    race: dict[int, frozenset[str]] = {}
    family = len(keys) - 1
    sign = 1.0 if spec.study.direction == "maximize" else -1.0
    n = rounds.first
    while True:
        now = {k: _first(by_key[k], n) if k in by_key else None for k in racing}
        if any(c is None for c in now.values()):
            return Plan(rounds, tuple(looks), n, race)
        seen = list(range(rounds.first, n + 1))
        ranked = sorted(now.values(), key=lambda c: -sign * sum(c.final) / n)  # type: ignore[union-attr]
        best = ranked[0]
        z_of = {}
        for c, r in zip(ranked[1:], best_rows(ranked, correct)):  # type: ignore[arg-type]
            s = sequential(r)
            z_of[c.key] = None if s is None else sign * s.z  # type: ignore[union-attr]
        others = [k for k in keys if k != best.key]  # the race's whole family, those out already None
        inside = still_in_race([z_of.get(k) if k in z_of else None for k in others], seen, rounds.max)
        bound = boundaries(seen, rounds.max, ALPHA / family)[-1] if family else float("inf")
        left = [k for k, stays in zip(others, inside) if k in z_of and z_of[k] is not None and not stays]
        racing = [k for k in racing if k not in left]
        looks.append(Look(n, bound, best=best.label, racing=len(racing),
                          left=tuple((by_key[k].label, z_of[k]) for k in left)))  # type: ignore[misc]
        if len(racing) == 1:
            return Plan(rounds, tuple(looks), n, race, stopped=f"only the best, {best.label}, is left at {n} seeds")
        if n >= rounds.max:
            return Plan(rounds, tuple(looks), n, race, stopped=f"max = {rounds.max} seeds reached with "
                                                               f"{len(racing)} configurations still racing")
        race[n] = frozenset(racing)  # seed n, the next round's, for those still racing
        n += 1

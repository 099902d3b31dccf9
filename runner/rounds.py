"""`runner grid` of a study whose seeds come in rounds: [study].seeds = { first, max, until }.

Each round is a grid run (runner.trials.grid) of the points the stored trials call for next
(runner.results.looks.plan_in): the first round every setting's seeds 0 to first - 1, each later round
one more seed, for every setting (until = "effects") or for the settings still racing (until = "best").
Between rounds the looks are read again from the storage, so any number of workers, machines or Slurm
tasks run the same rounds, an interrupted run continues the round it stopped in, and a worker that
finds every point of a round taken waits for the others before it looks. The command reads and writes
the storage through one Store, opened once; each round's grid run opens its own for its workers.
"""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from runner import record
from runner.sources import adopt_stored_source, known_structures
from runner.results.looks import Plan, plan_in
from runner.spec import Spec
from runner.store import Store
from runner.trials.grid import GridResult, check_size, pending, run_grid
from runner.trials.lifecycle import Log
from runner.trials.settings import RunSettings

__all__ = ["run_rounds", "round_line", "cost_lines", "most_points", "POLL_S"]

POLL_S = 10.0  # how often a worker with nothing left to claim looks whether the others have ended the round


def round_line(spec: Spec, p: Plan) -> str:
    """Where the study stands, in one line: "round 2 of at most 5: seeds 0-3 ..." or why it stopped."""
    r = p.rounds
    last = r.max - r.first + 1
    if p.stopped is not None:
        return f"{spec.study.name}: seeds in rounds {r.text}: stopped after round {p.round} of at most {last}: {p.stopped}"
    racing = ""
    if r.until == "best" and p.race:
        racing = f", {len(p.race[p.seeds - 1])} configurations still racing"
    return (f"{spec.study.name}: round {p.round} of at most {last}: seeds 0-{p.seeds - 1} "
            f"(until = \"{r.until}\"){racing}")


def cost_lines(spec: Spec) -> list[str]:
    """For --dry-run: the first round's points, and the most the study can cost (max seeds)."""
    r = spec.study.rounds
    if r is None:
        return []
    most = "for every setting" if r.until == "effects" else "if no setting leaves the race"
    return [f"seeds in rounds {r.text}: the first round is the {spec.point_count():,} points above (seeds 0-"
            f"{r.first - 1}); each later round adds one seed; at most {most_points(spec).point_count():,} points "
            f"({r.max} seeds "
            f"{most}, {r.max - r.first} more rounds)"]


def _write_round(store: Store, spec: Spec, p: Plan) -> None:
    """The round at hand as the study's record, for `runner watch`."""
    study = store.open_study(spec.study.name, spec.study.direction)
    study.set_user_attr(record.ROUND, {"round": p.round, "seeds": p.seeds, "max": p.rounds.max,
                                       "until": p.rounds.until, "stopped": p.stopped,
                                       "racing": len(p.race[p.seeds - 1]) if p.seeds - 1 in p.race else None,
                                       "points": p.spec(spec).point_count()})


def _adopted(spec: Spec, store: Store) -> Spec:
    """`spec` as run_grid reads it against the stored trials (a user module's form-only edit, format 3's EMA trials
    without the warm-up), so that its points' config hashes are the stored ones."""
    study = store.open_study(spec.study.name, spec.study.direction)
    trials = study.get_trials(deepcopy=False)
    return adopt_stored_source(spec, trials, known_structures(trials, record.study_of(study)))[0]


def _waiting_for(spec: Spec, store: Store) -> tuple[int, int]:
    """(points of the round still running elsewhere, points failed) once this worker has nothing to claim."""
    spec = _adopted(spec, store)
    claims = store.claims(spec.study.name)
    states = [claims[p.config_hash].state if p.config_hash in claims else "none" for p in spec.points()]
    failed = sum(s == "failed" for s in states)
    return sum(s not in ("complete", "failed") for s in states), failed


def run_rounds(spec: Spec, url: str | None, run: RunSettings = RunSettings(), progress: Any = None,
               log: Log = lambda s: None) -> tuple[GridResult, Plan]:
    """Run `spec`'s rounds until the stored trials decide it (or max seeds); (what ran, where it stopped)."""
    assert spec.study.rounds is not None, "a fixed list of seeds is a plain run_grid"
    if progress is not None:
        log = progress.log
    check_size(most_points(spec), run.max_points)
    store = Store(url)
    try:
        return _rounds(spec, url, store, run, progress, log)
    finally:
        store.dispose()


def _rounds(spec: Spec, url: str | None, store: Store, run: RunSettings, progress: Any,
            log: Log) -> tuple[GridResult, Plan]:
    """run_rounds with the command's one Store (`url` still goes to run_grid, whose workers open their own)."""
    done_before = ran = failed = 0
    deaths: tuple[str, ...] = ()
    first, told, waiting, again = True, None, False, False
    while True:
        p = plan_in(spec, store)
        if told != (p.seeds, p.stopped):
            _write_round(store, spec, p)
            log(round_line(spec, p))
            told, waiting, again = (p.seeds, p.stopped), False, False
        if p.stopped is not None:  # what the storage holds: this run's trials, and the others' (other workers')
            return GridResult(p.spec(spec).point_count(), _complete(p.spec(spec), store) - ran, ran, failed,
                              deaths), p
        if waiting:  # one worker, and its count line only once it trains a point another worker left
            result = run_grid(p.spec(spec), url, replace(run, workers=1), None, _Quiet(log))
        else:
            if progress is not None:
                progress.close()  # each round counts its own trial-epochs
            result = run_grid(p.spec(spec), url, run, progress, log)
        if first:
            done_before, first = result.done_before, False
        ran, failed, deaths = ran + result.ran, failed + result.failed, deaths + result.deaths
        if result.failed:
            log(f"{spec.study.name}: round {p.round} cannot be looked at: {result.failed} of its trials failed "
                "(see `runner trials`; --retry-failed runs them again)")
            return GridResult(result.total, done_before, ran, failed, deaths), p
        after = plan_in(spec, store)
        if (after.seeds, after.stopped) != (p.seeds, p.stopped):
            again = False
            continue
        elsewhere, broken = _waiting_for(p.spec(spec), store)
        if broken and not elsewhere:
            log(f"{spec.study.name}: round {p.round} cannot be looked at: {broken} of its trials failed before "
                "(--retry-failed runs them again)")
            return GridResult(result.total, done_before, ran, failed + broken, deaths), p
        if not elsewhere:  # the others ended the round meanwhile: look again at once, once
            if again:
                log(f"{spec.study.name}: round {p.round}: every point is complete, yet the stored trials do not "
                    "complete the round (see `runner trials`); stopping here")
                return GridResult(result.total, done_before, ran, failed, deaths), p
            again = True
            continue
        again = False
        if not waiting:
            log(f"{spec.study.name}: round {p.round}: waiting for the {elsewhere} trials other workers are running")
            waiting = True
        time.sleep(POLL_S)


def _complete(spec: Spec, store: Store) -> int:
    """The points of `spec` complete in the storage."""
    return pending(_adopted(spec, store), store)[1]


class _Quiet:
    """A log that holds run_grid's count line back until a line follows it (a point taken over and trained)."""

    def __init__(self, log: Log):
        self.log, self.held = log, []  # type: ignore[var-annotated]

    def __call__(self, line: str) -> None:
        if self.held is None:
            self.log(line)
        elif not self.held:
            self.held.append(line)
        else:
            for held in self.held:
                self.log(held)
            self.held = None
            self.log(line)


def most_points(spec: Spec) -> Spec:
    """A spec whose point count is the most the rounds can cost: every setting at max seeds."""
    r = spec.study.rounds
    return replace(spec, study=replace(spec.study, seeds=tuple(range(r.max)), race={}))

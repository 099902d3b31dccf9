"""A user's module as stored trials know it: an edit that changes only its form (a comment, a blank line, a
docstring, the formatting) keeps its trials; an edit that changes what it does is said, once, everywhere.

A trial stores its module file's SHA-256 (in its resolved config, and so in its config hash) and, from
format 3 on, the SHA-256 of what the file does (usercode.structure_sha256, its syntax tree without
docstrings); every run also notes the pair in the study's record. When the file on disk has another
SHA-256 but the same structure as a stored version, the spec takes that version's SHA-256: the points
keep their config hashes, nothing trains again and the report counts them. Trials of formats 1 and 2,
stored without the structure, are matched once a run has seen their file unchanged (it notes the pair then).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Iterable

from optuna.trial import FrozenTrial, TrialState

from runner import record
from runner.spec import Point, Spec
from runner.usercode import source_sha256

__all__ = ["known_structures", "adopt_stored_source", "adopt_stored_ema", "remember_sources", "stale_sources", "earlier_versions"]


def known_structures(trials: Iterable[FrozenTrial], study_record: record.StudyRecord) -> dict[str, str]:
    """{file SHA-256: structure SHA-256} of every version of a user's module the study has seen."""
    out = dict(study_record.source_versions)
    for t in trials:
        out.update(record.of(t).source_structure)
    return out


def adopt_stored_source(spec: Spec, trials: list[FrozenTrial], known: dict[str, str]) -> tuple[Spec, list[str]]:
    """The spec with each user module whose file changed in form only since stored trials given the stored
    version's SHA-256 (their config hashes then match), and one line per module so adopted."""
    models, lines = dict(spec.models), []
    for name, m in spec.models.items():
        if not m.target or not m.source_structure:
            continue
        stored = [record.of(t).source_sha256 for t in sorted(trials, key=lambda t: t.number)
                  if t.params.get("model") == name and t.state == TrialState.COMPLETE]
        same = [s for s in stored if s and s != m.source_sha256 and known.get(s) == m.source_structure]
        if same and m.source_sha256 not in stored:
            models[name] = dataclasses.replace(m, source_sha256=same[-1])
            lines.append(f"{name}: {Path(m.source).name} changed since its trials were stored, but only in comments, "
                         f"docstrings or formatting (sha256 {m.source_sha256[:12]} now, {same[-1][:12]} then, the "
                         "same code): its trials still count")
    spec = dataclasses.replace(spec, models=models)
    spec, ema = adopt_stored_ema(spec, trials)
    return spec, lines + ema


def adopt_stored_ema(spec: Spec, trials: list[FrozenTrial]) -> tuple[Spec, list[str]]:
    """A study whose EMA trials format 3 stored, without the decay warm-up (ema_warmup, format 4's), goes on as
    it was begun: the spec, where it says nothing of ema_warmup, takes it off for every model (its EMA points
    keep their config hashes and their trials count), and one line says so."""
    if "ema_warmup" in spec.axis_names or any("ema_warmup" in dict(m.defaults) for m in spec.models.values()):
        return spec, []
    before = [t for t in trials if t.state == TrialState.COMPLETE
              and record.of(t).section("regularizers").get("ema") and
              "ema_warmup" not in record.of(t).section("regularizers")]
    if not before:
        return spec, []
    models = {n: dataclasses.replace(m, defaults=(*m.defaults, ("ema_warmup", False))) for n, m in spec.models.items()}
    return dataclasses.replace(spec, models=models), [
        f"{spec.study.name}: ema_warmup is off, as for the {len(before)} EMA trial{'s' * (len(before) != 1)} this "
        "study stored before the warm-up existed (their results keep their meaning); ema_warmup = true in [grid], "
        "[[runs]] or a model trains the warm-up beside them"]


def remember_sources(study: Any, spec: Spec) -> None:
    """Note in the study's record the file SHA-256 and the structure of each user module the spec runs (so
    that a later edit of its form alone keeps the trials this run makes, and those stored before)."""
    seen = dict(record.study_of(study).source_versions)
    now = {source_sha256(Path(m.source)): m.source_structure for m in spec.models.values()
           if m.target and m.source and m.source_structure and Path(m.source).is_file()}
    now.update({m.source_sha256: m.source_structure for m in spec.models.values() if m.target and m.source_structure})
    if any(seen.get(k) != v for k, v in now.items()):
        study.set_user_attr(record.SOURCE_VERSIONS, {**seen, **now})


def earlier_versions(spec: Spec, trials: list[FrozenTrial]) -> dict[str, dict[str, int]]:
    """{model: {file SHA-256: complete trials}} of the complete trials an earlier version of a user's module
    made (one whose code is not the module's now)."""
    out: dict[str, dict[str, int]] = {}
    for t in trials:
        model = spec.models.get(t.params.get("model", ""))
        sha = record.of(t).source_sha256
        if t.state != TrialState.COMPLETE or model is None or not model.target or sha in (None, model.source_sha256):
            continue
        out.setdefault(model.name, {})
        out[model.name][sha] = out[model.name].get(sha, 0) + 1
    return out


def stale_sources(spec: Spec, trials: list[FrozenTrial], todo: list[Point]) -> list[str]:
    """One line per user module whose code changed since complete trials of it were stored."""
    lines = []
    for name, old in earlier_versions(spec, trials).items():
        model = spec.models[name]
        for sha, n in old.items():
            lines.append(f"{name}: {Path(model.source).name} changed since {n} complete trial{'s' if n > 1 else ''} "
                         f"of it were stored (sha256 {sha[:12]} then, {model.source_sha256[:12]} now); they stay "
                         "in the database as the old code's results and are not counted for this code"
                         + ("; its points train again" if any(p.model.name == name for p in todo) else ""))
    return lines

"""[train].teacher: a kept model whose soft outputs the student learns from (knowledge distillation).

    [train]
    teacher = { study = "tune_lenet-select", trial = "best" }   # or trials = [3, 7, 9] (their mean), or file = "x.pt"
    distill_weight = 0.9        # the teacher's share of the loss; 0 = off
    distill_temperature = 4.0

The teacher is bound when the spec is read: its trials found in the storage (or its file beside the spec), the
SHA-256 of each one's weights taken from its record (or the file), so that a trial's config hash names its teacher;
and it is refused in one line when it could leak: a teacher that trained on images the student selects on (its
validation split), or one chosen by a test metric for a student that is tested. A teacher trained only on training
images never saw a test image: one refit on every training image (runner tune's refit) may teach a student scored
on test only.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from runner import record
from runner.errors import RunnerError
from runner.keys import Key
from runner.spec.check import Checker, show_value
from runner.store import Store
from runner.text import plural

__all__ = ["Teacher", "TEACHER_KEYS", "parse_teacher", "check_leak", "describe"]

TEACHER_KEYS: dict[str, Key] = {
    "study": Key(str, None, "a study of the storage whose kept weights teach (a search's: <name>-select, trained "
                            "on the student's split)", nonempty=True),
    "trial": Key(str, None, 'one of its trials: its number, or "best" (by the study\'s value, where no trial of it '
                            "was tested)", text='a trial number or "best"'),
    "trials": Key(list, None, "several of its trials: the mean of their soft outputs (an ensemble)", item=int,
                  item_ge=0, nonempty=True),
    "file": Key(str, None, "a weights file (runner export writes them), relative to the spec's folder",
                nonempty=True),
}


@dataclass(frozen=True)
class Teacher:
    """A bound teacher: where it came from, its weights' SHA-256 (in the config hash), what its record says."""

    origin: str  # "tune_lenet-select trial 4", "tune_lenet trials 0, 1, 2", "lenet.pt"
    sha256: tuple[str, ...]  # of each member's weights file: the teacher's identity
    study: str = ""
    trials: tuple[int, ...] = ()  # its members, "best" resolved
    file: str = ""  # an absolute path
    parameters: int | None = None  # of one member
    stored: str = ""  # the value its trials stored (their mean), "" for a file
    measured: tuple[tuple[str, float], ...] = ()  # its accuracy on the student's held-out splits, once loaded

    def resolved(self) -> dict[str, Any]:
        """What the config hash takes of it: the weights, wherever they came from."""
        return {"sha256": list(self.sha256)}

    def to_record(self) -> dict[str, Any]:
        """What a distilled trial's record keeps of its teacher (runner.record.TEACHER)."""
        out: dict[str, Any] = {"from": self.origin, "sha256": list(self.sha256), "parameters": self.parameters,
                               "stored": self.stored, "measured": dict(self.measured)}
        if self.study:
            out.update(study=self.study, trials=list(self.trials))
        return out


def parse_teacher(c: Checker, raw: Any, folder: str, data: Any, storage: str | None) -> Teacher:
    """[train].teacher, bound (see the module's docstring); `data` is the student's DataSpec."""
    where = "[train].teacher"
    if not isinstance(raw, dict):
        raise c.fail(where, f'must be a table: {{ study = "...", trial = "best" }}, {{ study = "...", trials = '
                            f'[0, 1] }} or {{ file = "model.pt" }}; got {show_value(raw)}')
    trial = raw.get("trial")
    values = c.table(where, {k: v for k, v in raw.items() if k != "trial"}, TEACHER_KEYS, extra=("trial",))
    if trial is not None and not (trial == "best" or isinstance(trial, int) and not isinstance(trial, bool)
                                  and trial >= 0):
        raise c.fail(f"{where}.trial", f'{show_value(trial)} is not a trial number nor "best"')
    given = [k for k in ("trial", "trials", "file") if k in raw]
    if len(given) != 1:
        raise c.fail(where, "give one of trial, trials or file" + (f", not {' and '.join(given)}" if given else ""))
    if "file" in values:
        if "study" in values:
            raise c.fail(f"{where}.study", "a file's teacher names no study: give study with trial or trials")
        return _file_teacher(c, values["file"], folder, data, storage)
    if "study" not in values:
        raise c.fail(f"{where}.study", f"missing: which study's {given[0]} teaches")
    return _study_teacher(c, values["study"], trial if "trial" in raw else tuple(values["trials"]), data, storage)


def _file_teacher(c: Checker, name: str, folder: str, data: Any, storage: str | None) -> Teacher:
    """A weights file `runner export` wrote: hashed, and checked for a leak through the trial it names (its study and
    number are in the file) where the storage has it."""
    path = (Path(folder) / name) if folder else Path(name)
    if not path.is_file():
        if c.missing_code_ok:
            return Teacher(name, ("",), file=str(path))
        raise c.fail("[train].teacher.file", f"{name}: no such file beside the spec (runner export STUDY TRIAL -o "
                                             f"{name} writes one)")
    try:
        doc = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - any unreadable file is the same one line
        raise c.fail("[train].teacher.file", f"{name}: not a weights file runner can read (runner export writes "
                                             "them)") from None
    if not isinstance(doc, dict) or "state_dict" not in doc:
        raise c.fail("[train].teacher.file", f"{name}: not a runner weights file (runner export writes them)")
    r = _stored_record(doc.get("study"), doc.get("trial"), storage)
    if r is not None:
        check_leak(c, f"{name} ({doc['study']} trial {doc['trial']})", r, data)
    elif data.val_fraction or data.target or doc.get("dataset") != data.dataset:
        why = ("this study selects on a validation split" if data.val_fraction else
               "this study reads its own data" if data.target else
               f"it was trained on {doc.get('dataset')}, this study reads {data.dataset}")
        raise c.fail("[train].teacher.file", f"{name}: the trial it holds ({doc.get('study')} trial {doc.get('trial')}) "
                                             f"is not in the storage, so which images it saw cannot be checked, and "
                                             f"{why}: teach with that trial by study and trial")
    return Teacher(name, (hashlib.sha256(path.read_bytes()).hexdigest(),), file=str(path.resolve()))


def _stored_record(study: Any, number: Any, storage: str | None) -> record.TrialRecord | None:
    """The record of trial `number` of `study` in the storage, or None where it is not there."""
    try:
        store = Store(storage, create=False)
    except RunnerError:
        return None
    try:
        if study not in store.study_names():
            return None
        trials = [t for t in store.load_study(study).get_trials(deepcopy=False) if t.number == number]
        return record.of(trials[0]) if trials else None
    finally:
        store.dispose()


def _study_teacher(c: Checker, study: str, which: Any, data: Any, storage: str | None) -> Teacher:
    where = "[train].teacher"
    unbound = Teacher(f"{study} (not in the storage)", ("",), study)  # for a reader: its trials will not match
    try:
        store = Store(storage, create=False)
    except RunnerError as e:
        if c.missing_code_ok:
            return unbound
        raise c.fail(f"{where}.study", f"{study!r}: {e}") from None
    try:
        if study not in store.study_names():
            if c.missing_code_ok:
                return unbound
            raise c.fail(f"{where}.study", f"no study {study!r} in {store.url}; studies there: "
                                           f"{', '.join(store.study_names()) or 'none'}; train it first")
        s = store.load_study(study)
        trials = {t.number: t for t in s.get_trials(deepcopy=False)}
    finally:
        store.dispose()
    kept = {n: t for n, t in trials.items() if t.state == TrialState.COMPLETE and record.of(t).weights is not None}
    if which == "best":
        members = [_best(c, study, s, kept)]
    else:
        members = [_member(c, study, n, trials) for n in ([which] if isinstance(which, int) else which)]
    for t in members:
        check_leak(c, f"{study} trial {t.number}", record.of(t), data)
    first = record.of(members[0])
    numbers = tuple(t.number for t in members)
    origin = f"{study} trial {numbers[0]}" if len(numbers) == 1 else f"{study} trials {', '.join(map(str, numbers))}"
    values = [t.value for t in members]
    stored = f"{'mean ' if len(values) > 1 else ''}{sum(values) / len(values):.2f}"
    return Teacher(origin, tuple(record.of(t).weights.sha256 for t in members), study, numbers, "",
                   first.param_count, stored)


def _member(c: Checker, study: str, number: int, trials: dict[int, optuna.trial.FrozenTrial]) -> Any:
    t = trials.get(number)
    if t is None:
        raise c.fail("[train].teacher", f"{study} has no trial {number} (its trials: 0 to {len(trials) - 1})")
    if t.state != TrialState.COMPLETE:
        raise c.fail("[train].teacher", f"{study} trial {number} is {t.state.name.lower()}, not complete")
    if record.of(t).weights is None:
        raise c.fail("[train].teacher", f"{study} trial {number} kept no weights ([study].keep = \"none\")")
    return t


def _best(c: Checker, study: str, s: optuna.Study, kept: dict[int, optuna.trial.FrozenTrial]) -> Any:
    if not kept:
        raise c.fail("[train].teacher", f"{study} has no complete trial with kept weights")
    if any(record.of(t).test_size for t in kept.values()):  # its value may be a test metric: chosen on test
        raise c.fail("[train].teacher.trial", f'"best" of {study} would be chosen among trials that were tested: '
                                              f"name one (trial = N), or teach with their mean (trials = "
                                              f"{sorted(kept)[:3]})")
    sign = 1 if s.direction == optuna.study.StudyDirection.MAXIMIZE else -1
    return max(kept.values(), key=lambda t: (sign * t.value, -t.number))


def check_leak(c: Checker, name: str, r: record.TrialRecord, data: Any) -> None:
    """Refuse a teacher that saw images the student selects on, or whose images are not the student's."""
    seen = r.section("data")
    same = seen.get("dataset") == data.dataset and seen.get("target", "") == data.target and \
        seen.get("source_sha256", "") == data.source_sha256 and seen.get("args", {}) == dict(data.args)
    if not same:
        raise c.fail("[train].teacher", f"{name} trained on {_images(seen)}, this study reads "
                                        f"{_images(data.resolved())}: a teacher of other images is refused")
    if not data.val_fraction:  # scored on test only: a teacher trained on training images never saw one
        return
    split = (seen.get("train_limit", 0), seen.get("val_fraction", 0.0), seen.get("val_seed", 0))
    if split != (data.train_limit, data.val_fraction, data.val_seed):
        how = ("was trained on every training image" if not split[1] else
               f"held out another split (val_fraction {split[1]}, val_seed {split[2]}, train_limit {split[0]})")
        raise c.fail("[train].teacher", f"{name} {how}: it saw images of the validation split this study selects "
                                        f"on (val_fraction {data.val_fraction}, val_seed {data.val_seed}, "
                                        f"train_limit {data.train_limit}); teach with a trial trained on that split "
                                        "(a search's <name>-select), or score the student on test only")


def _images(data: dict[str, Any]) -> str:
    """A data section's images in words: the dataset, or the user's function with its arguments."""
    if not data.get("target"):
        return str(data.get("dataset"))
    args = ", ".join(f"{k}={v!r}" for k, v in sorted(data.get("args", {}).items()))
    return f"{data['target']}({args})"


def describe(t: Teacher) -> str:
    """The teacher in a few words: where from, its size, the value its study ranks it by, what it scores here."""
    parts = [plural(len(t.sha256), "model")] if len(t.sha256) > 1 else []
    parts += [f"{t.parameters:,} parameters"] if t.parameters else []
    parts += [f"stored value {t.stored}"] if t.stored else []
    parts += [f"{k.removesuffix('_acc')} accuracy here {v:.2f}%" for k, v in t.measured]
    return t.origin + (f" ({', '.join(parts)})" if parts else "")

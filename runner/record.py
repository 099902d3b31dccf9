"""What a trial and a study store, in one place: every key, the derived study names, the one builder of a
trial's record, and typed readers.

A trial's record is its Optuna user attrs: what produced it (the resolved config, the data's identity,
the parameter count and layer table, the worker and the machine) when it starts, and what it gave (its
time and memory, its weights) when it ends. Grid, search, selection and confirmation trials are
recorded by the same builder. Every module reads a record through `of(trial)` and `study_of(study)`,
never by spelling a key: a stored key changes here alone (tests/test_record.py holds it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Mapping, TypeVar

__all__ = ["TrialRecord", "StudyRecord", "Weights", "of", "study_of", "state_of", "over_cap_reason", "StopReason", "reused_record", "trial_record", "outcome_record",
           "provenance_record", "write", "search_study", "select_study", "is_search_study", "SEARCH_SUFFIX",
           "SELECT_SUFFIX", "TRIAL_KEYS", "STUDY_KEYS"]

# ---------------------------------------------------------------- a trial's user attrs

# what produced it, stored when it starts (trial_record)
CONFIG_HASH = "config_hash"  # the point's identity: its resolved config, hashed
CONFIG = "config"  # the resolved config: model, data, train, regularizers, seed
LABEL = "label"  # the point as the report names it
PARAM_COUNT = "param_count"
LAYER_TABLE = "layer_table"  # the model's rows (runner.models.counts.LayerRow.to_json)
DATA_CHECKSUM = "data_checksum"
DATASET = "dataset"
DATA_SOURCE = "data_source"
DATA_OFFICIAL = "data_official"  # whether the files are the official ones (checksums matched)
DATA_SHAPE = "data_shape"  # (C, H, W)
CLASSES = "classes"
NORMALIZATION_AUTO = "normalization_auto"  # which of mean and std were computed ("auto")
TRAIN_SIZE = "train_size"
TEST_SIZE = "test_size"
VAL_SIZE = "val_size"
MODULE_TAKES = "module_takes"  # the regularizer arguments a user's constructor takes
SOURCE_STRUCTURE = "source_structure"  # a user's module: {file SHA-256: the SHA-256 of what it does} (runner.sources)
WORKER = "worker"  # host:pid of the worker that trained it
SLOT = "slot"  # a search trial's budget slot
TEACHER = "teacher"  # a distilled trial's teacher: {from, sha256, parameters, stored, measured[, study, trials]}
# the machine (provenance_record)
CODE_VERSION = "code_version"
DEVICE = "device"
DEVICE_INDEX = "device_index"
DEVICE_NAME = "device_name"
THREADS = "threads"
CPU = "cpu"
PYTHON = "python"
VERSIONS = "versions"  # {library: version}
# what it gave
EPOCHS = "epochs"  # a trial never tested (search, selection): its epochs, as dicts; others have runner_epochs rows
FAIL_REASON = "fail_reason"
WEIGHTS = "weights"  # {sha256, bytes, artifact_id} of its weights file (runner.weights)
WALL_SECONDS = "wall_seconds"
PEAK_MEMORY_MB = "peak_memory_mb"
BEST_TEST_ACC = "best_test_acc"
COPY_OF = "copy_of"  # a search trial whose configuration another trial evaluated: that trial's number
ENQUEUED_FROM = "enqueued_from"  # an enqueued search trial: where its point came from
OVER_CAP = "over_cap"  # a search draw over [search].max_params, never trained: why (ended PRUNED, infeasible)
REUSED_FROM = "reused_from"  # a selection trial that is a candidate's search trial (same config, split, seed)

TRIAL_KEYS = frozenset({
    CONFIG_HASH, CONFIG, LABEL, PARAM_COUNT, LAYER_TABLE, DATA_CHECKSUM, DATASET, DATA_SOURCE, DATA_OFFICIAL,
    DATA_SHAPE, CLASSES, NORMALIZATION_AUTO, TRAIN_SIZE, TEST_SIZE, VAL_SIZE, MODULE_TAKES, SOURCE_STRUCTURE, WORKER, SLOT, TEACHER,
    CODE_VERSION, DEVICE, DEVICE_INDEX, DEVICE_NAME, THREADS, CPU, PYTHON, VERSIONS,
    EPOCHS, FAIL_REASON, WEIGHTS, WALL_SECONDS, PEAK_MEMORY_MB, BEST_TEST_ACC, COPY_OF, ENQUEUED_FROM,
    OVER_CAP, REUSED_FROM})

# ---------------------------------------------------------------- a study's user attrs

CANDIDATES = "candidates"  # <name>-select: the settings, in the search's order
WINNER = "winner"  # <name>-select: the chosen setting, recorded once; what <name> tests
TEST_INFORMATION = "test_information"  # <name>-select: {trial number: test accuracy}, after the choice
SOURCE_VERSIONS = "source_versions"  # {file SHA-256: structure SHA-256} of the user modules its runs have seen

ROUND = "round"  # seeds in rounds: {round, seeds, max, until, stopped, racing} of the round at hand (runner.rounds)

PLAN = "plan"  # the analysis plan (runner.plan): {hash, plan, stored, test_results}, stored before the first trial
PLAN_CHANGES = "plan_changes"  # each change of the plan after it was stored: {at, from, to, test_results, changed}
TEST_LOCKED = "test_locked"  # true: the study was stored with [study].test = "locked", and stays locked
STUDY_TEACHER = "taught_by"  # {from, sha256} of the teacher its first run bound: a later run must bind the same

STUDY_KEYS = frozenset({CANDIDATES, WINNER, TEST_INFORMATION, SOURCE_VERSIONS, ROUND, PLAN, PLAN_CHANGES, TEST_LOCKED,
                        STUDY_TEACHER})

# ---------------------------------------------------------------- derived study names

SEARCH_SUFFIX = "-search"  # `runner tune`'s Optuna study: <name>-search
SELECT_SUFFIX = "-select"  # its selection over seeds, a grid study: <name>-select


def search_study(name: str) -> str:
    """The Optuna study of study `name`'s search: `<name>-search`."""
    return name + SEARCH_SUFFIX


def select_study(name: str) -> str:
    """The grid study of study `name`'s selection stage: `<name>-select`."""
    return name + SELECT_SUFFIX


def is_search_study(study: str) -> bool:
    """Whether a stored study is a search (by its name)."""
    return study.endswith(SEARCH_SUFFIX)


# ---------------------------------------------------------------- builders


def provenance_record(code_version: str, device: str, threads: int, cpu: str, python: str,
                      versions: dict[str, str]) -> dict[str, Any]:
    """What produced a result besides its config: the code's version, the machine's, the libraries'."""
    return {CODE_VERSION: code_version, DEVICE: device, THREADS: threads, CPU: cpu, PYTHON: python,
            VERSIONS: versions}


def device_record(device: str, index: int | None = None, name: str | None = None) -> dict[str, Any]:
    """The device part of the provenance: "cpu", or "cuda" with the GPU's index and name."""
    return {DEVICE: device} if device != "cuda" else {DEVICE: device, DEVICE_INDEX: index, DEVICE_NAME: name}


def trial_record(point: Any, data: Any, table: Any, worker: str, prov: dict[str, Any],
                 slot: str | None = None) -> dict[str, Any]:
    """Everything a trial stores about what produced it, when it starts: grid, search, selection and
    confirmation trials alike.

    The config is the point's resolved config with the normalization numbers actually used ("auto"
    computed); the data's identity and split sizes are those the trial trains and evaluates on.

    Args:
        point: the runner.spec.Point trained.
        data: the runner.data.Data it trains on.
        table: its runner.models.counts.ParamTable.
        prov: the worker's provenance (provenance_record and device_record).
        slot: a search trial's budget slot.
    """
    config = point.resolved()
    config["data"].update(mean=data.mean, std=data.std)  # the numbers used, "auto" computed
    return {CONFIG_HASH: point.config_hash, CONFIG: config, LABEL: point.label(),
            PARAM_COUNT: table.total, LAYER_TABLE: [r.to_json() for r in table.rows],
            DATA_CHECKSUM: data.checksum, DATASET: data.dataset, DATA_SOURCE: data.source,
            DATA_OFFICIAL: data.official, DATA_SHAPE: list(data.shape), CLASSES: data.classes,
            NORMALIZATION_AUTO: [k for k in ("mean", "std") if getattr(point.data, k) == "auto"],
            TRAIN_SIZE: len(data.train), TEST_SIZE: len(data.test),
            VAL_SIZE: len(data.val) if data.val is not None else 0,
            **({MODULE_TAKES: list(point.model.takes)} if point.model.takes is not None else {}),
            **({SOURCE_STRUCTURE: {point.model.source_sha256: point.model.source_structure}}
               if getattr(point.model, "source_structure", "") else {}),
            **({TEACHER: point.train.teacher.to_record()} if point.train.distill_weight and point.train.teacher else {}),
            WORKER: worker, **prov, **({SLOT: slot} if slot is not None else {})}


def outcome_record(wall_seconds: float, peak_memory_mb: float, best_test_acc: float | None = None) -> dict[str, Any]:
    """What a trial that trained to its end stores of its run: its time, its peak memory, its best test
    accuracy (a tested trial)."""
    out: dict[str, Any] = {WALL_SECONDS: wall_seconds, PEAK_MEMORY_MB: round(peak_memory_mb, 1)}
    if best_test_acc is not None:
        out[BEST_TEST_ACC] = best_test_acc
    return out


def weights_record(sha256: str, size: int, artifact_id: str) -> dict[str, Any]:
    """A kept weights file, as its trial stores it."""
    return {WEIGHTS: {"sha256": sha256, "bytes": size, "artifact_id": artifact_id}}


def reused_record(trial: Any, source: str) -> dict[str, Any]:
    """The record of a trial that stands for `trial` in another study (a search trial as a selection trial):
    its own record but its budget slot, and where it came from ("tune_lenet-search trial 12")."""
    return {**{k: v for k, v in trial.user_attrs.items() if k in TRIAL_KEYS and k != SLOT}, REUSED_FROM: source}


def write(storage: Any, trial_id: int, attrs: Mapping[str, Any]) -> None:
    """Store `attrs` (built here) as the user attrs of the trial `trial_id` in an Optuna storage."""
    for key, value in attrs.items():
        assert key in TRIAL_KEYS, key
        storage.set_trial_user_attr(trial_id, key, value)


# ---------------------------------------------------------------- readers

T = TypeVar("T")


class _Key(Generic[T]):
    """A stored key read as an attribute of a record: its value, or `default` when it was not stored."""

    def __init__(self, key: str, default: Any = None):
        self.key, self.default = key, default

    def __get__(self, record: Any, owner: type | None = None) -> T:
        return record.attrs.get(self.key, self.default)


class _Config(Generic[T]):
    """A value of the stored resolved config (section, key), or `default`."""

    def __init__(self, section: str, key: str, default: Any = None):
        self.section, self.key, self.default = section, key, default

    def __get__(self, record: Any, owner: type | None = None) -> T:
        return record.config.get(self.section, {}).get(self.key, self.default)


@dataclass(frozen=True)
class Weights:
    """A trial's kept weights file: its SHA-256, its size, its artifact's id."""

    sha256: str
    bytes: int
    artifact_id: str


@dataclass(frozen=True)
class TrialRecord:
    """A trial's stored record, read by name: a key that was not stored reads as its default (None)."""

    attrs: Mapping[str, Any]

    config_hash = _Key[str | None](CONFIG_HASH)
    config = _Key[dict[str, Any]](CONFIG, {})
    label = _Key[str | None](LABEL)
    param_count = _Key[int | None](PARAM_COUNT)
    layer_table = _Key[list[dict[str, Any]] | None](LAYER_TABLE)
    data_checksum = _Key[str | None](DATA_CHECKSUM)
    dataset = _Key[str | None](DATASET)
    data_source = _Key[str | None](DATA_SOURCE)
    data_official = _Key[bool | None](DATA_OFFICIAL)
    data_shape = _Key[list[int] | None](DATA_SHAPE)
    classes = _Key[int | None](CLASSES)
    normalization_auto = _Key[list[str]](NORMALIZATION_AUTO, ())
    train_size = _Key[int | None](TRAIN_SIZE)
    test_size = _Key[int | None](TEST_SIZE)
    teacher = _Key[dict[str, Any] | None](TEACHER)  # a distilled trial's
    val_size = _Key[int | None](VAL_SIZE)
    module_takes = _Key[list[str] | None](MODULE_TAKES)
    source_structure = _Key[dict[str, str]](SOURCE_STRUCTURE, {})
    worker = _Key[str | None](WORKER)
    slot = _Key[str | None](SLOT)
    code_version = _Key[str | None](CODE_VERSION)
    device = _Key[str | None](DEVICE)
    device_index = _Key[int | None](DEVICE_INDEX)
    device_name = _Key[str | None](DEVICE_NAME)
    threads = _Key[int | None](THREADS)
    cpu = _Key[str | None](CPU)
    python = _Key[str | None](PYTHON)
    versions = _Key[dict[str, str]](VERSIONS, {})
    epochs = _Key[list[dict[str, Any]]](EPOCHS, [])
    fail_reason = _Key[str | None](FAIL_REASON)
    wall_seconds = _Key[float | None](WALL_SECONDS)
    peak_memory_mb = _Key[float | None](PEAK_MEMORY_MB)
    best_test_acc = _Key[float | None](BEST_TEST_ACC)
    copy_of = _Key[int | None](COPY_OF)
    enqueued_from = _Key[str | None](ENQUEUED_FROM)
    over_cap = _Key[str | None](OVER_CAP)
    reused_from = _Key[str | None](REUSED_FROM)

    # the resolved config's parts
    source_sha256 = _Config[str | None]("model", "source_sha256")  # a user's module's file
    data_source_sha256 = _Config[str | None]("data", "source_sha256")  # a user's data function's file
    train_epochs = _Config[int | None]("train", "epochs")

    def section(self, name: str) -> dict[str, Any]:
        """A section of the stored resolved config ("model", "data", "train", "regularizers"), or {}."""
        return self.config.get(name, {})

    @property
    def weights(self) -> Weights | None:
        """The kept weights file, or None (never kept: [study].keep = "none", or a trial of format 0 or 1: weights
        are format 2's)."""
        w = self.attrs.get(WEIGHTS)
        return None if w is None else Weights(w["sha256"], w["bytes"], w["artifact_id"])

    def provenance(self) -> dict[str, Any]:
        """Every stored key but the config, the epochs and the weights: what produced the trial, as stored."""
        return {k: v for k, v in self.attrs.items() if k not in (CONFIG, EPOCHS, WEIGHTS)}


@dataclass(frozen=True)
class StudyRecord:
    """A study's stored record (a selection stage's), read by name."""

    attrs: Mapping[str, Any]

    candidates = _Key[list[dict[str, Any]] | None](CANDIDATES)
    winner = _Key[dict[str, Any] | None](WINNER)
    test_information = _Key[dict[str, float]](TEST_INFORMATION, {})
    source_versions = _Key[dict[str, str]](SOURCE_VERSIONS, {})
    round = _Key[dict[str, Any] | None](ROUND)
    plan = _Key[dict[str, Any] | None](PLAN)
    plan_changes = _Key[list[dict[str, Any]]](PLAN_CHANGES, [])
    test_locked = _Key[bool](TEST_LOCKED, False)
    teacher = _Key[dict[str, Any] | None](STUDY_TEACHER)


_over_cap_words = "> [search].max_params"  # a refused draw's reason: FAIL in formats 1-2, PRUNED from 3 on


def over_cap_reason(total: int, cap: int) -> str:
    """Why a search draw over [search].max_params was not trained (the words of formats 1 and 2 too)."""
    return f"{total:,} parameters {_over_cap_words} {cap:,}: not trained"


class StopReason:
    """Why a trial ended FAIL though nothing of its own failed: its run was stopped from outside, and its point
    (or budget slot) runs again, from its last checkpoint. Optuna's state stays FAIL (its states have no word
    for it); `state_of` calls such a trial "interrupted". A worker killed by a signal (pool.death: the OOM
    killer's SIGKILL) is not among them: its trial stays "fail", a crash to look into."""

    INTERRUPTED = "interrupted"  # Ctrl-C, SIGTERM, the database away past --db-patience (an error: "error: ...")
    TAKEN_OVER = "taken over: its worker stopped (no heartbeat) or it failed"  # another worker took its point
    DROPPED = ("dropped: its worker was cut off from the database long enough for another to take its point over "
               "(that worker's trial counts)")
    ALL = frozenset({INTERRUPTED, TAKEN_OVER, DROPPED})  # as written since format 0 (dropped: since format 3)


def state_of(trial: Any) -> str:
    """A trial's state as runner counts it: Optuna's, in lower case ("complete", "pruned", "fail", ...);
    "refused" for a search draw over [search].max_params that was never trained (ended PRUNED and
    infeasible; a database of format 1 or 2 ended it FAIL with that reason); "interrupted" for a trial
    stopped from outside (ended FAIL with a StopReason), whose point runs again."""
    rec = of(trial)
    state = trial.state.name.lower()
    if rec.over_cap is not None or (state == "fail" and _over_cap_words in (rec.fail_reason or "")):
        return "refused"
    if state == "fail" and rec.fail_reason in StopReason.ALL:
        return "interrupted"
    return state


def of(trial: Any) -> TrialRecord:
    """The record of an Optuna trial (FrozenTrial or Trial)."""
    return TrialRecord(trial.user_attrs)


def study_of(study: Any) -> StudyRecord:
    """The record of an Optuna study."""
    return StudyRecord(study.user_attrs)

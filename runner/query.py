"""Questions asked of stored trials: list, filter, sort, group, format. Reading never writes.

A filter (`--where`) is parsed into clauses and evaluated in Python over flat trial records; it
is never pasted into SQL nor evaluated as code:

    filter := clause (("and" | "or") clause)*      "and" binds tighter than "or"
    clause := KEY OP VALUE
    OP     := = | != | < | <= | > | >=
    VALUE  := a number | true | false | a word | "a quoted string" | 'a quoted string'
"""
from __future__ import annotations

import csv
import io
import json
import math
import operator
import re
import statistics
import sys
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple


from runner.errors import RunnerError
from runner.record import of as stored
from runner.record import BEST_TEST_ACC, TEST_SIZE, state_of, study_of
from runner.store import Store
from runner.text import did_you_mean, text_table

__all__ = ["RAN", "QueryError", "Clause", "Trials", "parse_filter", "trial_records", "select", "group", "render",
           "refuse_locked", "study_rows", "trial_detail", "METRICS", "TEST_METRICS", "FORMATS"]

METRICS = ("test_acc", "test_loss", "val_acc", "val_loss", "train_acc", "train_loss", "best_test_acc", "seconds")
VAL_METRICS = ("val_acc", "val_loss")  # shown by default only when a trial has them
TEST_METRICS = ("test_acc", "test_loss", "best_test_acc")  # none in a study whose test set is locked
FIXED_KEYS = ("number", "state", "model", "seed")
RAN = "epochs_run"  # the epochs a trial ran, where "epochs" is a grid axis (its planned value)
FORMATS = ("table", "csv", "json", "markdown")
OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}
GRAMMAR = 'KEY OP VALUE clauses joined by "and"/"or", OP one of = != < <= > >=, VALUE a number, true/false, a word or a quoted string'
TOKEN = re.compile(r"""\s*(?:(?P<str>"[^"]*"|'[^']*')|(?P<op><=|>=|!=|=|<|>)|(?P<word>[A-Za-z0-9_.+\-]+))""")


class QueryError(RunnerError):
    """A filter, sort key, column or format that cannot be used."""


@dataclass(frozen=True)
class Clause:
    key: str
    op: str
    value: Any  # float, bool or str


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise QueryError(f"--where: unexpected {text[pos:].strip()[:20]!r} at character {pos + 1}; "
                             f"a filter is {GRAMMAR}")
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _value(kind: str, text: str) -> Any:
    if kind == "str":
        return text[1:-1]
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        number = float(text)
    except ValueError:
        return text
    if not math.isfinite(number):
        return text
    return number


def parse_filter(text: str) -> list[list[Clause]]:
    """Parse a filter into OR-ed groups of AND-ed clauses."""
    tokens = _tokens(text)
    if not tokens:
        raise QueryError(f"--where: empty filter; a filter is {GRAMMAR}")
    groups: list[list[Clause]] = [[]]
    i = 0
    while True:
        part = tokens[i:i + 3]
        if len(part) < 3 or part[0][0] != "word" or part[1][0] != "op" or part[2][0] == "op":
            shown = " ".join(t for _, t in tokens[i:i + 3]) or "the end"
            raise QueryError(f"--where: expected KEY OP VALUE at {shown!r}; a filter is {GRAMMAR}")
        groups[-1].append(Clause(part[0][1], part[1][1], _value(*part[2])))
        i += 3
        if i == len(tokens):
            return groups
        joiner = tokens[i][1].lower()
        if tokens[i][0] != "word" or joiner not in ("and", "or"):
            raise QueryError(f"--where: expected \"and\" or \"or\" at {tokens[i][1]!r}; a filter is {GRAMMAR}")
        if joiner == "or":
            groups.append([])
        i += 1


def _matches(record: dict[str, Any], c: Clause) -> bool:
    have = record.get(c.key)
    if have is None:
        return False
    want = c.value
    if isinstance(have, bool) or isinstance(want, bool):
        if not (isinstance(have, bool) and isinstance(want, bool)) or c.op not in ("=", "!="):
            raise QueryError(f"--where: {c.key} holds {_kind(have)}; compare it with = or != to "
                             f"{'true or false' if isinstance(have, bool) else 'a ' + _kind(have)[:-1]}")
        return OPS[c.op](have, want)
    if isinstance(have, (int, float)):
        if not isinstance(want, float):
            raise QueryError(f"--where: {c.key} holds numbers, {want!r} is not one")
        return OPS[c.op](float(have), want)
    if c.op not in ("=", "!="):
        raise QueryError(f"--where: {c.key} holds words; compare it with = or !=")
    return OPS[c.op](str(have).lower(), str(want).lower())


def _kind(v: Any) -> str:
    return "true/false values" if isinstance(v, bool) else "numbers" if isinstance(v, (int, float)) else "words"


class Trials(NamedTuple):
    """A study's trials as flat records, its axis names in order, and the metrics its records hold."""

    records: list[dict[str, Any]]
    axes: list[str]
    metrics: tuple[str, ...]  # METRICS; without TEST_METRICS when the study's test set is locked


def refuse_locked(option: str, key: str, metrics: tuple[str, ...]) -> None:
    """A test metric asked of a study whose test set is locked is refused in one line."""
    if key in TEST_METRICS and key not in metrics:
        raise QueryError(f'{option}: {key}: the study\'s test set is locked ([study].test = "locked"), no test '
                         f"metric is stored; use val_acc or val_loss")


def trial_records(store: Store, study_name: str) -> Trials:
    """One flat record per trial (params as keys of their own), the axis names in order, and the metrics: a
    study whose test set is locked has no test metric, not even an empty one."""
    study = store.load_study(study_name)
    metrics = tuple(m for m in METRICS if m not in TEST_METRICS) if study_of(study).test_locked else METRICS
    trials = study.get_trials(deepcopy=False)
    ids = store.trial_ids(study_name, [t.number for t in trials])
    epochs = store.epochs(list(ids.values()))
    axes: list[str] = []
    for t in trials:
        axes += [k for k in t.params if k not in ("model", "seed") and k not in axes]
    records = []
    for t in trials:
        rows = epochs[ids[t.number]] or _search_epochs(t)
        last = rows[-1] if rows else None
        record: dict[str, Any] = {"number": t.number, "state": state_of(t),
                                  "model": t.params.get("model"), **{a: t.params.get(a) for a in axes},
                                  "seed": t.params.get("seed"), RAN if "epochs" in axes else "epochs": len(rows)}
        for m in ("test_acc", "test_loss", "val_acc", "val_loss", "train_acc", "train_loss"):
            record[m] = getattr(last, m) if last else None
        tests = [r.test_acc for r in rows if r.test_acc is not None]
        record["best_test_acc"] = max(tests) if tests else None
        record["seconds"] = sum(r.seconds or 0.0 for r in rows) if rows else None
        record["fail_reason"] = stored(t).fail_reason
        records.append({k: v for k, v in record.items() if k not in TEST_METRICS or k in metrics})
    return Trials(records, axes, metrics)


def _search_epochs(t: Any) -> list[Any]:
    """A search trial's epochs, kept as its user attr (a search never writes test metrics)."""
    from types import SimpleNamespace

    keys = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "val_loss", "val_acc", "lr", "seconds")
    return [SimpleNamespace(**{k: e.get(k) for k in keys}) for e in stored(t).epochs]


def select(records: list[dict[str, Any]], axes: list[str], where: str | None = None,
           sort: str | None = None, limit: int | None = None,
           metrics: tuple[str, ...] = METRICS) -> list[dict[str, Any]]:
    """Filter, sort and cut the records (whose metrics are `metrics`)."""
    keys = [*FIXED_KEYS, *axes, *([RAN] if "epochs" in axes else []), *metrics]
    out = records
    if where is not None:
        groups = parse_filter(where)
        for clause in (c for g in groups for c in g):
            refuse_locked("--where", clause.key, metrics)
            if clause.key not in keys:
                raise QueryError(f"--where: unknown key {clause.key!r}{_hint(clause.key, keys)}")
        out = [r for r in out if any(all(_matches(r, c) for c in g) for g in groups)]
    if sort:
        key = sort.lstrip("-")
        refuse_locked("--sort", key, metrics)
        if key not in keys:
            raise QueryError(f"--sort: unknown key {key!r}{_hint(key, keys)} (prefix - for descending)")
        present = [r for r in out if r.get(key) is not None]
        present.sort(key=lambda r: r[key], reverse=sort.startswith("-"))
        out = present + [r for r in out if r.get(key) is None]  # missing values last, either way
    if limit is not None:
        out = out[:limit]
    return out


def _hint(word: str, keys: list[str]) -> str:
    """'; did you mean "model"? keys: ...': the nearest key (as a spec's typo gets), then every key."""
    return f"{did_you_mean(word, keys, otherwise=';')} keys: {', '.join(keys)}"


def group(records: list[dict[str, Any]], axes: list[str], by: list[str],
          metrics: tuple[str, ...] = METRICS) -> list[dict[str, Any]]:
    """Mean, std and n of every metric of `metrics` per group of complete trials (n counts seeds)."""
    keys = ["model", *axes, "seed", "state"]
    for k in by:
        if k not in keys:
            raise QueryError(f"--group-by: unknown key {k!r}{_hint(k, keys)}")
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in records:
        if r["state"] == "complete":
            groups.setdefault(tuple(r[k] for k in by), []).append(r)
    out = []
    for values, members in sorted(groups.items(), key=lambda kv: tuple(map(str, kv[0]))):
        row: dict[str, Any] = dict(zip(by, values))
        row["n"] = len(members)
        for m in metrics:
            xs = [r[m] for r in members if r[m] is not None]
            row[f"{m}_mean"] = statistics.fmean(xs) if xs else None
            row[f"{m}_std"] = statistics.stdev(xs) if len(xs) > 1 else 0.0 if xs else None
        out.append(row)
    return out


def _cell(key: str, v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        if "loss" in key:
            return f"{v:.4f}"
        if "acc" in key:
            return f"{v:.2f}"
        if "seconds" in key:
            return f"{v:.1f}"
        return f"{v:g}"
    return str(v)


def _grouped_cells(row: dict[str, Any], columns: list[str]) -> list[str]:
    cells = []
    for c in columns:
        if f"{c}_mean" in row:
            mean, std = row[f"{c}_mean"], row[f"{c}_std"]
            cells.append("" if mean is None else f"{_cell(c, mean)} ± {_cell(c, std)}")
        else:
            cells.append(_cell(c, row.get(c)))
    return cells


def render(rows: list[dict[str, Any]], columns: list[str], fmt: str, grouped: bool = False) -> str:
    """rows as table | csv | json | markdown. json and csv keep full precision."""
    if fmt not in FORMATS:
        raise QueryError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    if fmt == "json":
        flat = [{k: v for k, v in r.items() if k in columns or k.rsplit("_", 1)[0] in columns} for r in rows]
        return json.dumps(flat, indent=2)
    if fmt == "csv":
        names = [k for k in (rows[0] if rows else columns) if k in columns or k.rsplit("_", 1)[0] in columns]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=names, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: (str(v).lower() if isinstance(v, bool) else v) for k, v in r.items()})
        return buf.getvalue().rstrip("\n")
    cells = [_grouped_cells(r, columns) if grouped else [_cell(c, r.get(c)) for c in columns] for r in rows]
    if fmt == "markdown":
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
        return "\n".join(lines)
    return text_table(columns, cells, fit=sys.stdout.isatty())


def study_rows(store: Store) -> list[dict[str, Any]]:
    """Every study: its trials by state (record.state_of: an interrupted trial apart from the failed),
    its best value, and its test set: "locked" ([study].test = "locked")
    or "open"."""
    rows = []
    for s in store.optuna.get_all_studies():
        trials = store.optuna.get_all_trials(store.optuna.get_study_id_from_name(s.study_name), deepcopy=False)
        states = [state_of(t) for t in trials]
        complete = [t.value for t in trials if t.state.name == "COMPLETE" and t.value is not None]
        maximize = s.directions[0].name == "MAXIMIZE"
        best = (max if maximize else min)(complete) if complete else None
        rows.append({"study": s.study_name, "direction": s.directions[0].name.lower(), "trials": len(trials),
                     **{st: states.count(st) for st in ("complete", "running", "fail", "interrupted", "pruned", "waiting",
                                                        "refused")},
                     "best_value": best, "test": "locked" if study_of(s).test_locked else "open"})
    return rows


def trial_detail(store: Store, study_name: str, number: int) -> dict[str, Any]:
    """One trial: params, value, state, resolved config, provenance and per-epoch metrics; of a study whose test
    set is locked, no test metric and no test split's size."""
    study = store.load_study(study_name)
    locked = study_of(study).test_locked
    trials = study.get_trials(deepcopy=False)
    match = [t for t in trials if t.number == number]
    if not match:
        raise QueryError(f"study {study_name!r} has no trial {number}; its trials are 0-{len(trials) - 1}"
                         if trials else f"study {study_name!r} has no trials")
    t = match[0]
    rec = stored(t)
    attrs = {k: v for k, v in rec.provenance().items() if not (locked and k in (TEST_SIZE, BEST_TEST_ACC))}
    config = rec.config or None
    trial_id = store.trial_ids(study_name, [t.number])[t.number]
    epochs = store.epochs([trial_id])[trial_id] or _search_epochs(t)
    weights = rec.weights
    if weights is not None:
        kept = f"kept: artifact {weights.artifact_id}, {weights.bytes:,} bytes, sha256 {weights.sha256[:16]}"
    elif t.state.name == "COMPLETE" and rec.config_hash is not None and rec.slot is None:
        kept = "not kept (stored before runner kept weights, or [study].keep = \"none\")"
    else:
        kept = None
    return {
        "weights": kept,
        "study": study_name, "number": t.number, "state": state_of(t), "value": t.value,
        "params": t.params, "config": config, "provenance": attrs,
        "started": t.datetime_start.isoformat(timespec="seconds") if t.datetime_start else None,
        "completed": t.datetime_complete.isoformat(timespec="seconds") if t.datetime_complete else None,
        "epochs": [{"epoch": getattr(e, "epoch", i), "train_loss": e.train_loss, "train_acc": e.train_acc,
                    **({} if locked else {"test_loss": e.test_loss, "test_acc": e.test_acc}),
                    "val_loss": e.val_loss, "val_acc": e.val_acc, "lr": e.lr, "seconds": e.seconds}
                   for i, e in enumerate(epochs, 1)],
    }

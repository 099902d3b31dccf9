"""A study's analysis plan: stored before its first trial, so that a report can say whether its verdicts are
confirmatory (the plan fixed before any test result, unchanged since) or exploratory.

The plan is what decides the verdicts: the settings (each one's label and configuration hash), the seeds rule,
the metric, the design, the comparisons and the test lock. `runner grid` stores it with its hash before it
trains anything; a later run whose spec gives another plan records the change (when, what changed, how many
test results existed then) and stores the new plan. Readers (the report, `--dry-run`) call `status`.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from runner import record
from runner.errors import StorageError
from runner.design.one_at_a_time import within_text
from runner.spec import Spec
from runner.text import toml_value

__all__ = ["plan_of", "plan_hash", "Status", "status", "store_plan", "pending_change", "changes", "check_lock",
           "lock", "test_results", "LockError"]


def _label(setting: dict[str, Any]) -> str:
    return " ".join(f"{k}={toml_value(v)}" for k, v in setting.items())


def plan_of(spec: Spec) -> dict[str, Any]:
    """The spec's plan as plain JSON: what decides its verdicts, and nothing of how it runs."""
    seed = spec.study.seeds[0]
    settings = spec.settings()
    rounds = spec.study.rounds
    return {
        "settings": [_label(s) for s in settings],
        "configs": [spec.point(s, seed).config_hash for s in settings],
        "seeds": rounds.text if rounds else list(spec.study.seeds),
        "metric": spec.study.metric,
        "design": spec.design_text,
        "across": {a: [toml_value(v) for v in vs] for a, vs in spec.across},
        "comparisons": [f"{c.factor}: {toml_value(c.on)} vs {toml_value(c.off)}"
                        + (f" at {within_text(c.within)}" if c.within else "") for c in spec.comparisons()],
        "test": spec.study.test,
    }


def plan_hash(plan: dict[str, Any]) -> str:
    """A short SHA-256 of the plan's JSON (sorted keys)."""
    return hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()[:16]


def changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between two plans, one phrase per field: "metric: val_acc (stored: test_acc)"."""
    out = []
    for key in dict.fromkeys([*old, *new]):
        a, b = old.get(key), new.get(key)
        if a == b or key == "configs":
            continue
        if isinstance(a, list) and isinstance(b, list) and key in ("settings", "comparisons"):
            added, removed = [x for x in b if x not in a], [x for x in a if x not in b]
            parts = ([f"{len(added)} added ({_some(added)})"] if added else []) + \
                    ([f"{len(removed)} removed ({_some(removed)})"] if removed else [])
            out.append(f"{key}: {', '.join(parts) or 'reordered'}")
        else:
            out.append(f"{key}: {_show(b)} (stored: {_show(a)})")
    fresh = set(new.get("configs", [])) - set(old.get("configs", []))
    if fresh:  # a setting's configuration changed (its data, training or model), or a setting was added
        out.append(f"configurations: {len(fresh)} of {len(new.get('configs', []))} not in the stored plan")
    return out


def _some(xs: list[str]) -> str:
    return "; ".join(xs[:3]) + (f"; and {len(xs) - 3} more" if len(xs) > 3 else "")


def _show(v: Any) -> str:
    return "none" if v is None else v if isinstance(v, str) else json.dumps(v)


@dataclass(frozen=True)
class Status:
    """Whether a study's verdicts are confirmatory, and why not."""
    confirmatory: bool
    why: str  # one line: what makes them so
    plan_hash: str | None  # the stored plan's hash; None: the study predates plans


def status(study_attrs: Any, locked: bool) -> Status:
    """The study's verdicts as the stored plan and its changes make them."""
    rec = record.StudyRecord(study_attrs)
    stored = rec.plan
    if stored is None:
        return Status(False, "exploratory: the study predates analysis plans (none was stored before its trials), "
                             "so nothing shows its comparisons were fixed before its test results", None)
    h = stored["hash"]
    if locked or stored["plan"].get("test") == "locked":
        return Status(False, f"exploratory: the test set is locked ([study].test = \"locked\"); every verdict is on "
                             f"validation (plan {h})", h)
    if stored.get("test_results"):
        return Status(False, f"exploratory: the plan was stored after {stored['test_results']} test results existed "
                             f"(plan {h})", h)
    late = [c for c in rec.plan_changes if c.get("test_results")]
    if late:
        c = late[-1]
        return Status(False, f"exploratory: the plan changed on {c['at']} after {c['test_results']} test results "
                             f"existed ({'; '.join(c['changed'])}; plan {c['from']} -> {c['to']})", h)
    return Status(True, f"confirmatory: the plan (hash {h}) was stored on {stored['stored']}, before any test "
                        "result, and is unchanged since", h)


def store_plan(study: Any, spec: Spec, test_results: int, trials: int) -> list[str]:
    """Store the spec's plan in the study before it trains (Optuna study user attrs), or record how it changed;
    lines that say so (none when the plan is unchanged). A study that has trials but no plan predates plans and
    is left as it is."""
    plan = plan_of(spec)
    h = plan_hash(plan)
    rec = record.study_of(study)
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if rec.plan is None:
        if trials:
            return []
        study.set_user_attr(record.PLAN, {"hash": h, "plan": plan, "stored": now, "test_results": test_results})
        return []
    if rec.plan["hash"] == h:
        return []
    changed = changes(rec.plan["plan"], plan)
    entry = {"at": now, "from": rec.plan["hash"], "to": h, "test_results": test_results, "changed": changed}
    study.set_user_attr(record.PLAN_CHANGES, [*rec.plan_changes, entry])
    study.set_user_attr(record.PLAN, {"hash": h, "plan": plan, "stored": now,
                                      "test_results": rec.plan.get("test_results", 0)})
    after = f"after {test_results} test results: its verdicts are exploratory from now on" if test_results else \
        "before any test result"
    return [f"{spec.study.name}: the plan changed ({'; '.join(changed)}), {after}"]


def pending_change(study: Any, spec: Spec, test_results: int) -> list[str]:
    """What `runner grid --dry-run` says of the spec's plan against the study's stored one (nothing when the
    same)."""
    rec = record.study_of(study)
    if rec.plan is None:
        return []
    plan = plan_of(spec)
    if rec.plan["hash"] == plan_hash(plan):
        return []
    what = "; ".join(changes(rec.plan["plan"], plan))
    then = (f"{test_results} test results exist, so the report's verdicts would become exploratory"
            if test_results else "no test result exists yet, so the verdicts stay confirmatory")
    return [f"{spec.study.name}: this spec changes the stored plan ({rec.plan['hash']}): {what}; {then}"]


class LockError(StorageError):
    """A spec that would unlock a study stored with its test set locked."""


def check_lock(study: Any, spec: Spec) -> None:
    """A study stored locked stays locked: a spec that opens its test set is refused in one line."""
    if record.study_of(study).test_locked and not spec.study.locked:
        raise LockError(f"{spec.path}: study {spec.study.name!r} is stored with its test set locked "
                        f"([study].test = \"locked\"), and this spec opens it: a confirmation is a new study, give "
                        f"it a new [study].name (e.g. \"{spec.study.name}-confirm\")")


def lock(study: Any, spec: Spec) -> None:
    """Check the lock against the stored study, and store a locked spec's lock (once)."""
    check_lock(study, spec)
    if spec.study.locked and not record.study_of(study).test_locked:
        study.set_user_attr(record.TEST_LOCKED, True)


def test_results(trials: list[Any], spec: Spec) -> int:
    """How many complete trials of the study hold a test result (none in a locked study)."""
    from optuna.trial import TrialState

    if spec.study.locked or not spec.tested:
        return 0
    return sum(t.state == TrialState.COMPLETE for t in trials)

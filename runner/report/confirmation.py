"""The confirmatory spec an exploration chooses: written from its stored results by a stated rule
(runner.report.choose), so that a reader can derive it again from the same database.

The exploration's [data] (without its validation split: the confirmation trains on every training image and is
tested), [train] at the chosen budget and [models] are kept; its [grid] becomes each regularizer alone at that
budget against the baseline (a numeric axis at its best strength there), beside the tuned baseline, the stack
of the regularizers that improved on validation and each other model at its own best budget, as [[runs]].
"""
from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from runner.design.one_at_a_time import within_text
from runner.errors import SpecError
from runner.report.contents import Choice
from runner.spec import TRAIN_KEYS, Spec

__all__ = ["confirmation_spec", "confirmation_name", "ROUNDS"]

ROUNDS = {"first": 3, "max": 5, "until": "effects"}  # the confirmation's seeds, in rounds, unless asked otherwise


def confirmation_name(explore: str) -> str:
    """The confirmation's study name: the exploration's without "-explore", else with "-confirm"."""
    return explore.removesuffix("-explore") if explore.endswith("-explore") else f"{explore}-confirm"


def _literal(v: Any) -> str:
    """A TOML literal: a string quoted, a boolean lower-case, a list or table inline."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_literal(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_literal(x)}" for k, x in v.items()) + " }"
    return repr(v) if isinstance(v, float) else str(v)


def _key(k: str) -> str:
    return json.dumps(k) if not k.replace("_", "").replace("-", "").isalnum() else k


def _table(name: str, values: dict[str, Any]) -> list[str]:
    return [f"[{name}]", *(f"{_key(k)} = {_literal(v)}" for k, v in values.items()), ""]


def _strengths(spec: Spec, choice: Choice) -> list[tuple[str, list[Any]]]:
    """Each [grid] axis's values in the confirmation: its baseline value, then each other value, a numeric axis's
    several strengths narrowed to the best one at the chosen budget (kept or not)."""
    chosen = within_text(choice.budget)
    best = {f: on for f, on, _ in choice.kept}
    out = []
    for axis, values in spec.grid:
        if axis == "model":
            continue
        others = list(values[1:])
        numeric = all(isinstance(v, float) and not isinstance(v, bool) for v in others)
        if numeric and len(others) > 1:
            at = [(on, v) for s, v, where in choice.settings for on in others
                  if s == f"{axis} = {json.dumps(on)}" and where == chosen]
            others = [best[axis]] if axis in best else [max(at, key=lambda x: x[1])[0]] if at else others[:1]
        out.append((axis, [values[0], *others]))
    return out


def confirmation_spec(spec: Spec, choice: Choice, command: str, name: str | None = None,
                      rounds: dict[str, Any] | None = None) -> str:
    """The confirmatory spec's TOML text, from the exploration `spec` (its file is read again for its tables) and
    what its stored results choose."""
    bad = [a for a, _ in spec.across if a not in TRAIN_KEYS]
    if bad:
        raise SpecError(f"{spec.path}: [grid].across.{bad[0]}: a confirmation is written for budgets of [train] keys "
                        f"({', '.join(a for a in TRAIN_KEYS if a not in ('device', 'threads'))}); write this one by hand")
    raw = tomllib.loads(Path(spec.path).read_text(encoding="utf-8"))
    study = raw["study"]
    name = name or confirmation_name(study["name"])
    data = {k: v for k, v in raw.get("data", {}).items() if k not in ("val_fraction", "val_seed")}
    train = {**raw.get("train", {}), **choice.budget}
    first = next(iter(spec.models))
    model = dict(spec.grid).get("model", (first,))[0]
    rule = " ".join(f"{a}={_literal(v)}" for a, v in choice.budget.items())
    out = ["#:schema ./runner.schema.json",
           f"# Written by `{command}` from the stored exploration {study['name']!r}, by the rule its report",
           "# states (runner/report/choose.py); run the same command on the same database to write it again.",
           f"# The budget the regularized settings do best at on validation: {rule}. Each regularizer alone",
           f"# against plain {model} at that budget, plain {model} at its own best budget (the tuned baseline),",
           "# the stack of the regularizers that improved on validation, and each other model at its own best",
           "# budget. The test set is open: this study's plan is stored before its first trial, so its report",
           "# says whether its verdicts stayed confirmatory.", ""]
    out += _table("study", {"name": name, "description": f"Confirming {study['name']}: each regularizer against "
                            f"plain {model} at {rule}", "seeds": rounds or ROUNDS, "metric": "test_acc"})
    out += _table("data", data) + _table("train", train)
    for m, table in raw.get("models", {}).items():
        out += _table(f"models.{m}", table)
    out += ["[grid]", 'design = "one-at-a-time"', f"model = {_literal([model])}"]
    out += [f"{_key(a)} = {_literal(v)}" for a, v in _strengths(spec, choice)] + [""]
    if choice.tuned != choice.budget:
        out += ["[[runs]]                   # plain, at its own best budget on validation",
                f"model = {_literal(model)}", *(f"{a} = {_literal(v)}" for a, v in choice.tuned.items()),
                'baseline = "tuned"', ""]
    else:
        out += [f"# the tuned baseline is the baseline: plain {model} does best at the chosen budget too", ""]
    if len(choice.stack) > 1:
        out += ["[[runs]]                   # the regularizers that improved on validation, together",
                f"model = {_literal(model)}", *(f"{a} = {_literal(v)}" for a, v in choice.stack), 'label = "stack"', ""]
    for m, budget, _ in choice.models:
        out += ["[[runs]]                   # at its own best budget on validation", f"model = {_literal(m)}",
                *(f"{a} = {_literal(v)}" for a, v in budget.items()), ""]
    return "\n".join(out).rstrip() + "\n"

"""Which stored trials count, for the report and the rounds alike: those the spec's code and config make
now (a user's module whose file changed only in form keeps its trials; one whose code changed does not,
unless --module-version names a stored version), and why it has none to count when it has none."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from optuna.trial import FrozenTrial, TrialState

from runner.errors import ReportError
from runner.record import of as stored
from runner.record import state_of
from runner.spec import Spec
from runner.text import plural
from runner.sources import earlier_versions
from runner.trials.standing import Change, field_changes

__all__ = ["ANY_VERSION", "stored_code", "stale", "changes", "changed", "changed_fields", "stored_config_note", "module_version", "earlier_note", "nothing_to_report",
           "count_states"]


def stored_code(spec: Spec, trials: list[FrozenTrial]) -> tuple[Spec, list[str]]:
    """The spec with each user file that was not found (load_spec(missing_code_ok=True)) given the code
    version its latest complete trial stored, and one line per such file saying so."""
    notes, models = [], dict(spec.models)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    for name, m in spec.models.items():
        if m.target and not m.source:
            mine = [t for t in complete if t.params.get("model") == name]
            sha = next((stored(t).source_sha256 for t in reversed(mine) if stored(t).source_sha256), "")
            models[name] = replace(m, source_sha256=sha)
            notes.append(f"[models.{name}].target {m.target}: its module's file was not found; this report covers "
                         + (f"the trials stored with code version sha256 {sha[:12]} (the latest stored), "
                            "from what they stored" if sha else "none of its trials: none was stored"))
    data = spec.data
    if data.target and not data.source_sha256:
        sha = next((stored(t).data_source_sha256 for t in reversed(complete) if stored(t).data_source_sha256), "")
        data = replace(data, source_sha256=sha)
        notes.append(f"[data].target {data.target}: its module's file was not found; this report covers the trials "
                     f"stored with code version sha256 {sha[:12]} (the latest stored), from what they stored")
    return replace(spec, models=models, data=data), notes


def stale(spec: Spec, t: FrozenTrial) -> str | None:
    """Why a trial of a user's module no longer counts: its target or args are not the spec's now,
    or its source file changed since (else None)."""
    model = spec.models.get(t.params.get("model", ""))
    if model is None or not model.target:
        return None
    config = stored(t).section("model")
    then = (config.get("target", model.target), config.get("args", dict(model.args)))
    if then != (model.target, dict(model.args)):  # the trial's params cannot tell them apart: say so here
        return (f"made by {then[0]} with args {json.dumps(then[1], sort_keys=True)}; the spec now has "
                f"{model.target} with args {json.dumps(dict(model.args), sort_keys=True)}: not this "
                "configuration's result")
    sha = config.get("source_sha256")
    if sha in (None, model.source_sha256) or model.source_sha256 == ANY_VERSION:
        return None
    return (f"made by an earlier {model.source.rsplit('/', 1)[-1]} (sha256 {sha[:12]}; now "
            f"{model.source_sha256[:12]}): not this code's result")


def module_version(spec: Spec, trials: list[FrozenTrial], version: str | None) -> tuple[Spec, list[str]]:
    """The spec whose user modules are taken to be the stored version `version` (a SHA-256 or its start, or
    "any": every version), and a line saying which trials that reports."""
    if version is None:
        return spec, []
    earlier = earlier_versions(spec, trials)
    if version == "any":
        models = {n: replace(m, source_sha256=ANY_VERSION) if m.target else m for n, m in spec.models.items()}
        n = sum(sum(v.values()) for v in earlier.values())
        return replace(spec, models=models), [f"--module-version any: the trials of every stored version of the "
                                              f"user's modules are reported ({plural(n, 'trial')} of earlier ones)"]
    models, lines = dict(spec.models), []
    for name, shas in earlier.items():
        match = [s for s in shas if s.startswith(version)]
        if len(match) == 1:
            models[name] = replace(spec.models[name], source_sha256=match[0])
            lines.append(f"--module-version {version}: {name}'s trials of sha256 {match[0][:12]} are reported "
                         f"({plural(shas[match[0]], 'complete trial')}), not those of the file there now")
    if not lines:
        known = sorted({s[:12] for shas in earlier.values() for s in shas})
        raise ReportError(f"--module-version {version}: no complete trial was made by such a version of a user's "
                          f"module; the earlier versions stored: {', '.join(known) or 'none'} (or any)")
    return replace(spec, models=models), lines


ANY_VERSION = "*"  # a user module's SHA-256 that every stored version matches (--module-version any)


def earlier_note(spec: Spec, trials: list[FrozenTrial]) -> list[str]:
    """A line per user module some of whose complete trials an earlier version of its file made, naming the
    option that reports them (when this file's trials are reported)."""
    lines = []
    for name, shas in earlier_versions(spec, trials).items():
        if spec.models[name].source_sha256 == ANY_VERSION:
            continue
        file = Path(spec.models[name].source).name or name
        versions = ", ".join(f"{s[:12]} ({plural(n, 'trial')})" for s, n in shas.items())
        lines.append(f"{name}: {plural(sum(shas.values()), 'complete trial')} of an earlier {file} (sha256 "
                     f"{versions}) are left out; --module-version {next(iter(shas))[:12]} (or any) reports them")
    return lines


def nothing_to_report(storage: str, spec: Spec, trials: list[FrozenTrial]) -> str:
    """Why the study has no trial to report, in one line that says what to do."""
    states = count_states(trials)
    earlier = earlier_versions(spec, trials)
    n = sum(sum(v.values()) for v in earlier.values())
    if n and n == states.get("complete", 0):
        name, shas = next(iter(earlier.items()))
        file = Path(spec.models[name].source).name or name
        return (f"{storage}: study {spec.study.name!r} has {plural(n, 'complete trial')}, every one made by an "
                f"earlier version of {file} (sha256 {', '.join(s[:12] for s in shas)}), none by the code there now: "
                f"run `runner grid {spec.path}` to train this code, or report those trials with "
                f"--module-version {next(iter(shas))[:12]} (or --module-version any)")
    shown = ", ".join(f"{k} {s}" for s, k in sorted(states.items())) or "no trials"
    n, texts = changed_fields(spec, trials)
    if n and texts:  # complete, but the spec now gives their points another config: say which field
        return (f"{storage}: study {spec.study.name!r} has no complete trials of the configurations this spec gives: "
                f"{plural(n, 'complete trial')} of its points {'was' if n == 1 else 'were'} made with another config "
                f"({'; '.join(texts)}): run `runner grid {spec.path}` to train this config, or report the stored "
                "trials with --stored-config")
    if states.get("complete"):  # complete, but of configurations the spec no longer gives
        return (f"{storage}: study {spec.study.name!r} has no complete trials of the configurations this spec gives "
                f"({shown}, made with another config); run `runner grid {spec.path}` first")
    return (f"{storage}: study {spec.study.name!r} has no complete trials ({shown}); "
            f"run `runner grid {spec.path}` first")


def changes(spec: Spec, t: FrozenTrial) -> tuple[str, str, list[Change]] | None:
    """(config hash stored, config hash now, each field that differs) of a trial whose params the spec now gives
    another config; None when it gives the same one, or no longer gives its params.

    A declared model's layers, a preset's hidden widths or a [train] / [data] value edited in the
    spec since the trial ran: its params alone cannot tell, its stored config hash can.
    """
    name, then = t.params.get("model", ""), stored(t).config_hash
    if name not in spec.models or then is None or "seed" not in t.params:
        return None
    setting = {k: v for k, v in t.params.items() if k != "seed"}
    if spec.models[name].source_sha256 == ANY_VERSION:  # --module-version any: each trial as its version made it
        model = replace(spec.models[name], source_sha256=stored(t).source_sha256 or "")
        spec = replace(spec, models={**spec.models, name: model})
    try:
        now = spec.point(setting, t.params["seed"])
    except (KeyError, TypeError, ValueError, StopIteration):  # a param the spec no longer has
        return None
    if now.config_hash == then:
        return None
    return then, now.config_hash, field_changes(stored(t).config, now.resolved())


def changed(spec: Spec, t: FrozenTrial) -> str | None:
    """Why a trial no longer counts: the spec now gives its params another config, each field named with what
    the trial stored (else None)."""
    found = changes(spec, t)
    if found is None:
        return None
    then, now, fields = found
    return (f"stored with another config than the spec now gives: {'; '.join(c.text() for c in fields) or 'config'} "
            f"(config {then}, now {now}): not this spec's result (--stored-config reports it)")


def changed_fields(spec: Spec, trials: list[FrozenTrial]) -> tuple[int, list[str]]:
    """(complete trials whose config the spec now gives otherwise, each distinct change as text)."""
    found = [c for t in trials if t.state == TrialState.COMPLETE and (c := changes(spec, t)) is not None]
    texts = list(dict.fromkeys(f.text() for _, _, fields in found for f in fields))
    return len(found), texts


def stored_config_note(spec: Spec, trials: list[FrozenTrial]) -> list[str]:
    """--stored-config: a line saying which trials it reports and with what stored instead."""
    n, texts = changed_fields(spec, trials)
    if not n:
        return ["--stored-config: every complete trial has the config the spec gives; nothing else is reported"]
    return [f"--stored-config: {plural(n, 'complete trial')} made with another config than the spec gives "
            f"{'is' if n == 1 else 'are'} reported as its settings ({'; '.join(texts)}); the setup shows what "
            "they stored"]


def count_states(trials: list[FrozenTrial]) -> dict[str, int]:
    """Trials by state as runner counts them (record.state_of: interrupted apart from failed)."""
    out: dict[str, int] = {}
    for t in trials:
        out[state_of(t)] = out.get(state_of(t), 0) + 1
    return out

"""`runner export`: a trial's kept model on its own, as the runner's weights file or TorchScript.

Every failure is one line (a RunnerError): a trial that does not exist, is not complete, or kept no
weights (a trial of format 0 or 1, before weights were kept, or [study].keep = "none"); a file whose SHA-256
differs from the one stored with its trial.
"""
from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path

import torch
from optuna.trial import FrozenTrial, TrialState

from runner import record
from runner.store import Store
from runner.weights import KeptError, load_kept

__all__ = ["find_trial", "export_model"]


def find_trial(store: Store, study: str, number: int | None) -> FrozenTrial:
    """Trial `number` of `study` (the best by the study's metric when None), complete and with weights kept."""
    s = store.load_study(study)
    trials = s.get_trials(deepcopy=False)
    if number is None:
        if not any(t.state == TrialState.COMPLETE for t in trials):
            raise KeptError(f"study {study!r} has no complete trial")
        trial = s.best_trial  # Optuna's own: the best value in the study's direction
    else:
        found = [t for t in trials if t.number == number]
        if not found:
            raise KeptError(f"study {study!r} has no trial {number}; its trials are 0 to {len(trials) - 1}")
        trial = found[0]
    if trial.state != TrialState.COMPLETE:
        raise KeptError(f"trial {trial.number} of {study!r} is {trial.state.name.lower()}, not complete: "
                        "it has no final weights")
    if record.of(trial).weights is None:
        raise KeptError(f"trial {trial.number} of {study!r}: its weights were not kept (it was stored before "
                        'runner kept weights, or its study has [study].keep = "none"); train it again in a new '
                        "study to have them")
    return trial


def export_model(store: Store, study: str, number: int | None, out: str | Path, fmt: str = "runner",
                 artifacts: str | None = None, module_dir: str | None = None) -> tuple[FrozenTrial, Path]:
    """Write trial `number`'s model (the best when None) to `out`: the runner file, or TorchScript.

    A trial of the user's own module finds it where `runner grid` did, unless `module_dir` is given."""
    trial = find_trial(store, study, number)
    out = Path(out)
    if out.is_dir():
        raise KeptError(f"--out {out}: is a folder; give a file name, e.g. {out / 'model.pt'}")
    with tempfile.TemporaryDirectory() as tmp:
        path, model = load_kept(store, study, trial, Path(tmp), artifacts, module_dir)  # checks it all
        staged = Path(tmp) / "out"
        if fmt == "torchscript":
            example = torch.zeros(1, *model.input_shape, dtype=torch.uint8)
            with torch.no_grad(), warnings.catch_warnings():  # torch 2.14 deprecates TorchScript; it still runs
                warnings.simplefilter("ignore", (DeprecationWarning, FutureWarning, UserWarning))
                torch.jit.trace(model, example).save(str(staged))
        else:
            shutil.copyfile(path, staged)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(staged, out)
        except OSError as e:
            raise KeptError(f"--out {out}: cannot write it: {e.strerror}") from None
    return trial, out

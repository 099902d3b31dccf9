"""The weights file a trial keeps, in one room: its format, its writer, where it is stored and fetched
from, its reader, and its errors.

The file is self-contained: the `state_dict` and what rebuilds the model without its spec (the model
config, the normalization, the input transform, the class count and names; for a user's module, its file's
SHA-256 and the folder `runner grid` found it in, where export and predict look first), loadable with
`torch.load(weights_only=True)`. It is stored through Optuna's artifact API
(`optuna.artifacts.upload_artifact`, a `FileSystemArtifactStore`), and its SHA-256 is part of its
trial's record, so a file that changed since is refused. `load_model(FILE)` gives an `ExportedModel`:
it takes the dataset's images as they are, uint8 (N, C, H, W) in 0..255 (or floats in [0, 1]),
prepares them exactly as training did (input transform, then (x / 255 - mean) / std) and returns logits.
`[study].keep = "none"` keeps no weights.
"""
from __future__ import annotations

import hashlib
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import FrozenTrial
from torch import nn

from runner import record
from runner.data import Data, Split, class_names
from runner.errors import RunnerError
from runner.models.build import ModelConfig, build_model
from runner.models.layers import InputTransform
from runner.spec import Point
from runner.store import Store, artifacts_dir
from runner.usercode import locate, source_sha256, structure_sha256

__all__ = ["WEIGHTS_FORMAT", "WEIGHTS_FILE", "KeptError", "ModelFileError", "model_file", "keep_weights",
           "fetch_weights", "read_model_file", "file_sha256", "ExportedModel", "load_model", "load_kept",
           "exported_accuracy"]

WEIGHTS_FORMAT = 1  # the layout of the file below; a later one will say what changed
WEIGHTS_FILE = "model.pt"  # the artifact's file name, as optuna-dashboard lists it


def model_file(model: nn.Module, point: Point, data: Data, study: str, number: int) -> dict[str, Any]:
    """The self-contained weights file of a trial, as a plain dict of tensors and JSON values."""
    m = point.model
    return {
        "format": WEIGHTS_FORMAT,
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "model": point.model_config().to_dict(),  # rebuilds it: runner.load_model
        "module": ({"target": m.target, "file": Path(m.source).name, "source_sha256": m.source_sha256,
                    **({"source_structure": m.source_structure} if m.source_structure else {}),
                    **({"search_dir": m.search_dir} if m.search_dir else {})}  # absolute; none in formats 2 and 3
                   if m.target else None),  # a user's module: found again where grid found it, checked by what it does
        "normalization": {"mean": data.mean, "std": data.std},  # x / 255 -> (x - mean) / std
        "input_shape": list(data.shape),  # (C, H, W) of the data's images, before the model's input transform
        "classes": data.classes, "class_names": list(class_names(data.dataset, data.classes)),
        "dataset": data.dataset, "study": study, "trial": number, "config_hash": point.config_hash,
        "label": point.label(), "seed": point.seed,
    }


def keep_weights(store: Store, artifacts: Path, study: str, trial_id: int, model: nn.Module, point: Point,
                 data: Data) -> None:
    """Store a trial's weights file in the FileSystemArtifactStore at `artifacts`, and its SHA-256 in its record.

    Called while the trial is still RUNNING: Optuna records an artifact in the trial's system attrs,
    and a finished trial cannot be changed.
    """
    artifacts.mkdir(parents=True, exist_ok=True)
    trial = store.optuna.get_trial(trial_id)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / WEIGHTS_FILE  # the name optuna-dashboard shows
        torch.save(model_file(model, point, data, study, trial.number), path)
        sha256, size = file_sha256(path), path.stat().st_size
        artifact_id = optuna.artifacts.upload_artifact(
            artifact_store=optuna.artifacts.FileSystemArtifactStore(str(artifacts)), file_path=str(path),
            study_or_trial=trial, storage=store.optuna,
            mimetype="application/octet-stream")
    record.write(store.optuna, trial_id, record.weights_record(sha256, size, artifact_id))


def fetch_weights(store: Store, trial: FrozenTrial, folder: Path, artifacts: str | None = None) -> Path:
    """The trial's weights file, downloaded into `folder` through Optuna's artifact API and checked."""
    weights = record.of(trial).weights
    where = artifacts_dir(store.url, artifacts)
    path = folder / WEIGHTS_FILE
    try:
        optuna.artifacts.download_artifact(artifact_store=optuna.artifacts.FileSystemArtifactStore(str(where)),
                                           artifact_id=weights.artifact_id, file_path=str(path))
    except (OSError, optuna.artifacts.exceptions.ArtifactNotFound):
        raise KeptError(f"trial {trial.number}: its weights ({weights.artifact_id}) are not in {where}; "
                        "give the folder they were kept in with --artifacts") from None
    return path


class KeptError(RunnerError):
    """A trial whose model cannot be had, or an output that cannot be written."""


class ModelFileError(RunnerError):
    """A weights file that cannot be read, has changed, or whose code is not the code that trained it."""


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_model_file(path: str | Path, sha256: str | None = None, name: str | None = None) -> dict[str, Any]:
    """A weights file's contents (tensors and plain values only: weights_only), checked against `sha256`.

    Args:
        name: what the messages call the file (a kept trial's: "trial 3 of 'k' (artifact ...)"); its path
            by default.
    """
    path = Path(path)
    name = name or str(path)
    if not path.is_file():
        raise ModelFileError(f"{name}: no such file")
    if sha256 is not None and file_sha256(path) != sha256:
        raise ModelFileError(f"{name}: its SHA-256 is {file_sha256(path)[:12]}..., not the {sha256[:12]}... stored "
                             "with the trial: the file changed since it was kept; refusing it")
    try:
        doc = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as e:
        raise ModelFileError(f"{name}: not a model file runner can read ({type(e).__name__})") from None
    if not isinstance(doc, dict) or doc.get("format") != WEIGHTS_FORMAT or "state_dict" not in doc:
        raise ModelFileError(f"{name}: not a runner model file (runner export writes them)")
    return doc


class ExportedModel(nn.Module):
    """A trained model with its input preparation: images in, logits out (in eval mode); a user's module whose
    forward ends in softmax gives its probabilities (runner.models.user.probabilities reads either)."""

    def __init__(self, net: nn.Module, mean: float, std: float, transform: InputTransform, doc: dict[str, Any]):
        super().__init__()
        self.net = net
        self.scale, self.shift = 1 / (255 * std), mean / std  # as training normalizes: one multiply-subtract
        self.pad, self.resize = transform.pad, transform.resize
        self.input_shape = tuple(doc["input_shape"])  # (C, H, W) of the dataset's images
        self.class_names = list(doc["class_names"])
        self.info = {k: doc[k] for k in ("study", "trial", "label", "dataset", "config_hash", "seed") if k in doc}
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, W) uint8, or float in [0, 1] -> (N, classes)
        if x.is_floating_point():
            x = (x * 255).round().clamp(0, 255).to(torch.uint8)
        x = InputTransform(self.pad, self.resize).apply(x)
        return self.net(x.float().mul_(self.scale).sub_(self.shift))


def load_model(path: str | Path, module_dir: str | Path | None = None, sha256: str | None = None,
               name: str | None = None, module_option: str = "module_dir=") -> ExportedModel:
    """The model a weights file holds, in eval mode, built without its spec.

    Args:
        module_dir: for a user's module (`target`), the folder searched first for its source; by default the
            folder `runner grid` found it in (the spec's, stored in the file), else the current folder. Its
            SHA-256 must equal the one it was trained with.
        sha256: the file's expected SHA-256 (as stored with its trial), if known.
        name: what the messages call the file (see read_model_file).
        module_option: how the caller gives `module_dir`, for the message when the module is not found
            (`runner predict` and `runner export` say --module-dir).
    """
    doc = read_model_file(path, sha256, name)
    name = name or str(path)
    module = doc.get("module")
    folder = "." if module_dir is None else str(module_dir)
    if module:
        folder, found = _module_source(module, module_dir, name, module_option)
        same = source_sha256(found) == module["source_sha256"] or (  # or only its comments or form changed
            module.get("source_structure") and structure_sha256(found) == module["source_structure"])
        if not same:
            raise ModelFileError(f"{name}: {found} is not the code these weights were trained with (sha256 "
                                 f"{source_sha256(found)[:12]} now, {module['source_sha256'][:12]} then); refusing it")
    cfg = ModelConfig.from_dict(doc["model"], folder)
    net = build_model(cfg)
    try:
        net.load_state_dict(doc["state_dict"])
    except RuntimeError as e:
        raise ModelFileError(f"{name}: its weights do not fit the model it describes: "
                             f"{str(e).splitlines()[0]}") from None
    return ExportedModel(net, doc["normalization"]["mean"], doc["normalization"]["std"], cfg.input, doc)


def _module_source(module: dict[str, Any], module_dir: str | Path | None, name: str,
                   module_option: str) -> tuple[str, Path]:
    """(the folder to import from, the source file) of a weights file's user module: in `module_dir` when one
    is given (a moved folder), else in the folder runner grid found it in, else in the current one; the
    Python path only after these folders ("" then: nothing added to sys.path)."""
    stored = module.get("search_dir", "")
    places = [str(module_dir)] if module_dir is not None else list(dict.fromkeys(p for p in (stored, ".") if p))
    for place in places:
        found = locate(module["target"], place)  # the folder first, then the Python path
        if found is not None and found.is_file() and found.resolve().is_relative_to(Path(place).resolve()):
            return place, found
    found = locate(module["target"], "")
    if found is not None and found.is_file():  # not a module this process imported from a file gone since
        return "", found
    where = (f"{stored} (where runner grid found it), nor in the current folder," if module_dir is None and stored
             else f"{places[0]}")
    raise ModelFileError(f"{name}: its model is {module['target']}, from {module['file']}, which is not in {where} "
                         f"nor on the Python path: give the folder that holds {module['file']} with {module_option}")


def load_kept(store: Store, study: str, trial: FrozenTrial, folder: Path, artifacts: str | None = None,
              module_dir: str | None = None) -> tuple[Path, ExportedModel]:
    """A kept trial's weights file, fetched into `folder`, and its model, every check made; the messages name
    the trial and its artifact (never the folder's temporary path) and --module-dir."""
    weights = record.of(trial).weights
    path = fetch_weights(store, trial, folder, artifacts)
    name = f"trial {trial.number} of {study!r} (artifact {weights.artifact_id})"
    return path, load_model(path, module_dir, weights.sha256, name, "--module-dir DIR")


def exported_accuracy(model: nn.Module, split: Split, batch: int = 2000) -> float:
    """Percent accuracy on `split` of a model that takes the uint8 images as stored (runner.load_model's)."""
    images = split.images.unsqueeze(1) if split.images.dim() == 3 else split.images  # (N, C, H, W) uint8
    correct = 0
    with torch.inference_mode():
        for i in range(0, len(images), batch):
            correct += int((model(images[i:i + batch]).argmax(1) == split.labels[i:i + batch]).sum())
    return 100.0 * correct / max(1, len(images))

"""A trained model on its own: the weights file a trial keeps, turned back into an nn.Module.

The file (written by runner.trials.outputs, copied by `runner export`) holds the `state_dict` and
what rebuilds the model without its spec: the model config, the normalization, the input
transform, the class count and names. `load_model(FILE)` gives an `ExportedModel`: it takes the
dataset's images as they are, uint8 (N, C, H, W) in 0..255 (or floats in [0, 1]), prepares them
exactly as training did (input transform, then (x / 255 - mean) / std) and returns logits.
"""
from __future__ import annotations

import hashlib
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from runner.errors import RunnerError
from runner.models.build import ModelConfig, build_model
from runner.models.layers import InputTransform
from runner.usercode import locate, source_sha256

__all__ = ["ModelFileError", "ExportedModel", "read_model_file", "load_model", "file_sha256"]


class ModelFileError(RunnerError):
    """A weights file that cannot be read, has changed, or whose code is not the code that trained it."""


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_model_file(path: str | Path, sha256: str | None = None) -> dict[str, Any]:
    """A weights file's contents (tensors and plain values only: weights_only), checked against `sha256`."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    if sha256 is not None and file_sha256(path) != sha256:
        raise ModelFileError(f"{path}: its SHA-256 is {file_sha256(path)[:12]}..., not the {sha256[:12]}... stored "
                             "with the trial: the file changed since it was kept; refusing it")
    try:
        doc = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as e:
        raise ModelFileError(f"{path}: not a model file runner can read ({type(e).__name__})") from None
    if not isinstance(doc, dict) or doc.get("format") != 1 or "state_dict" not in doc:
        raise ModelFileError(f"{path}: not a runner model file (runner export writes them)")
    return doc


class ExportedModel(nn.Module):
    """A trained model with its input preparation: images in, logits out (in eval mode)."""

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


def load_model(path: str | Path, module_dir: str | Path = ".", sha256: str | None = None) -> ExportedModel:
    """The model a weights file holds, in eval mode, built without its spec.

    Args:
        module_dir: for a user's module (`target`), the folder searched first for its source; the
            file's SHA-256 must equal the one it was trained with.
        sha256: the file's expected SHA-256 (as stored with its trial), if known.
    """
    doc = read_model_file(path, sha256)
    module = doc.get("module")
    if module:
        found = locate(module["target"], str(module_dir))
        if found is None:
            raise ModelFileError(f"{path}: its model is {module['target']} ({module['file']}), which is not in "
                                 f"{module_dir} nor on the Python path: give the folder that holds it")
        if source_sha256(found) != module["source_sha256"]:
            raise ModelFileError(f"{path}: {found} is not the code these weights were trained with (sha256 "
                                 f"{source_sha256(found)[:12]} now, {module['source_sha256'][:12]} then); refusing it")
    cfg = ModelConfig.from_dict(doc["model"], str(module_dir))
    net = build_model(cfg)
    try:
        net.load_state_dict(doc["state_dict"])
    except RuntimeError as e:
        raise ModelFileError(f"{path}: its weights do not fit the model it describes: "
                             f"{str(e).splitlines()[0]}") from None
    return ExportedModel(net, doc["normalization"]["mean"], doc["normalization"]["std"], cfg.input, doc)

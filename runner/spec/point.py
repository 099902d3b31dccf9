"""One trial's configuration as frozen dataclasses: its model, data and training, resolved into the config that is
stored and hashed (`Point.resolved`, `Point.config_hash`); which keys each stored format has: runner.formats."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from runner.data import DataSource
from runner.models.build import ModelConfig
from runner.models.layers import InputTransform, Layer
from runner.models.presets import MLP_HIDDEN, PRESETS, preset_layers
from runner.models.user import REGULARIZER_ARGS
from runner.spec.grammar import DATASETS, DISTILL_KEYS, EXECUTION_KEYS, LATER_REGULARIZERS, REGULARIZERS, TRAIN_KEYS
from runner.spec.teacher import Teacher
from runner.text import toml_value

__all__ = ["DataSpec", "TrainConfig", "ModelSpec", "Point", "dataset_shape"]


def dataset_shape(data: DataSpec) -> tuple[tuple[int, int, int], int] | None:
    """((C, H, W), classes) of the spec's data; None for user data not loaded yet (see Spec.bind)."""
    if data.bound is not None:
        return data.bound
    if data.target:
        return None
    shape, classes, _, _ = DATASETS[data.dataset]
    return shape, classes


@dataclass(frozen=True)
class DataSpec:
    dataset: str = "mnist"  # a name of the MNIST family; "user" when target is set
    root: str = ""  # "" = the copy on this machine; else a folder (see DATA_KEYS)
    train_limit: int = 0  # 0 = all; N = the first N images
    test_limit: int = 0  # 0 = all
    mean: float | str = 0.1307  # normalization, applied per batch; "auto": computed from the training images
    std: float | str = 0.3081
    val_fraction: float = 0.0  # held out of the training images, stratified; 0 = no validation split
    val_seed: int = 0
    target: str = ""  # "module:function" of the user's data
    args: tuple[tuple[str, Any], ...] = ()
    folder: str = ""  # the spec's folder, searched first for target's module
    source_sha256: str = ""  # of target's module: changed code, new data
    bound: tuple[tuple[int, int, int], int] | None = None  # ((C, H, W), classes) once the data is loaded

    def resolved(self) -> dict[str, Any]:
        """The data part of a point's config: the keys format 0 stored (tests/fixtures/v0), and those format 1
        added only where set (a validation split, user data), so that format 0's trials keep their hashes."""
        out: dict[str, Any] = {"dataset": self.dataset, "train_limit": self.train_limit,
                               "test_limit": self.test_limit, "mean": self.mean, "std": self.std}
        if self.val_fraction:  # format 1's: without a split, format 0's hash (fixture v0)
            out.update(val_fraction=self.val_fraction, val_seed=self.val_seed)
        if self.target:
            out.update(target=self.target, args=dict(self.args), source_sha256=self.source_sha256)
        return out

    def load_args(self) -> dict[str, Any]:
        """The keyword arguments of runner.data.load_data for this spec."""
        source = DataSource(self.dataset, self.root, self.target, dict(self.args), self.folder, self.source_sha256)
        return {"source": source, "train_limit": self.train_limit, "test_limit": self.test_limit,
                "val_fraction": self.val_fraction, "val_seed": self.val_seed, "mean": self.mean, "std": self.std}


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 15
    batch_size: int = 128
    optimizer: str = "sgd"  # sgd | adam | adamw
    lr: float = 0.01  # peak learning rate
    momentum: float = 0.9  # SGD momentum; beta1 for adam/adamw
    schedule: str = "constant"  # constant | cosine | onecycle, stepped per batch
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 0  # torch intra-op threads; 0 = all cores
    distill_weight: float = 0.0  # the teacher's share of the loss; 0 = no teacher
    distill_temperature: float = 4.0  # T of both softmaxes in the teacher's term
    teacher: Teacher | None = None  # [train].teacher, bound when the spec was read; not an axis

    def resolved(self) -> dict[str, Any]:
        """The training part of a point's config: distillation's keys and the teacher's weights only where it
        teaches (format 5's), so that a point without a teacher keeps format 4's hash."""
        out = {k: getattr(self, k) for k in TRAIN_KEYS if k not in EXECUTION_KEYS and k not in DISTILL_KEYS}
        if self.distill_weight and self.teacher is not None:
            out.update(distill_weight=self.distill_weight, distill_temperature=self.distill_temperature,
                       teacher=self.teacher.resolved())
        return out


@dataclass(frozen=True)
class ModelSpec:
    name: str
    arch: str  # lenet5 | mlp (presets) | layers (declared in the spec) | target (a user's module)
    hidden: tuple[int, ...] = MLP_HIDDEN  # mlp hidden widths
    defaults: tuple[tuple[str, Any], ...] = ()  # this model's regularizer defaults
    layers: tuple[Layer, ...] = ()  # the layer list (a preset's too); empty for a user's module
    act: str = "relu"  # default activation of conv and hidden fc layers
    input: InputTransform = InputTransform()
    target: str = ""  # "module:attribute" of a user's nn.Module
    args: tuple[tuple[str, Any], ...] = ()  # its keyword arguments
    search_dir: str = ""  # the spec's folder, searched first for target's module
    source: str = ""  # target's source file, as found when the spec was read
    source_sha256: str = ""  # its SHA-256: a changed file is a new configuration (unless only its form changed)
    source_structure: str = ""  # the SHA-256 of what it does (usercode.structure_sha256): not in the config hash
    takes: tuple[str, ...] | None = None  # the model regularizers its constructor takes; None: not known (all)
    compare: str = ""  # the preset the report compares it as ([models.X].compare); not in the config hash

    def own(self, regularizer: str) -> bool:
        """Whether a regularizer is the module's own (its constructor takes no such argument): a grid
        axis of it does not apply to this model, as a layer axis does not apply to another model."""
        return self.takes is not None and regularizer in REGULARIZER_ARGS and regularizer not in self.takes

    @property
    def is_preset_as_named(self) -> bool:
        """A preset with its layers, activation and input as named (stored as format 0 stored it, before layer
        lists: tests/fixtures/v0)."""
        return (self.arch in PRESETS and self.act == "relu" and not self.input.to_dict()
                and self.layers == preset_layers(self.arch, self.hidden, self.layers[-1].size))

    def resolved(self) -> dict[str, Any]:
        """The model part of a point's resolved config."""
        if self.target:
            out = {"name": self.name, "target": self.target, "args": dict(self.args), "source_sha256": self.source_sha256}
            if self.input.to_dict():  # format 2's: a module without one keeps format 1's hash (fixture v1)
                out["input"] = self.input.to_dict()
            return out
        out: dict[str, Any] = {"name": self.name, "arch": self.arch}
        if self.is_preset_as_named:  # format 0's form of a preset (fixture v0): its trials keep their hash
            if self.arch == "mlp":
                out["hidden"] = list(self.hidden)
            return out
        out["act"] = self.act
        if self.input.to_dict():
            out["input"] = self.input.to_dict()
        out["layers"] = [layer.to_dict() for layer in self.layers]
        return out


@dataclass(frozen=True)
class Point:
    """One trial to run: a model, every axis resolved, and a seed."""

    model: ModelSpec  # with the point's layer-field axes applied
    axes: tuple[tuple[str, Any], ...]  # every regularizer, every train key and layer field varied in the spec
    regularizers: tuple[tuple[str, Any], ...]  # all of REGULARIZERS, resolved
    train: TrainConfig
    data: DataSpec
    seed: int

    def reg(self, name: str) -> Any:
        """The resolved value of one regularizer."""
        return dict(self.regularizers)[name]

    @property
    def params(self) -> dict[str, Any]:
        """Optuna trial params: model, every axis, seed."""
        return {"model": self.model.name, **dict(self.axes), "seed": self.seed}

    @property
    def setting_key(self) -> str:
        """The point's setting, whatever its seed: its params but the seed as JSON with sorted keys (the
        report's configuration key)."""
        return json.dumps({"model": self.model.name, **dict(self.axes)}, sort_keys=True)

    def resolved(self) -> dict[str, Any]:
        """The whole config that determines the result, as plain JSON-able values."""
        train = self.train.resolved()
        regs = {k: v for k, v in self.regularizers  # added by format LATER_REGULARIZERS[k]; off, that format - 1's hash
                if not (k in LATER_REGULARIZERS and v == REGULARIZERS[k].default) and k != "ema_warmup"}
        if self.reg("ema") and self.reg("ema_warmup"):  # format 4's, where it acts: format 3's EMA trials had none
            regs["ema_warmup"] = True
        return {"model": self.model.resolved(), "regularizers": regs, "train": train,
                "data": self.data.resolved(), "seed": self.seed}

    @property
    def config_hash(self) -> str:
        """A stable identity of the point: same config and seed, same hash."""
        text = json.dumps(self.resolved(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def model_config(self) -> ModelConfig:
        """What the point trains: its model's layers (or module) with the point's regularizers."""
        m = self.model
        in_shape, classes = dataset_shape(self.data)
        return ModelConfig(layers=m.layers, act=m.act, input=m.input, in_shape=in_shape, classes=classes,
                           dropout=self.reg("dropout"), batch_norm=self.reg("batch_norm"), target=m.target,
                           args=m.args, search_dir=m.search_dir)

    def label(self) -> str:
        """A short human label: model and the axes that are not off, without the seed."""
        parts = [self.model.name]
        parts += [f"{k}={toml_value(v)}" for k, v in self.axes]
        return " ".join(parts)



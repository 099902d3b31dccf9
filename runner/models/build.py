"""What decides a model's modules (`ModelConfig`), and the one function that builds any model."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from runner.models.layers import KINDS, InputTransform, Layer, build_layers
from runner.models import user

__all__ = ["ModelConfig", "build_model"]


@dataclass(frozen=True)
class ModelConfig:
    """A declared (or preset) model's layers, or a user's module, with the regularizers it builds in."""

    layers: tuple[Layer, ...] = ()  # empty for a user's module
    act: str = "relu"  # default activation of conv and hidden fc layers
    input: InputTransform = InputTransform()  # applied to the images, before the first layer
    in_shape: tuple[int, int, int] = (1, 28, 28)  # (C, H, W) of the data, before `input`
    classes: int = 10
    dropout: float = 0.0  # after each hidden fc layer
    batch_norm: bool = False  # after each conv and hidden fc layer, before the activation
    target: str = ""  # "module:attribute" of a user's nn.Module (its constructor or factory)
    args: tuple[tuple[str, Any], ...] = ()  # keyword arguments of `target`
    search_dir: str = ""  # the spec's folder: searched first for `target`'s module

    def to_dict(self) -> dict[str, Any]:
        """What rebuilds the model without its spec, as plain values (stored with its weights)."""
        return {"layers": [layer.to_dict() for layer in self.layers], "act": self.act, "input": self.input.to_dict(),
                "in_shape": list(self.in_shape), "classes": self.classes, "dropout": self.dropout,
                "batch_norm": self.batch_norm, "target": self.target, "args": dict(self.args)}

    @classmethod
    def from_dict(cls, d: dict[str, Any], search_dir: str = "") -> ModelConfig:
        """The config `to_dict` wrote; a user's module is looked for in `search_dir` first."""
        layers = tuple(Layer.of(next(k for k in KINDS if k in t), **t) for t in d["layers"])
        return cls(layers=layers, act=d["act"], input=InputTransform(**d["input"]), in_shape=tuple(d["in_shape"]),
                   classes=d["classes"], dropout=d["dropout"], batch_norm=d["batch_norm"], target=d["target"],
                   args=tuple(d["args"].items()), search_dir=search_dir)

    @property
    def model_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of what the model receives."""
        return self.input.shape(self.in_shape)

    @property
    def has_conv(self) -> bool:
        """Whether the model convolves (and so gains from channels_last memory)."""
        return any(layer.kind == "conv" for layer in self.layers)


def build_model(cfg: ModelConfig) -> nn.Module:
    """The nn.Module of `cfg`: a LayerNet for declared layers, else the user's module."""
    if cfg.target:
        return user.build_user_model(cfg)
    return build_layers(cfg.layers, cfg.model_shape, cfg.act, cfg.batch_norm, cfg.dropout)

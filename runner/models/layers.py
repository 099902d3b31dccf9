"""The layer language: a model declared as a list of small layer tables, its shapes inferred.

    { conv = 6, k = 5, pad = 2, name = "c1" }   out channels, square kernel; stride, pad, act, bn
    { pool = "max", k = 2 }                     max | avg; stride = k unless given
    { fc = 84 }                                 a flatten is implied before the first fc

Model-level defaults (`act`, and the regularizers `batch_norm` and `dropout`) apply to every conv
and hidden fc layer; a layer may override them (`act`, `bn`, `dropout`). Batch norm sits after
the layer and before its activation; dropout after a hidden fc layer's activation. The last
layer gives the logits: an fc layer with as many outputs as the data has classes, no activation.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from runner.keys import Key
from runner.text import format_shape

__all__ = ["ACTIVATIONS", "POOLS", "KINDS", "LAYER_KEYS", "INPUT_KEYS", "AXIS_FIELDS", "Layer", "InputTransform",
           "LayerError", "infer_shapes", "LayerNet", "build_layers", "default_name"]

ACTIVATIONS = {
    "relu": lambda: nn.ReLU(inplace=True),
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
}
POOLS = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}
KINDS = ("conv", "pool", "fc")

_NAME = Key(str, None, "the layer's name: grid axes and tables refer to it (default: kind and position, e.g. conv1)",
            nonempty=True)
_ACT = Key(str, None, "this layer's activation, instead of the model's act", choices=tuple(ACTIVATIONS))
_BN = Key(bool, None, "batch norm after this layer (true) or not (false), whatever the model's batch_norm")

# Each layer kind's keys; the kind's own key holds its size (channels, width) or function (pool).
LAYER_KEYS: dict[str, dict[str, Key]] = {
    "conv": {
        "conv": Key(int, None, "output channels", ge=1),
        "k": Key(int, None, "kernel size (square)", ge=1),
        "stride": Key(int, 1, "stride", ge=1),
        "pad": Key(int, 0, "zero padding on each side", ge=0),
        "act": _ACT, "bn": _BN, "name": _NAME,
    },
    "pool": {
        "pool": Key(str, None, "pooling function", choices=tuple(POOLS)),
        "k": Key(int, 2, "window size (square)", ge=1),
        "stride": Key(int, None, "stride (default: k)", ge=1),
        "name": _NAME,
    },
    "fc": {
        "fc": Key(int, None, "output features", ge=1),
        "act": _ACT, "bn": _BN,
        "dropout": Key(float, None, "dropout after this hidden layer, instead of the model's dropout", ge=0, lt=1),
        "name": _NAME,
    },
}
REQUIRED = {"conv": ("k",), "pool": (), "fc": ()}
# Fields a grid axis or a search may vary ("MODEL.LAYER.FIELD"); a name is an identity, not a value.
AXIS_FIELDS = {kind: tuple(k for k in keys if k != "name") for kind, keys in LAYER_KEYS.items()}

INPUT_KEYS: dict[str, Key] = {
    "pad": Key(int, 0, "pad each side with background (pixel 0), as torchvision's Pad does: 28x28 -> 32x32 "
                       "with pad = 2", ge=1),
    "resize": Key(int, 0, "resize to N x N (bilinear, antialiased), as torchvision's Resize does", ge=1),
}


class LayerError(ValueError):
    """A layer that does not fit: `index` is the 0-based position in the list, -1 for the model."""

    def __init__(self, index: int, message: str):
        super().__init__(message)
        self.index = index


@dataclass(frozen=True)
class Layer:
    """One declared layer, as its table gives it; fields left out keep their defaults."""

    kind: str  # conv | pool | fc
    values: tuple[tuple[str, Any], ...]  # the table's keys, in the kind's key order, without defaults

    @classmethod
    def of(cls, kind: str, **values: Any) -> Layer:
        """A layer from keyword values: Layer.of("conv", conv=6, k=5, name="c1")."""
        keys = LAYER_KEYS[kind]
        given = {k: v for k, v in values.items() if v is not None}
        return cls(kind, tuple((k, given[k]) for k in keys if k in given and (k == kind or given[k] != keys[k].default)))

    def get(self, key: str) -> Any:
        """A field's value, or its default."""
        return dict(self.values).get(key, LAYER_KEYS[self.kind][key].default)

    @property
    def name(self) -> str:
        return self.get("name")

    @property
    def size(self) -> Any:
        """Output channels (conv), output features (fc) or the function (pool)."""
        return self.get(self.kind)

    def with_field(self, key: str, value: Any) -> Layer:
        """The layer with one field set."""
        return Layer.of(self.kind, **{**dict(self.values), key: value})

    def to_dict(self) -> dict[str, Any]:
        """The layer as its TOML table (defaults left out)."""
        return dict(self.values)


@dataclass(frozen=True)
class InputTransform:
    """What is done to each image before the first layer: pad with background, or resize."""

    pad: int = 0
    resize: int = 0

    def shape(self, shape: tuple[int, ...]) -> tuple[int, int, int]:
        """(C, H, W) after the transform."""
        c, h, w = shape
        if self.resize:
            return c, self.resize, self.resize
        return c, h + 2 * self.pad, w + 2 * self.pad

    def apply(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) uint8 -> transformed uint8, all at once."""
        if self.pad:
            images = nn.functional.pad(images, [self.pad] * 4, value=0)
        if self.resize:
            from torchvision.transforms.v2.functional import resize

            images = resize(images, [self.resize, self.resize], antialias=True)
        return images

    def to_dict(self) -> dict[str, int]:
        """The transform as its TOML table ({} when there is none)."""
        return {k: v for k, v in (("pad", self.pad), ("resize", self.resize)) if v}

    def describe(self) -> str:
        """'pad 2', 'resize 32' or ''."""
        return " ".join(f"{k} {v}" for k, v in self.to_dict().items())


def default_name(kind: str, index: int) -> str:
    """The name of an unnamed layer: its kind and 1-based position (conv1, pool2, fc5)."""
    return f"{kind}{index + 1}"


def infer_shapes(layers: tuple[Layer, ...], in_shape: tuple[int, int, int], classes: int) -> list[tuple[int, ...]]:
    """The output shape of every layer, or a LayerError naming the layer that does not fit."""
    if not layers:
        raise LayerError(-1, "has no layers")
    shape: tuple[int, ...] = in_shape
    out = []
    for i, layer in enumerate(layers):
        shape = _next_shape(i, layer, shape)
        out.append(shape)
    last = layers[-1]
    if last.kind != "fc":
        raise LayerError(len(layers) - 1, f"the last layer gives the logits: it must be {{ fc = {classes} }}, "
                                          f"not a {last.kind}")
    if last.size != classes:
        raise LayerError(len(layers) - 1, f"the last layer gives the logits: fc = {last.size}, but the data has "
                                          f"{classes} classes")
    for key in ("act", "bn", "dropout"):
        if key in dict(last.values):
            raise LayerError(len(layers) - 1, f"the last layer gives the logits: it takes no {key}")
    return out


def _next_shape(i: int, layer: Layer, shape: tuple[int, ...]) -> tuple[int, ...]:
    if layer.kind == "fc":
        n = 1
        for d in shape:
            n *= d
        return (layer.size,)
    if len(shape) != 3:
        raise LayerError(i, f"a {layer.kind} after an fc layer: its input {format_shape(shape)} is already flat")
    c, h, w = shape
    k = layer.get("k")
    if layer.kind == "conv":
        pad, stride = layer.get("pad"), layer.get("stride")
        if k > h + 2 * pad or k > w + 2 * pad:
            padded = f" (padded to {h + 2 * pad}x{w + 2 * pad})" if pad else ""
            raise LayerError(i, f"a {k}x{k} kernel does not fit its input {format_shape(shape)}{padded}")
        return layer.size, (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    if h == 1 and w == 1:
        raise LayerError(i, f"a pool on a 1x1 map: its input is {format_shape(shape)}")
    if k > h or k > w:
        raise LayerError(i, f"a {k}x{k} pool does not fit its input {format_shape(shape)}")
    stride = layer.get("stride") or k
    return c, (h - k) // stride + 1, (w - k) // stride + 1


class LayerNet(nn.Module):
    """A declared model: `features` (convs and pools) then `classifier` (flatten and fc layers)."""

    def __init__(self, features: list[tuple[str, nn.Module]], classifier: list[tuple[str, nn.Module]]):
        super().__init__()
        self.features = nn.Sequential(OrderedDict(features))
        self.classifier = nn.Sequential(OrderedDict(classifier))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, C, H, W) -> (B, classes) logits
        return self.classifier(self.features(x))


@dataclass(frozen=True)
class _Defaults:
    act: str
    batch_norm: bool
    dropout: float


def build_layers(layers: tuple[Layer, ...], in_shape: tuple[int, int, int], act: str = "relu",
                 batch_norm: bool = False, dropout: float = 0.0) -> LayerNet:
    """The modules of a declared model; shapes must have been checked with infer_shapes.

    Modules are created in layer order, so the same seed gives the same initial weights as any
    hand-written model of the same layers.
    """
    d = _Defaults(act, batch_norm, dropout)
    features: list[tuple[str, nn.Module]] = []
    classifier: list[tuple[str, nn.Module]] = []
    channels, flat = in_shape[0], None
    shape: tuple[int, ...] = in_shape
    for i, layer in enumerate(layers):
        name = layer.name or default_name(layer.kind, i)
        last = i == len(layers) - 1
        if layer.kind == "conv":
            features.append((name, nn.Conv2d(channels, layer.size, layer.get("k"), layer.get("stride"),
                                             layer.get("pad"))))
            features += _norm_act(name, layer, d, nn.BatchNorm2d, layer.size)
            channels = layer.size
        elif layer.kind == "pool":
            k = layer.get("k")
            features.append((name, POOLS[layer.size](k, layer.get("stride") or k)))
        else:
            if flat is None:
                classifier.append(("flatten", nn.Flatten()))
                flat = 1
                for dim in shape:
                    flat *= dim
            classifier.append((name, nn.Linear(flat, layer.size)))
            if not last:
                classifier += _norm_act(name, layer, d, nn.BatchNorm1d, layer.size)
                p = d.dropout if layer.get("dropout") is None else layer.get("dropout")
                if p > 0:
                    classifier.append((f"{name}_drop", nn.Dropout(p)))
            flat = layer.size
        shape = _next_shape(i, layer, shape)
    return LayerNet(features, classifier)


def _norm_act(name: str, layer: Layer, d: _Defaults, norm: type, n: int) -> list[tuple[str, nn.Module]]:
    out: list[tuple[str, nn.Module]] = []
    if d.batch_norm if layer.get("bn") is None else layer.get("bn"):
        out.append((f"{name}_bn", norm(n)))
    out.append((f"{name}_act", ACTIVATIONS[layer.get("act") or d.act]()))
    return out

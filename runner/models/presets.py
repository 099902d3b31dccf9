"""The named architectures (`arch = "lenet5"`, `arch = "mlp"`), written as layer lists.

LeNet-5 (LeCun et al. 1998, with ReLU and max pooling) for 28x28 input: 61,706 parameters.
  c1  conv 1 -> 6, 5x5, pad 2   (5*5*1+1)*6   =    156   # (6, 28, 28); pad 2 sees the original 32x32 field
  s2  max pool 2                                        # (6, 14, 14)
  c3  conv 6 -> 16, 5x5         (5*5*6+1)*16  =  2,416   # (16, 10, 10)
  s4  max pool 2                                        # (16, 5, 5)
  f5  fc 400 -> 120             (400+1)*120   = 48,120   # the original's C5: a 5x5 conv on a 5x5 map
  f6  fc 120 -> 84              (120+1)*84    = 10,164
  output  fc 84 -> 10           (84+1)*10     =    850
The MLP 784 -> 74 -> 40 -> 10 has (784+1)*74 + (74+1)*40 + (40+1)*10 = 61,500 (0.33% fewer).
"""
from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from typing import Any, Sequence

from runner.models.build import ModelConfig
from runner.models.counts import SHARED, UNUSED, LayerRow, param_table
from runner.models.layers import Layer

__all__ = ["PRESETS", "preset_layers", "preset_config", "MLP_HIDDEN", "matching_preset"]

MLP_HIDDEN = (74, 40)  # the shipped MLP's hidden widths: 61,500 parameters


def lenet5(classes: int = 10, hidden: tuple[int, ...] = ()) -> tuple[Layer, ...]:
    """LeNet-5 for 28x28 input, ReLU and max pooling."""
    return (
        Layer.of("conv", conv=6, k=5, pad=2, name="c1"),
        Layer.of("pool", pool="max", k=2, name="s2"),
        Layer.of("conv", conv=16, k=5, name="c3"),
        Layer.of("pool", pool="max", k=2, name="s4"),
        Layer.of("fc", fc=120, name="f5"),
        Layer.of("fc", fc=84, name="f6"),
        Layer.of("fc", fc=classes, name="output"),
    )


def mlp(classes: int = 10, hidden: tuple[int, ...] = MLP_HIDDEN) -> tuple[Layer, ...]:
    """Flattened input -> hidden... -> classes, fully connected."""
    return (*(Layer.of("fc", fc=h, name=f"fc{i}") for i, h in enumerate(hidden, 1)),
            Layer.of("fc", fc=classes, name="output"))


PRESETS = {"lenet5": lenet5, "mlp": mlp}


def preset_layers(arch: str, hidden: tuple[int, ...] = MLP_HIDDEN, classes: int = 10) -> tuple[Layer, ...]:
    """The layer list of a named architecture."""
    return PRESETS[arch](classes, hidden)


def preset_config(arch: str, hidden: tuple[int, ...] = MLP_HIDDEN, classes: int = 10, **regularizers: Any) -> ModelConfig:
    """The ModelConfig of a named architecture for MNIST-shaped data: preset_config("lenet5", batch_norm=True)."""
    return ModelConfig(preset_layers(arch, hidden, classes), classes=classes, **regularizers)


def _weighted(rows: Sequence[LayerRow]) -> list[LayerRow]:
    """The rows that learn weights (conv, fc, ...), in order: not batch norm, nothing unused, no shared call."""
    return [r for r in rows if r.count and r.kind not in ("batch norm", UNUSED) and r.formula != SHARED]


@lru_cache(maxsize=None)
def _lenet5_counts(in_shape: tuple[int, int, int], classes: int) -> tuple[int, ...]:
    rows = param_table("lenet5", "lenet5", replace(preset_config("lenet5", classes=classes), in_shape=in_shape)).rows
    return tuple(r.count for r in _weighted(rows))  # (156, 2416, 48120, 10164, 850) on MNIST


def matching_preset(rows: Sequence[LayerRow], in_shape: tuple[int, int, int] = (1, 28, 28),
                    classes: int = 10) -> str | None:
    """The preset a layer table is, whatever its names, activations, pooling or padding say: "lenet5" when its
    weighted layers count LeNet-5's parameters in order (a C5 written as a 5x5 conv counts what f5 does; on
    28x28 images c1 pads by 2, in the conv or as input = { pad = 2 }), "mlp" when two or more layers learn
    weights and every one is fully connected (of any widths), else None. Batch norm is left out of both."""
    weighted = _weighted(rows)
    if tuple(r.count for r in weighted) == _lenet5_counts(tuple(in_shape), classes):
        return "lenet5"
    if len(weighted) >= 2 and all(r.kind == "fc" for r in weighted):
        return "mlp"
    return None

"""What training a declared model will take, known before any weight is allocated.

The model is built on PyTorch's meta device, where tensors have shapes and no storage, and one
forward pass there gives every layer's output shape. The estimate of training memory at a batch
size is arithmetic on those shapes (float32):

    weights + gradients + optimizer state        4 bytes x parameters x (2 + 1 for SGD momentum, 2 for Adam,
                                                 + 1 for the weight average of ema)
    activations kept for the backward pass       4 bytes x batch x each layer's output (+ max-pool indices,
                                                 dropout masks; an in-place ReLU keeps none of its own)
    the backward pass's working set              twice the largest activation (its gradient and the next)
    the batch itself                             4 bytes x batch x input

It is checked against measurements (peak RSS of a first epoch, tests/test_limits.py) to within a
factor of 2.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from runner.machine import mib
from runner.models.build import ModelConfig
from runner.models.layers import build_layers, default_name
from runner.text import plural

__all__ = ["Footprint", "footprint", "data_bytes", "RUNTIME_BYTES"]

FLOAT = 4  # bytes of a float32
# What the training machinery itself adds to a process in its first epoch, whatever the model: the
# kernels paged in, the autograd engine, the allocator's caches, the evaluation. Measured with the
# RSS as tests/test_limits.py does: 162 MB for LeNet-5 at batch 128 once its arithmetic is taken away.
RUNTIME_BYTES = 160 * 2**20
OPTIMIZER_STATES = {"sgd": 1, "adam": 2, "adamw": 2}  # per parameter: momentum; exp_avg and exp_avg_sq


@dataclass(frozen=True)
class Footprint:
    """A declared model's training memory at one batch size."""

    params: int
    weights_bytes: int  # weights, gradients and optimizer state
    activation_bytes: int  # kept for backward, the backward's working set, the batch
    dominant: str  # the layer that takes the most: "f5 (fc, 78,400,100,000 parameters)"

    @property
    def total(self) -> int:
        """What training the model adds to a process: the arithmetic above and the runtime's own."""
        return self.weights_bytes + self.activation_bytes + RUNTIME_BYTES


def footprint(cfg: ModelConfig, batch_size: int, optimizer: str = "sgd", momentum: float = 0.9,
              averaged: bool = False) -> Footprint:
    """The training memory of a declared (or preset) model at `batch_size`, built on the meta device.

    Args:
        averaged: an exponential moving average of the weights is kept beside them (ema > 0).
    """
    with torch.device("meta"):
        model = build_layers(cfg.layers, cfg.model_shape, cfg.act, cfg.batch_norm, cfg.dropout)
    states = OPTIMIZER_STATES.get(optimizer, 2) if optimizer != "sgd" or momentum else 0
    states += averaged  # the average's copy of each weight
    params = sum(p.numel() for p in model.parameters())
    per_layer: dict[str, list[int]] = {}  # layer name -> [bytes of its weights and state, of its activations]
    activations: list[int] = []

    def hook(name: str):
        def record(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
            n = out.numel()  # batch x features
            kept = 0 if getattr(module, "inplace", False) else FLOAT * n
            if isinstance(module, nn.MaxPool2d):
                kept += 8 * n  # the int64 indices of the maxima
            if isinstance(module, nn.Dropout):
                kept += n  # its mask
            activations.append(FLOAT * n)
            own = sum(p.numel() for p in module.parameters(recurse=False))
            layer = name.split(".")[-1].removesuffix("_bn").removesuffix("_act").removesuffix("_drop")
            entry = per_layer.setdefault(layer, [0, 0])
            entry[0] += FLOAT * own * (2 + states)
            entry[1] += kept
        return record

    model.eval()  # the same shapes; batch norm in training mode refuses a batch of one
    hooks = [m.register_forward_hook(hook(name)) for name, m in model.named_modules()
             if name and not list(m.children())]
    try:
        with torch.no_grad():
            model(torch.empty(batch_size, *cfg.model_shape, device="meta"))
    finally:
        for h in hooks:
            h.remove()
    batch = FLOAT * batch_size * math.prod(cfg.model_shape)
    act = sum(b for _, b in per_layer.values()) + 2 * max(activations, default=0) + batch
    name, (w, a) = max(per_layer.items(), key=lambda kv: sum(kv[1]))
    kinds = {layer.name or default_name(layer.kind, i): layer.kind for i, layer in enumerate(cfg.layers)}
    kind = kinds.get(name, name)
    count = sum(p.numel() for n, p in model.named_parameters() if n.split(".")[-2] == name)
    what = f"{plural(count, 'parameter')}" if w >= a else f"{mib(a)} of activations at batch {batch_size}"
    return Footprint(params, FLOAT * params * (2 + states), act, f"{name} ({kind}, {what})")


def data_bytes(images: int, shape: tuple[int, int, int]) -> int:
    """The bytes of `images` uint8 images of `shape` (C, H, W), as a worker keeps them."""
    return images * math.prod(shape) + 8 * images  # the pixels and an int64 label each

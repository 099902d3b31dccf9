"""LeNet-5 and the MLP, and their parameter counts layer by layer.

LeNet-5 (LeCun et al. 1998, with ReLU and max pooling): 61,706 parameters.
  conv1  1 -> 6,  5x5, pad 2   (5*5*1+1)*6   =    156   # (B, 6, 28, 28) -> pool (B, 6, 14, 14)
  conv2  6 -> 16, 5x5          (5*5*6+1)*16  =  2,416   # (B, 16, 10, 10) -> pool (B, 16, 5, 5)
  fc1    400 -> 120            (400+1)*120   = 48,120
  fc2    120 -> 84             (120+1)*84    = 10,164
  fc3    84 -> 10              (84+1)*10     =    850
The MLP 784 -> 74 -> 40 -> 10 has (784+1)*74 + (74+1)*40 + (40+1)*10 = 61,500 (0.33% fewer).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["ModelConfig", "LeNet5", "MLP", "build_model", "LayerCount", "count_layers"]


@dataclass(frozen=True)
class ModelConfig:
    arch: str  # lenet5 | mlp
    hidden: tuple[int, ...] = (74, 40)  # mlp hidden widths
    dropout: float = 0.0  # p on each hidden fully connected layer's output
    batch_norm: bool = False  # after each conv and hidden linear layer, before the ReLU


def _fc_block(n_in: int, n_out: int, cfg: ModelConfig) -> list[nn.Module]:
    """A hidden fully connected layer: linear [-> batch norm] -> ReLU [-> dropout]."""
    layers: list[nn.Module] = [nn.Linear(n_in, n_out)]
    if cfg.batch_norm:
        layers.append(nn.BatchNorm1d(n_out))
    layers.append(nn.ReLU(inplace=True))
    if cfg.dropout > 0:
        layers.append(nn.Dropout(cfg.dropout))
    return layers


class LeNet5(nn.Module):
    """LeNet-5 for 28x28 input: conv1 pads by 2 to see the 32x32 field of the original."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        bn = cfg.batch_norm
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), *([nn.BatchNorm2d(6)] if bn else []), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # (B, 6, 14, 14)
            nn.Conv2d(6, 16, 5), *([nn.BatchNorm2d(16)] if bn else []), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # (B, 16, 5, 5)
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),  # (B, 400)
            *_fc_block(400, 120, cfg),
            *_fc_block(120, 84, cfg),
            nn.Linear(84, 10),  # (B, 10) logits
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 1, 28, 28)
        return self.classifier(self.features(x))


class MLP(nn.Module):
    """784 -> hidden... -> 10 with ReLU."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        widths = [28 * 28, *cfg.hidden]
        layers: list[nn.Module] = [nn.Flatten()]  # (B, 784)
        for n_in, n_out in zip(widths, widths[1:]):
            layers += _fc_block(n_in, n_out, cfg)
        layers.append(nn.Linear(widths[-1], 10))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 1, 28, 28)
        return self.net(x)


ARCHITECTURES = {"lenet5": LeNet5, "mlp": MLP}


def build_model(cfg: ModelConfig) -> nn.Module:
    """The model for `cfg.arch`."""
    return ARCHITECTURES[cfg.arch](cfg)


@dataclass(frozen=True)
class LayerCount:
    name: str  # e.g. features.0
    kind: str  # Conv2d, Linear, BatchNorm2d ...
    shape: str  # e.g. 1 -> 6, 5x5
    formula: str  # e.g. (5*5*1+1)*6
    count: int


def _describe(m: nn.Module) -> tuple[str, str]:
    """(shape, formula) of one layer's own parameters."""
    if isinstance(m, nn.Conv2d):
        kh, kw = m.kernel_size
        bias = "+1" if m.bias is not None else ""
        return (f"{m.in_channels} -> {m.out_channels}, {kh}x{kw}",
                f"({kh}*{kw}*{m.in_channels}{bias})*{m.out_channels}")
    if isinstance(m, nn.Linear):
        bias = "+1" if m.bias is not None else ""
        return f"{m.in_features} -> {m.out_features}", f"({m.in_features}{bias})*{m.out_features}"
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return f"{m.num_features} channels", f"2*{m.num_features} (scale, shift)"
    n = sum(p.numel() for p in m.parameters(recurse=False))
    return "", str(n)


def count_layers(model: nn.Module) -> list[LayerCount]:
    """Every layer that owns parameters, with the formula of its count."""
    rows = []
    for name, m in model.named_modules():
        count = sum(p.numel() for p in m.parameters(recurse=False))
        if count:
            shape, formula = _describe(m)
            rows.append(LayerCount(name, type(m).__name__, shape, formula, count))
    return rows

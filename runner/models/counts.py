"""Layer tables: each layer's output shape, the formula of its parameter count, and the count.

The shapes come from a forward pass with hooks, so a user's module is described the same way as a
declared one; the table is stored with every trial, so reading results never builds a model. A
spec's tables (one per model and per variant with another count) are runner.spec.tables'.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from runner.models.build import ModelConfig, build_model
from runner.text import format_shape

__all__ = ["LayerRow", "ParamTable", "COLUMNS", "layer_rows", "param_table"]

COLUMNS = ["layer", "type", "output shape", "formula", "parameters"]
_POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
_ACT_NAMES = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.GELU: "gelu"}


@dataclass(frozen=True)
class LayerRow:
    name: str  # c1, f5_bn; a user module's dotted submodule name
    kind: str  # e.g. "conv 5x5, pad 2, relu"
    shape: tuple[int, ...]  # output shape of one image: (C, H, W) or (N,)
    formula: str  # e.g. (5*5*1+1)*6; "" for a layer without parameters
    count: int

    def cells(self) -> list[str]:
        """The row as table cells."""
        return [self.name, self.kind, format_shape(self.shape), self.formula or "–", f"{self.count:,}"]

    def to_json(self) -> list[Any]:
        """A plain list, as stored with each trial."""
        return [self.name, self.kind, list(self.shape), self.formula, self.count]

    @classmethod
    def from_json(cls, row: list[Any]) -> LayerRow:
        """A row as stored with a trial."""
        return cls(str(row[0]), str(row[1]), tuple(int(x) for x in row[2]), str(row[3]), int(row[4]))


@dataclass(frozen=True)
class ParamTable:
    """One model's (or variant's) layer table."""

    title: str  # e.g. "lenet5 (lenet5, batch_norm)"
    model: str  # the spec's model name
    rows: tuple[LayerRow, ...]
    total: int

    def cells(self) -> list[list[str]]:
        """Every row as table cells."""
        return [r.cells() for r in self.rows]


def _describe(m: nn.Module) -> tuple[str, str]:
    """(type, formula) of one module's own parameters."""
    if isinstance(m, nn.Conv2d):
        kh, kw = m.kernel_size
        bias = "+1" if m.bias is not None else ""
        extra = "".join(f", {k} {v[0]}" for k, v in (("stride", m.stride), ("pad", m.padding))
                        if isinstance(v, tuple) and v[0] != (1 if k == "stride" else 0))
        groups = f"/{m.groups}" if m.groups > 1 else ""
        return f"conv {kh}x{kw}{extra}", f"({kh}*{kw}*{m.in_channels}{groups}{bias})*{m.out_channels}"
    if isinstance(m, nn.Linear):
        bias = "+1" if m.bias is not None else ""
        return "fc", f"({m.in_features}{bias})*{m.out_features}"
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return "batch norm", f"2*{m.num_features}"
    if isinstance(m, _POOLS):
        kind = "max" if "Max" in type(m).__name__ else "avg"
        if not hasattr(m, "kernel_size"):  # adaptive: a fixed output size
            return f"adaptive {kind} pool to {m.output_size}", ""
        k = m.kernel_size if isinstance(m.kernel_size, int) else m.kernel_size[0]
        return f"{kind} pool {k}", ""
    n = sum(p.numel() for p in m.parameters(recurse=False))
    return type(m).__name__, str(n) if n else ""


def layer_rows(model: nn.Module, shape: tuple[int, ...], prefix_input: str = "") -> list[LayerRow]:
    """Every module with parameters of its own, and every pooling layer, with its output shape.

    Args:
        shape: (C, H, W) of what the model receives; a forward pass on two zero images finds the shapes.
        prefix_input: a description of the input transform, shown as a first row ("pad 2").
    """
    outputs: dict[str, tuple[int, ...]] = {}

    def record(name: str) -> Any:
        def hook(module: nn.Module, args: Any, out: Any) -> None:  # returns None: the output is kept
            if isinstance(out, torch.Tensor):
                outputs.setdefault(name, tuple(out.shape[1:]))
        return hook

    hooks = []
    for name, m in model.named_modules():
        if name and (any(True for _ in m.parameters(recurse=False)) or isinstance(m, _POOLS)):
            hooks.append(m.register_forward_hook(record(name)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(2, *shape))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    acts = {name: _ACT_NAMES.get(type(m)) for name, m in model.named_modules()}
    rows = [LayerRow("input", prefix_input, tuple(shape), "", 0)] if prefix_input else []
    for name, m in model.named_modules():
        if name not in outputs:
            continue
        kind, formula = _describe(m)
        base = name[:-3] if name.endswith("_bn") else name
        if name.endswith("_bn") or f"{name}_bn" not in outputs:  # the activation follows batch norm
            act = acts.get(f"{base}_act")
            kind += f", {act}" if act else ""
        count = sum(p.numel() for p in m.parameters(recurse=False))
        short = name.split(".", 1)[1] if name.startswith(("features.", "classifier.")) else name
        rows.append(LayerRow(short, kind, outputs[name], formula, count))
    return rows


def param_table(title: str, model_name: str, cfg: ModelConfig, model: nn.Module | None = None) -> ParamTable:
    """The layer table of one model configuration (built here unless given)."""
    model = build_model(cfg) if model is None else model
    rows = layer_rows(model, cfg.model_shape, cfg.input.describe())
    total = sum(p.numel() for p in model.parameters())
    counted = sum(r.count for r in rows)
    if counted != total:  # parameters outside any submodule's own: say so rather than hide them
        rows.append(LayerRow("(other)", "parameters of the model itself", (), str(total - counted), total - counted))
    return ParamTable(title, model_name, tuple(rows), total)

"""Layer tables: each layer's output shape, the formula of its parameter count, and the count.

The shapes come from a forward pass with hooks, so a user's module is described the same way as a
declared one; the table is stored with every trial, so reading results never builds a model. A
spec's tables (one per model and per variant with another count) are runner.spec.tables'.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

from runner.models.build import ModelConfig, build_model
from runner.models.user import LOG_PROBABILITIES, LOGITS, PROBABILITIES
from runner.text import format_shape, plural

__all__ = ["LayerRow", "ParamTable", "COLUMNS", "UNUSED", "SHARED", "layer_rows", "param_table", "table_output_kind"]

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
        """Every row that ran, as table cells (what never ran is `unused_line`)."""
        return [r.cells() for r in self.rows if r.kind != UNUSED]

    def unused_line(self) -> str:
        """"defined but not used in forward: bn1..bn4, 452 parameters", or "" when everything ran."""
        rows = [r for r in self.rows if r.kind == UNUSED]
        n = sum(r.count for r in rows)
        return f"{UNUSED}: {', '.join(r.name for r in rows)}, {plural(n, 'parameter')}" if rows else ""


_ACTIVATIONS = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.LeakyReLU, nn.ELU, nn.SiLU, nn.SELU, nn.Softplus,
                nn.Hardtanh, nn.PReLU)
_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
UNUSED = "defined but not used in forward"  # the kind of the row that gathers what never ran
SHARED = "shared"  # the formula of a shared module's later calls: its parameters are counted once


_OUTPUT_KINDS = {"softmax": PROBABILITIES, "log softmax": LOG_PROBABILITIES}  # the last row's kind -> outputs


def table_output_kind(rows: Sequence[LayerRow]) -> tuple[str, LayerRow | None]:
    """What a model returns, as its stored layer table shows it: (PROBABILITIES, the row) when the last row that
    ran is a softmax, (LOG_PROBABILITIES, the row) a log softmax, else (LOGITS, None). The check a report makes
    without running the module; runner.models.user.output_kind makes it on the outputs themselves."""
    ran = [r for r in rows if r.kind != UNUSED]
    kind = _OUTPUT_KINDS.get(ran[-1].kind) if ran else None
    return (kind, ran[-1]) if kind else (LOGITS, None)


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
        return "batch norm", f"2*{m.num_features}" if m.affine else ""
    if isinstance(m, _POOLS):
        kind = "max" if "Max" in type(m).__name__ else "avg"
        if not hasattr(m, "kernel_size"):  # adaptive: a fixed output size
            return f"adaptive {kind} pool to {m.output_size}", ""
        k = m.kernel_size if isinstance(m.kernel_size, int) else m.kernel_size[0]
        return f"{kind} pool {k}", ""
    n = sum(p.numel() for p in m.parameters(recurse=False))
    if isinstance(m, _ACTIVATIONS):
        return _ACT_NAMES.get(type(m), _words(type(m).__name__)), str(n) if n else ""
    if isinstance(m, (nn.Dropout, nn.Dropout2d)):
        return f"dropout {m.p:g}", ""
    if isinstance(m, (nn.Softmax, nn.LogSoftmax, nn.Flatten)):
        return _words(type(m).__name__), ""
    return type(m).__name__, str(n) if n else ""


def _words(name: str) -> str:
    """A class or function name as lower-case words: LogSoftmax -> log softmax, leaky_relu -> leaky relu."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).replace("_", " ").strip().lower().replace("re lu", "relu")


# Functions called in a forward itself (not inside a submodule) that get a row: what they do to the
# shape or the values is part of the architecture. F.relu(x), x.relu(), torch.flatten(x, 1), x.view(-1, n).
_FUNCTION_ACTS = {"relu", "relu_", "tanh", "tanh_", "sigmoid", "sigmoid_", "gelu", "elu", "leaky_relu", "silu",
                  "selu", "softplus", "hardtanh"}
_FUNCTION_POOLS = {"max_pool2d", "avg_pool2d", "max_pool2d_with_indices", "adaptive_avg_pool2d",
                   "adaptive_max_pool2d"}
_FUNCTION_OTHER = {"dropout", "dropout2d", "softmax", "log_softmax", "flatten", "view", "reshape"}
_FUNCTION_ROWS = _FUNCTION_ACTS | _FUNCTION_POOLS | _FUNCTION_OTHER  # looked up on every torch call of the pass


def _arg(args: tuple, kwargs: dict, i: int, key: str, default: Any = None) -> Any:
    return args[i] if len(args) > i else kwargs.get(key, default)


def _function_kind(name: str, args: tuple, kwargs: dict, out: torch.Tensor) -> str | None:
    """The type column of a function called in a forward, or None for one without a row."""
    if name in _FUNCTION_ACTS:
        return _words(name.rstrip("_"))
    if name in _FUNCTION_POOLS:
        kind = "max" if "max" in name else "avg"
        if name.startswith("adaptive"):
            return f"adaptive {kind} pool to {_arg(args, kwargs, 1, 'output_size')}"
        k = _arg(args, kwargs, 1, "kernel_size")
        return f"{kind} pool {k[0] if isinstance(k, (tuple, list)) else k}"
    if name in ("dropout", "dropout2d"):
        return f"dropout {_arg(args, kwargs, 1, 'p', 0.5):g}"
    if name in ("softmax", "log_softmax"):
        return _words(name)
    x = args[0] if args and isinstance(args[0], torch.Tensor) else None
    if x is not None and x.dim() > 2 and out.dim() == 2:  # flatten, view or reshape to (B, n)
        return "flatten"
    return None


def _first_tensor(out: Any) -> torch.Tensor | None:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    return None


class _Calls(TorchFunctionMode):
    """One forward pass, recorded: every leaf module's call and every architectural function called
    outside a submodule, in the order they ran, and the parameters any call read."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.calls: list[tuple[str, nn.Module | None, str, tuple[int, ...]]] = []  # (name, module, kind, shape)
        self.used: set[int] = set()  # id() of every parameter some call read
        self.params = {id(p) for p in model.parameters()}
        self.depth = 0  # > 0 inside a recorded module: its own functions are not rows of their own
        self.hooks = []
        for name, m in model.named_modules():
            leaf = not any(True for _ in m.children()) and not isinstance(m, _CONTAINERS)  # an empty Sequential: no call
            if name and (leaf or any(True for _ in m.parameters(recurse=False))):
                self.hooks.append(m.register_forward_pre_hook(self._enter))
                self.hooks.append(m.register_forward_hook(self._leave(name)))

    def _enter(self, module: nn.Module, args: Any) -> None:
        self.depth += 1

    def _leave(self, name: str) -> Any:
        def hook(module: nn.Module, args: Any, out: Any) -> None:  # returns None: the output is kept
            self.depth -= 1
            t = _first_tensor(out)
            self.calls.append((name, module, "", tuple(t.shape[1:]) if t is not None else ()))
        return hook

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        for a in tree_leaves((args, kwargs)):  # torch.cat([self.token, x]) reads a parameter inside a list
            if isinstance(a, torch.Tensor) and id(a) in self.params:
                self.used.add(id(a))
        out = func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        t = _first_tensor(out)
        if self.depth == 0 and t is not None and name in _FUNCTION_ROWS:
            kind = _function_kind(name, args, kwargs, t)
            if kind is not None:
                self.calls.append((f"{name.rstrip('_')}()", None, kind, tuple(t.shape[1:])))
        return out

    def remove(self) -> None:
        for h in self.hooks:
            h.remove()


def _span(names: list[str]) -> str:
    """Names with runs of numbered ones shortened: bn1, bn2, bn3, bn4, fc -> bn1..bn4, fc."""
    out: list[str] = []
    run: list[tuple[str, int, str]] = []

    def flush() -> None:
        if len(run) > 2:
            out.append(f"{run[0][2]}..{run[-1][2]}")
        else:
            out.extend(r[2] for r in run)
        run.clear()

    for name in names:
        m = re.fullmatch(r"(.*?)(\d+)", name)
        if m and run and run[-1][0] == m[1] and run[-1][1] + 1 == int(m[2]):
            run.append((m[1], int(m[2]), name))
            continue
        flush()
        if m:
            run.append((m[1], int(m[2]), name))
        else:
            out.append(name)
    flush()
    return ", ".join(out)


def layer_rows(model: nn.Module, shape: tuple[int, ...], prefix_input: str = "") -> list[LayerRow]:
    """The model's layers in the order one forward pass calls them, each with its output shape.

    One row per call of a leaf submodule (a module called twice gives two rows, its parameters
    counted on the first and both marked shared) and per activation, pool, dropout, softmax or
    flatten that the forward calls as a function. Parameters that no call read are gathered in a
    last row of kind UNUSED. The counts add up to the model's.

    Args:
        shape: (C, H, W) of what the model receives; a forward pass on two zero images finds the shapes.
        prefix_input: a description of the input transform, shown as a first row ("pad 2").
    """
    calls = _Calls(model)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), calls:
            model(torch.zeros(2, *shape))
    finally:
        calls.remove()
        model.train(was_training)
    times = Counter(id(m) for _, m, _, _ in calls.calls if m is not None)
    seen: Counter[int] = Counter()
    counted: set[int] = set()  # id() of every parameter some row counts
    rows = [LayerRow("input", prefix_input, tuple(shape), "", 0)] if prefix_input else []
    for name, m, kind, out in calls.calls:
        short = name.split(".", 1)[1] if name.startswith(("features.", "classifier.")) else name
        if m is None:
            rows.append(LayerRow(short, kind, out, "", 0))
            continue
        kind, formula = _describe(m)
        seen[id(m)] += 1
        own = list(m.parameters(recurse=False))
        count = sum(p.numel() for p in own if id(p) not in counted)
        counted |= {id(p) for p in own}
        if times[id(m)] > 1:
            kind += f", {SHARED} (call {seen[id(m)]} of {times[id(m)]})"
            formula, count = (formula, count) if seen[id(m)] == 1 else (SHARED, 0)
        rows.append(LayerRow(short, kind, out, formula, count))
    left = [(name, p) for name, p in model.named_parameters() if id(p) not in counted]
    read = [(name, p) for name, p in left if id(p) in calls.used]
    if read:  # read by the forward itself (the model's own parameters, or a submodule's used directly)
        n = sum(p.numel() for _, p in read)
        rows.append(LayerRow(", ".join(name for name, _ in read), "parameters used directly in forward", (), str(n), n))
    unused = [(name, p) for name, p in left if id(p) not in calls.used]
    if unused:
        owners = list(dict.fromkeys(name.rsplit(".", 1)[0] if "." in name else name for name, _ in unused))
        n = sum(p.numel() for _, p in unused)
        rows.append(LayerRow(_span(owners), UNUSED, (), str(n), n))
    return rows


def param_table(title: str, model_name: str, cfg: ModelConfig, model: nn.Module | None = None) -> ParamTable:
    """The layer table of one model configuration (built here unless given)."""
    model = build_model(cfg) if model is None else model
    rows = layer_rows(model, cfg.model_shape, cfg.input.describe())
    return ParamTable(title, model_name, tuple(rows), sum(p.numel() for p in model.parameters()))

"""The user's own nn.Module: `target = "mynet:Net"`, `args = { width = 8 }`.

Finding and hashing its file is runner.usercode's (it never runs the code); importing, checking
the arguments and the forward pass happen in `check_user_model`, before anything trains. What a model's
outputs are (logits, or probabilities from a softmax at the end) is `output_kind`'s one check, which the
training-time warning, `runner predict` and the stored predictions share (`probabilities`).
"""
from __future__ import annotations

import inspect
import warnings
from typing import Any, Callable

import torch
from torch import nn

from runner.errors import RunnerError, out_of_memory
from runner.models.layers import InputTransform
from runner.usercode import UserCodeError, first_line, load_target

__all__ = ["ModelError", "REGULARIZER_ARGS", "build_user_model", "check_user_model", "accepted_regularizers",
           "output_kind", "probabilities", "PROBABILITIES", "LOG_PROBABILITIES", "LOGITS"]

# Regularizers a user's constructor may take by name; the others (weight decay, augmentation,
# label smoothing, the weight average) are the trainer's and work with any model.
REGULARIZER_ARGS = ("dropout", "batch_norm")
MODULE_CLASSES = "nn.Module classes"  # what a missing target's message lists


def is_module_class(value: Any) -> bool:
    """Whether a module's attribute is an nn.Module class (what a model's target names)."""
    return isinstance(value, type) and issubclass(value, nn.Module)


class ModelError(RunnerError):
    """A user's model that cannot be imported, built or run on the data."""


def _signature(factory: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(factory)
    except (TypeError, ValueError):
        return None


def accepted_regularizers(factory: Callable[..., Any]) -> set[str]:
    """The regularizers the constructor takes by name (or all of them, if it takes **kwargs)."""
    sig = _signature(factory)
    if sig is None:
        return set()
    params = sig.parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return set(REGULARIZER_ARGS)
    return {p.name for p in params if p.name in REGULARIZER_ARGS}


def _kwargs(cfg: Any, factory: Callable[..., Any]) -> dict[str, Any]:
    kwargs = dict(cfg.args)
    taken = accepted_regularizers(factory)
    if "dropout" in taken:
        kwargs["dropout"] = cfg.dropout
    if "batch_norm" in taken:
        kwargs["batch_norm"] = cfg.batch_norm
    return kwargs


def _check_args(factory: Callable[..., Any], kwargs: dict[str, Any], where: str) -> None:
    sig = _signature(factory)
    if sig is None:
        return
    try:
        sig.bind(**kwargs)
    except TypeError as e:
        raise ModelError(f"{where}.args: {e} (the signature is {getattr(factory, '__name__', 'target')}{sig})") from None


def build_user_model(cfg: Any) -> nn.Module:
    """The user's module for a ModelConfig, built with its args and the regularizers it takes."""
    factory = load_target(cfg.target, cfg.search_dir, is_module_class, MODULE_CLASSES)
    model = factory(**_kwargs(cfg, factory))
    if not isinstance(model, nn.Module):
        raise ModelError(f"{cfg.target}(...) returned a {type(model).__name__}, not an nn.Module")
    return model


def check_user_model(cfg: Any, where: str, sample: tuple[torch.Tensor, float, float] | None = None) -> nn.Module:
    """Import, check the arguments, build and run one forward pass on two images; one-line errors.

    Args:
        where: the spec's place of the model, e.g. "specs/x.toml: [models.mine]".
        sample: (real images as uint8 (N, C, H, W), mean, std): the model's outputs on them, prepared as
            training prepares them, are checked to be logits; a softmax at the end is warned about.
    """
    try:
        factory = load_target(cfg.target, cfg.search_dir, is_module_class, MODULE_CLASSES)
    except UserCodeError as e:
        raise ModelError(f"{where}: {e}") from None
    args = dict(cfg.args)
    for reg in REGULARIZER_ARGS:  # the runner passes these itself: one in args would be replaced unseen
        if reg in args and reg in accepted_regularizers(factory):
            raise ModelError(f"{where}.args: {reg} = {str(args[reg]).lower()} would be replaced by the runner's "
                             f"{reg} ({str(getattr(cfg, reg)).lower()}), which it passes to {cfg.target} itself; "
                             f"write {reg} = {str(args[reg]).lower()} beside target, or vary it in [grid], "
                             "not in args")
    for reg, off in (("dropout", 0.0), ("batch_norm", False)):
        if getattr(cfg, reg) != off and reg not in accepted_regularizers(factory):
            sig = _signature(factory)
            raise ModelError(f"{where}: {cfg.target} cannot take {reg} = {str(getattr(cfg, reg)).lower()}: its "
                             f"constructor has no {reg} argument (signature {cfg.target.partition(':')[2]}"
                             f"{sig if sig else '(...)'}); leave {reg} off for this model")
    kwargs = _kwargs(cfg, factory)
    _check_args(factory, kwargs, where)
    try:
        model = factory(**kwargs)
    except Exception as e:  # noqa: BLE001
        if out_of_memory(e):
            raise ModelError(f"{where}: {cfg.target}(...) ran out of memory while building its weights "
                             f"({first_line(e)})") from None
        raise ModelError(f"{where}: {cfg.target}(...) raised {type(e).__name__}: {first_line(e)}") from None
    if not isinstance(model, nn.Module):
        raise ModelError(f"{where}: {cfg.target}(...) returned a {type(model).__name__}, not an nn.Module")
    shape = cfg.model_shape
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(2, *shape))
    except Exception as e:  # noqa: BLE001
        if out_of_memory(e):
            raise ModelError(f"{where}: a forward pass on 2 images of shape {tuple(shape)} ran out of memory "
                             f"({first_line(e)})") from None
        raise ModelError(f"{where}: a forward pass on 2 images of shape {tuple(shape)} raised "
                         f"{type(e).__name__}: {first_line(e)}{_input_hint(model, cfg)}") from None
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, cfg.classes):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ModelError(f"{where}: a forward pass on 2 images of shape {tuple(shape)} must return "
                         f"(2, {cfg.classes}) logits; it returned {got}")
    if sample is not None and len(sample[0]):
        _warn_if_probabilities(model, cfg, where, sample)
    return model


def _input_hint(model: nn.Module, cfg: Any) -> str:
    """'; it runs on images of shape (1, 32, 32): add input = { pad = 2 } ...' when one of the input transforms the
    runner offers makes the forward pass work (a LeNet written for 32x32 images, a model for 224x224), else ''."""
    if cfg.input.to_dict():  # the spec chose its input: not second-guessed
        return ""
    c, h, w = cfg.in_shape
    offers = [InputTransform(pad=(32 - h) // 2)] if h == w < 32 and (32 - h) % 2 == 0 else []
    offers += [InputTransform(resize=size) for size in (32, 64, 224) if size != h]
    for offer in offers:
        shape = offer.shape(cfg.in_shape)
        try:
            with torch.no_grad():
                out = model(torch.zeros(2, *shape))
        except Exception:  # noqa: BLE001 - not this one either
            continue
        if isinstance(out, torch.Tensor) and tuple(out.shape) == (2, cfg.classes):
            line = "input = { " + ", ".join(f"{k} = {v}" for k, v in offer.to_dict().items()) + " }"
            return f"; it runs on images of shape {shape}: add `{line}` to this model's table"
    return ""


PROBABILITIES, LOG_PROBABILITIES, LOGITS = "probabilities", "log-probabilities", "logits"
# why a kind is what it is, as the warning at training time says it
_KIND_SIGNS = {PROBABILITIES: "probabilities (every row non-negative and summing to 1: a softmax at the end)",
               LOG_PROBABILITIES: "log-probabilities (a log_softmax at the end)"}


def output_kind(out: torch.Tensor) -> str:
    """What a model's outputs (N, classes) are: PROBABILITIES (every row non-negative and summing to 1, within
    1e-3), LOG_PROBABILITIES (every row non-positive, its exp summing to 1), else LOGITS. The one check the
    warning at training time, `runner predict` and the stored predictions all make."""
    if out.dim() != 2 or out.shape[1] < 2 or out.numel() == 0:
        return LOGITS
    out = out.detach().float()
    if (out >= 0).all() and ((out.sum(1) - 1).abs() <= 1e-3).all():
        return PROBABILITIES
    if (out <= 0).all() and ((out.exp().sum(1) - 1).abs() <= 1e-3).all():
        return LOG_PROBABILITIES
    return LOGITS


def probabilities(out: torch.Tensor) -> torch.Tensor:
    """Class probabilities (N, classes), float32, from a model's outputs: as they are when they already are
    probabilities (a forward that ends in softmax), else their softmax (of logits; of log-probabilities that
    is their exp). Never a softmax of a softmax."""
    out = out.float()
    return out if output_kind(out) == PROBABILITIES else torch.softmax(out, 1)


def _warn_if_probabilities(model: nn.Module, cfg: Any, where: str, sample: tuple[torch.Tensor, float, float]) -> None:
    """One warning when the outputs on real images look like softmax (or log_softmax) outputs."""
    images, mean, std = sample
    try:
        with torch.no_grad():
            out = model((cfg.input.apply(images).float() / 255 - mean) / std).float()
    except Exception:  # noqa: BLE001 - the two-image check passed; a batch problem is training's to report
        return
    kind = output_kind(out)
    if kind == LOGITS:
        return
    warnings.warn(f"{where}: {cfg.target} returns {_KIND_SIGNS[kind]}; CrossEntropyLoss expects logits and applies "
                  "log_softmax itself: return the last layer's output as it is", stacklevel=2)

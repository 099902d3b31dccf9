"""The user's own nn.Module: `target = "mynet:Net"`, `args = { width = 8 }`.

Locating the module's source file and hashing it never runs its code (the spec and the read-only
commands need only that); importing, checking the arguments and the forward pass happen in
`check_user_model`, before anything trains.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import importlib.util
import inspect
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import torch
from torch import nn

from runner.errors import RunnerError

__all__ = ["ModelError", "TARGET", "REGULARIZER_ARGS", "locate", "source_sha256", "load_target",
           "build_user_model", "check_user_model", "accepted_regularizers"]

TARGET = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
# Regularizers a user's constructor may take by name; the others (weight decay, augmentation,
# label smoothing) are the trainer's and work with any model.
REGULARIZER_ARGS = ("dropout", "batch_norm")


class ModelError(RunnerError):
    """A user's model that cannot be imported, built or run on the data."""


def _module_file(module: str, search_dir: str) -> Path | None:
    """The source file of `module`: under the spec's folder first, else where Python finds it."""
    parts = module.split(".")
    if search_dir:
        base = Path(search_dir).joinpath(*parts)
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
    if len(parts) == 1:  # find_spec of a dotted name would import its parents: only top-level here
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            return None
        if spec is not None and spec.origin and spec.origin not in ("built-in", "frozen"):
            return Path(spec.origin)
    return None


def locate(target: str, search_dir: str) -> Path | None:
    """The source file of a target's module, found without running any of its code."""
    return _module_file(target.partition(":")[0], search_dir)


def source_sha256(path: Path) -> str:
    """SHA-256 of a module's source file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _SourceLoader(importlib.machinery.SourceFileLoader):
    """Runs exactly the bytes it was given (those hashed), compiled here: never from __pycache__,
    whose check (the source's mtime and size) misses an edit that keeps both."""

    def __init__(self, fullname: str, path: str, source: bytes):
        super().__init__(fullname, path)
        self.source = source

    def get_code(self, fullname: str) -> Any:
        return self.source_to_code(self.source, self.path)


# module name -> (the module, its file, the SHA-256 of the source it ran): what this process loaded
_loaded: dict[str, tuple[ModuleType, str, str]] = {}


def _import(module_name: str, path: Path | None) -> ModuleType:
    """The module from `path`, run afresh unless this process already ran this very file's bytes.

    A module of the same name imported before (from another spec's folder, or an earlier version
    of this file) is never taken for it: the code that runs is the code whose hash is stored.
    """
    if path is None or path.suffix != ".py":  # not a source file found beforehand: let Python look
        return importlib.import_module(module_name)
    source = path.read_bytes()
    key = (str(path.resolve()), hashlib.sha256(source).hexdigest())
    known = _loaded.get(module_name)
    if known is not None and sys.modules.get(module_name) is known[0] and known[1:] == key:
        return known[0]
    parent, _, child = module_name.rpartition(".")
    if parent:
        importlib.import_module(parent)
    loader = _SourceLoader(module_name, str(path), source)
    spec = importlib.util.spec_from_file_location(
        module_name, path, loader=loader,
        submodule_search_locations=[str(path.parent)] if path.name == "__init__.py" else None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        _loaded.pop(module_name, None)
        raise
    if parent:
        setattr(sys.modules[parent], child, module)
    _loaded[module_name] = (module, *key)
    return module


def load_target(target: str, search_dir: str) -> Callable[..., Any]:
    """Import the target's module (the spec's folder first on sys.path) and return the attribute.

    The module is the file `locate` finds (and the spec hashed), run from its current source.
    """
    module_name, _, attr = target.partition(":")
    added = bool(search_dir) and search_dir not in sys.path
    if added:
        sys.path.insert(0, search_dir)
    try:
        module = _import(module_name, _module_file(module_name, search_dir))
    except Exception as e:  # noqa: BLE001 - any error in the user's module is theirs to see, in one line
        raise ModelError(f"cannot import {module_name}: {type(e).__name__}: {_line(e)}") from None
    finally:
        if added:
            sys.path.remove(search_dir)
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            found = [n for n in dir(module) if not n.startswith("_")]
            raise ModelError(f"{module_name} has no attribute {part!r}; it has {', '.join(found[:12]) or 'nothing'}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ModelError(f"{target} is a {type(obj).__name__}, not a class or function that makes an nn.Module")
    return obj


def _line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else ""


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
    factory = load_target(cfg.target, cfg.search_dir)
    model = factory(**_kwargs(cfg, factory))
    if not isinstance(model, nn.Module):
        raise ModelError(f"{cfg.target}(...) returned a {type(model).__name__}, not an nn.Module")
    return model


def check_user_model(cfg: Any, where: str) -> nn.Module:
    """Import, check the arguments, build and run one forward pass on two images; one-line errors.

    Args:
        where: the spec's place of the model, e.g. "specs/x.toml: [models.mine]".
    """
    try:
        factory = load_target(cfg.target, cfg.search_dir)
    except ModelError as e:
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
        raise ModelError(f"{where}: {cfg.target}(...) raised {type(e).__name__}: {_line(e)}") from None
    if not isinstance(model, nn.Module):
        raise ModelError(f"{where}: {cfg.target}(...) returned a {type(model).__name__}, not an nn.Module")
    shape = cfg.model_shape
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(2, *shape))
    except Exception as e:  # noqa: BLE001
        raise ModelError(f"{where}: a forward pass on 2 images of shape {tuple(shape)} raised "
                         f"{type(e).__name__}: {_line(e)}") from None
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, cfg.classes):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ModelError(f"{where}: a forward pass on 2 images of shape {tuple(shape)} must return "
                         f"(2, {cfg.classes}) logits; it returned {got}")
    return model

"""A user's own code, named "module:attribute" in a spec: found and hashed without running it, imported.

Locating a target's source file and hashing it never runs its code (the spec and the read-only
commands need only that). Importing runs exactly the bytes that were hashed. Used for a model's
`target` (runner.models.user) and for the data's (runner.data.user).
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from runner.errors import RunnerError
from runner.text import did_you_mean

__all__ = ["UserCodeError", "TARGET", "locate", "source_sha256", "structure_sha256", "declared_parameters", "load_target", "first_line"]

TARGET = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class UserCodeError(RunnerError):
    """A user's module that cannot be imported, or has no such attribute."""


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


def structure_sha256(path: Path) -> str:
    """SHA-256 of what a module's source does, not how it is written: its syntax tree with every docstring
    removed, so a comment, a blank line, a docstring or a reformatting leaves it unchanged; "" for a file
    that does not parse (then only its bytes identify it)."""
    import ast

    try:
        tree = ast.parse(path.read_bytes())
    except (OSError, SyntaxError, ValueError):
        return ""
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree, include_attributes=False).encode()).hexdigest()


def declared_parameters(path: Path, target: str) -> frozenset[str] | None:
    """The parameter names of a target's constructor, read from its source without running it.

    `class Net(nn.Module)` with its own `__init__` (or the one it inherits from a class of the same file, or
    nn.Module's), or `def make_net(...)`, at the top of the module. None when the source does not say: no
    such definition, a base from elsewhere, a `**kwargs`, a file that does not parse (the import then finds
    out what the constructor takes).
    """
    import ast

    try:
        tree = ast.parse(path.read_bytes())
    except (OSError, SyntaxError, ValueError):
        return None
    attribute = target.partition(":")[2]
    node = _defined(tree, attribute)
    if node is None:
        return None
    if isinstance(node, ast.ClassDef):
        init = _constructor(tree, node, set())
        if init is None:
            return None
        if init is _MODULE_INIT:  # nn.Module's own constructor: it takes nothing the runner passes
            return frozenset()
        fn, skip = init, 1  # self
    else:
        fn, skip = node, 0
    if fn.args.kwarg is not None or fn.decorator_list:
        return None
    names = [a.arg for a in (*fn.args.posonlyargs, *fn.args.args)][skip:] + [a.arg for a in fn.args.kwonlyargs]
    return frozenset(names)


_MODULE_INIT = object()  # stands for torch.nn.Module.__init__, which a class without its own inherits
_MODULE_BASES = {"Module", "nn.Module", "torch.nn.Module"}


def _defined(tree: Any, name: str) -> Any:
    """The one top-level class or function `name` of a parsed module; None when there is none, or several
    (the last one wins at import: not for a reader to guess)."""
    import ast

    found = [n for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name == name]
    return found[0] if len(found) == 1 else None


def _constructor(tree: Any, node: Any, seen: set[str]) -> Any:
    """The `__init__` a class runs, read from the source: its own, else the one it inherits from a class of the
    same module (`class Soft(LeNet5)`) or nn.Module's; None when the source does not say (a decorator, a base
    from elsewhere, several bases)."""
    import ast

    if node.decorator_list or node.name in seen:
        return None
    seen.add(node.name)
    inits = [n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"]
    if inits:
        return inits[0] if len(inits) == 1 else None
    if len(node.bases) != 1:
        return None
    base = ast.unparse(node.bases[0])
    if base in _MODULE_BASES:
        return _MODULE_INIT
    parent = _defined(tree, base) if isinstance(node.bases[0], ast.Name) else None
    return _constructor(tree, parent, seen) if isinstance(parent, ast.ClassDef) else None


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


def load_target(target: str, search_dir: str, offered: Callable[[Any], bool] = callable,
                what: str = "") -> Callable[..., Any]:
    """Import the target's module (the spec's folder first on sys.path) and return the attribute.

    The module is the file `locate` finds (and the spec hashed), run from its current source.

    Args:
        offered: which of the module's own attributes a missing one's message lists (e.g. nn.Module
            classes); an attribute the module imported (`nn`, `torch`) is never listed.
        what: what those are, for the message ("nn.Module classes").
    """
    module_name, _, attr = target.partition(":")
    added = bool(search_dir) and search_dir not in sys.path
    if added:
        sys.path.insert(0, search_dir)
    try:
        module = _import(module_name, _module_file(module_name, search_dir))
    except Exception as e:  # noqa: BLE001 - any error in the user's module is theirs to see, in one line
        raise UserCodeError(f"cannot import {module_name}: {type(e).__name__}: {first_line(e)}") from None
    finally:
        if added:
            sys.path.remove(search_dir)
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            found = [n for n, v in vars(obj).items() if not n.startswith("_") and _defined_in(v, module)
                     and offered(v)]
            kind = f" {what}" if what else ""
            listed = f"{kind} {', '.join(sorted(found)[:12])}" if found else f" no{kind or ' such attribute'}"
            raise UserCodeError(f"{module_name} has no attribute {part!r}{did_you_mean(part, found)}; it has{listed}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise UserCodeError(f"{target} is a {type(obj).__name__}, not a class or function that makes an nn.Module")
    return obj


def _defined_in(value: Any, module: ModuleType) -> bool:
    """Whether a class or function was defined in `module` (not imported into it, as `nn` or `torch` are)."""
    return getattr(value, "__module__", None) == module.__name__


def first_line(e: BaseException) -> str:
    """The first line of an exception's message."""
    text = str(e).strip().splitlines()
    return text[0] if text else ""

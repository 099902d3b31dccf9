"""The grammar of a spec, defined once: each key's type, default, bounds and help.

A `Key` states its constraints as data (choices, bounds), so the validator's check, the one-line
message of what is allowed, docs/spec.md's key tables and the JSON Schema (`runner schema`) are all
derived from the same definition.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["Key", "choices_text"]


def choices_text(choices: tuple[Any, ...]) -> str:
    """'"a" | "b"' for the one-line messages."""
    return " | ".join(f'"{c}"' for c in choices)


@dataclass(frozen=True)
class Key:
    """One key a spec may set: its type, default and constraints; everything else derives from them."""

    kind: type  # bool, int, float, str, list (of `item`) or dict (a table of plain values)
    default: Any
    help: str = ""
    choices: tuple[Any, ...] = ()  # allowed values of a str key
    ge: float | None = None  # value >= ge
    gt: float | None = None  # value > gt
    lt: float | None = None  # value < lt
    le: float | None = None  # value <= le
    item: type | None = None  # the type of a list's items (int)
    item_ge: int | None = None  # each list item >= item_ge
    nonempty: bool = False  # a str that is not blank, a list with an item
    max_len: int | None = None  # the most characters of a str
    note: str = ""  # appended to what is allowed, e.g. "(0 = all 60,000)"
    text: str = ""  # what is allowed, when the constraints cannot say it
    auto: bool = False  # the string "auto" is allowed too (a number computed from the data)

    @property
    def allowed(self) -> str:
        """What a person is told is allowed."""
        if self.text:
            out = self.text
        elif self.choices:
            out = choices_text(self.choices)
        elif self.kind is bool:
            out = "true or false"
        elif self.kind is list:
            items = {int: "integers", float: "numbers", str: "strings"}.get(self.item, "values")
            bound = f" >= {self.item_ge}" if self.item_ge is not None else ""
            out = f"a {'non-empty ' if self.nonempty else ''}list of {items}{bound}"
        elif self.kind is dict:
            out = "a table"
        elif self.kind is str:
            out = "a non-empty string" if self.nonempty else "a string"
        else:
            out = ("an integer" if self.kind is int else "a number") + self._bounds()
        out = f'{out} or "auto"' if self.auto else out
        return f"{out} {self.note}" if self.note else out

    def _bounds(self) -> str:
        lo = f"[{_num(self.ge)}" if self.ge is not None else f"({_num(self.gt)}" if self.gt is not None else None
        if lo is not None and self.lt is not None:
            return f" in {lo}, {_num(self.lt)})"
        if lo is not None and self.le is not None:
            return f" in {lo}, {_num(self.le)}]"
        if self.ge is not None:
            return f" >= {_num(self.ge)}"
        if self.gt is not None:
            return f" > {_num(self.gt)}"
        if self.lt is not None:
            return f" < {_num(self.lt)}"
        return ""

    def accepts_type(self, v: Any) -> bool:
        """Whether `v` has the key's TOML type (an integer is a number; a bool is neither)."""
        if isinstance(v, bool):
            return self.kind is bool
        if self.auto and v == "auto":
            return True
        return {bool: False, int: isinstance(v, int), float: isinstance(v, (int, float)),
                str: isinstance(v, str), list: isinstance(v, list), dict: isinstance(v, dict)}[self.kind]

    def check(self, v: Any) -> bool:
        """Whether a value of the right type meets the constraints."""
        if self.auto and v == "auto":
            return True
        if self.kind is float and not math.isfinite(v):
            return False
        if self.choices and v not in self.choices:
            return False
        if self.kind is str and self.nonempty and not v.strip():
            return False
        if self.kind is str and self.max_len is not None and len(v) > self.max_len:
            return False
        if self.kind is list:
            if self.nonempty and not v:
                return False
            if self.item is not None:
                for x in v:
                    ok = Key(self.item, None).accepts_type(x)
                    if not ok or (self.item_ge is not None and x < self.item_ge):
                        return False
            return True
        if self.kind in (int, float):
            if self.ge is not None and v < self.ge:
                return False
            if self.gt is not None and v <= self.gt:
                return False
            if self.lt is not None and v >= self.lt:
                return False
            if self.le is not None and v > self.le:
                return False
        return True

    def schema(self) -> dict[str, Any]:
        """The key as JSON Schema (draft 2020-12)."""
        out: dict[str, Any] = {"type": {bool: "boolean", int: "integer", float: "number", str: "string",
                                        list: "array", dict: "object"}[self.kind]}
        if self.help:
            out["description"] = self.help
        if self.choices:
            out["enum"] = list(self.choices)
        if self.ge is not None:
            out["minimum"] = self.ge
        if self.gt is not None:
            out["exclusiveMinimum"] = self.gt
        if self.lt is not None:
            out["exclusiveMaximum"] = self.lt
        if self.le is not None:
            out["maximum"] = self.le
        if self.kind is str and self.nonempty:
            out["minLength"] = 1
        if self.kind is str and self.max_len is not None:
            out["maxLength"] = self.max_len
        if self.kind is list:
            if self.item is not None:
                items = Key(self.item, None).schema()
                if self.item_ge is not None:
                    items["minimum"] = self.item_ge
                out["items"] = items
            if self.nonempty:
                out["minItems"] = 1
        if self.default is not None and self.kind is not dict:
            out["default"] = list(self.default) if isinstance(self.default, tuple) else self.default
        if self.auto:
            kept = {k: out.pop(k) for k in ("description", "default") if k in out}
            out = {"anyOf": [out, {"const": "auto"}], **kept}
        return out


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and not isinstance(x, float) else str(x)

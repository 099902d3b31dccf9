"""Validating values against the grammar's Keys: one-line SpecErrors that name the file and the key."""
from __future__ import annotations

import json
import re
from typing import Any

from runner.errors import SpecError
from runner.keys import Key
from runner.text import toml_literal
from runner.text import did_you_mean

__all__ = ["Checker", "show_value"]


LINE_BREAK = re.compile("[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")  # where str.splitlines splits


class Checker:
    """Validates values against Keys, raising one-line SpecErrors that name file and key."""

    def __init__(self, path: str, missing_code_ok: bool = False):
        self.path = path
        self.missing_code_ok = missing_code_ok  # a reader of stored results: a user's file may be gone

    def fail(self, where: str, message: str) -> SpecError:
        # Keys and names are the user's and may hold a line break: show it escaped, as TOML writes it
        text = LINE_BREAK.sub(lambda m: json.dumps(m[0])[1:-1], f"{where}: {message}")
        return SpecError(f"{self.path}: {text}")

    def unknown(self, where: str, key: str, valid: list[str], what: str = "key") -> SpecError:
        hint = did_you_mean(key, valid, f"; valid {what}s: {', '.join(valid)}")
        return self.fail(where, f'unknown {what} "{key}"{hint}')

    def value(self, where: str, key: Key, v: Any) -> Any:
        if not key.accepts_type(v):
            raise self.fail(where, f"{show_value(v)} is not {key.allowed}")
        if key.kind is float and not (key.auto and v == "auto"):
            try:
                v = float(v)
            except OverflowError:  # an integer beyond any float
                raise self.fail(where, f"{show_value(v)} is out of a float's range: it must be {key.allowed}") from None
        if key.kind is list and key.item is not None:  # name the item that is wrong
            item = Key(key.item, None, ge=key.item_ge)
            for x in v:
                if not item.accepts_type(x) or not item.check(x):
                    raise self.fail(where, f"{show_value(x)} is not {item.allowed}")
        if not key.check(v):
            near = did_you_mean(v, [str(c) for c in key.choices]) if key.choices and isinstance(v, str) else ""
            raise self.fail(where, f"{show_value(v)} is not {key.allowed}{near}")
        return v

    def table(self, where: str, raw: Any, keys: dict[str, Key], extra: tuple[str, ...] = ()) -> dict:
        if not isinstance(raw, dict):
            raise self.fail(where, f"must be a table, got {show_value(raw)}")
        for k in raw:
            if k not in keys and k not in extra:
                raise self.unknown(where, k, [*keys, *extra])
        return {k: self.value(f"{where}.{k}", keys[k], v) for k, v in raw.items() if k in keys}


def show_value(v: Any, depth: int = 0) -> str:
    if isinstance(v, list):
        if depth >= 8:  # tomllib nests arrays nearly as deep as the recursion limit: this would overflow it
            return "[...]"
        return "[" + ", ".join(show_value(x, depth + 1) for x in v) + "]"
    if isinstance(v, str) and len(v) > SHOWN_MAX:  # a 600-character name: its start and its length
        return toml_literal(v[:SHOWN_MAX - 20]) + f"... ({len(v):,} characters)"
    return toml_literal(v)


SHOWN_MAX = 60  # characters of a string value shown in a message

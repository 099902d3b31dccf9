"""Text for people, each kind written one way: the "did you mean" hint, a tensor shape, a plain table."""
from __future__ import annotations

import csv
import difflib
import hashlib
import io
import json
import re
import shutil
from typing import Any, Sequence

__all__ = ["did_you_mean", "format_shape", "text_table", "plural", "csv_text", "file_slug", "SLUG_MAX", "toml_value",
           "toml_literal"]


def toml_value(v: Any) -> str:
    """A value as TOML writes it, for a label or a table cell: booleans lower-case ("true"), else str(v)."""
    if isinstance(v, bool):
        return str(v).lower()
    return str(v)


def toml_literal(v: Any) -> str:
    """A value as a person writes it in a TOML file: a string quoted ("affine"), a table as "a table", else
    as toml_value writes it (a message names the value so; a [[runs]] entry is pasted so)."""
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, dict):
        return "a table"
    return toml_value(v)


def plural(n: int, word: str, many: str | None = None) -> str:
    """'1 trial', '2 trials' (`many` for a plural that is not word + s)."""
    return f"{n:,} {word if n == 1 else many or word + 's'}"


def did_you_mean(word: object, valid: Sequence[str], otherwise: str = "") -> str:
    """'; did you mean "x"?' for the nearest valid word, else `otherwise` (e.g. "; valid keys: a, b")."""
    near = difflib.get_close_matches(str(word), list(valid), n=1)
    return f'; did you mean "{near[0]}"?' if near else otherwise


def format_shape(shape: Sequence[int]) -> str:
    """A tensor shape as Python writes a tuple: (6, 28, 28), (120,), ()."""
    return "(" + ", ".join(map(str, shape)) + (",)" if len(shape) == 1 else ")")


def text_table(columns: Sequence[str], rows: Sequence[Sequence[str]], fit: bool = False) -> str:
    """A plain text table with aligned columns, a dashed rule under the header.

    Args:
        fit: on a terminal, leave out the columns that do not fit its width, and say so.
    """
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]
    keep = len(columns)
    if fit:
        width = shutil.get_terminal_size().columns
        keep, used = 0, 0
        while keep < len(columns) and used + widths[keep] + (2 if keep else 0) <= width:
            used += widths[keep] + (2 if keep else 0)
            keep += 1
        keep = max(keep, 1)
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells[:keep], widths)).rstrip()  # noqa: E731
    out = [line(columns), line(["-" * w for w in widths]), *(line(r) for r in rows)]
    if keep < len(columns):
        out.append(f"({len(columns) - keep} columns do not fit: {', '.join(columns[keep:])}; "
                   "choose with --columns or use --format csv)")
    return "\n".join(out)


def csv_text(names: list[str], rows: list[list[Any]]) -> str:
    """A CSV file's text: a header, then one line per row (None empty, booleans as TOML writes them)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(names)
    writer.writerows([["" if v is None else str(v).lower() if isinstance(v, bool) else v for v in r] for r in rows])
    return buf.getvalue()


SLUG_MAX = 40  # characters of a label kept whole in a file name; a longer one is its start and a short hash


def file_slug(label: str) -> str:
    """A label as a short, stable file-name part: "lenet5" or "lenet5-batch_norm-true" whole, a longer one as
    its first word and 8 hex digits of its SHA-256 ("lenet-3f9a0c12"): the same label, the same name."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", label.replace("=", "-")).strip("-")
    if len(slug) <= SLUG_MAX:
        return slug
    return f"{slug.split('-', 1)[0][:SLUG_MAX - 9]}-{hashlib.sha256(label.encode()).hexdigest()[:8]}"

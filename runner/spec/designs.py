"""A spec's [grid].design as a two-level fraction ("half", { resolution = N }): built, run and said in words.

runner.design.fractional builds two-level designs of named factors; these functions fit one to a spec's grid
(its axes of two values), map the design's runs back to the grid's values, and say what it runs and aliases.
Spec.fraction, Spec.design_text and Spec.design_lines call them with the spec's grid. (The one-at-a-time design
is runner.design.one_at_a_time's, which Spec.comparisons calls.)
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Iterator

from runner.design import one_at_a_time
from runner.design.fractional import Design, DesignError, alias_lines
from runner.design.fractional import design as two_level
from runner.spec.check import show_value

__all__ = ["design_text", "fraction", "fraction_rows", "design_lines"]

Grid = tuple[tuple[str, tuple[Any, ...]], ...]  # axis -> values, in file order (Spec.grid)


@functools.lru_cache(maxsize=32)
def _two_level(factors: tuple[str, ...], kind: str | int) -> Design:
    """runner.design's two-level design of these factors (a resolution's search for generators is not free)."""
    return two_level(factors, kind)


def design_text(kind: str | int) -> str:
    """[grid].design as the spec writes it: "full", "half" or { resolution = 4 }."""
    if isinstance(kind, str):
        return show_value(kind)
    return f"{{ resolution = {kind} }}"


def fraction(grid: Grid, kind: str | int, models: list[str], applies: Callable[[str, str], bool]) -> Design | None:
    """The two-level design whose runs are a fractional grid's settings; None for the full grid.

    Its factors are the grid's axes of two values in file order, each value the index of the
    axis's value (sign -1: the first). DesignError, one line, for a grid no two-level design fits.

    Args:
        grid: the spec's [grid] axes and values.
        kind: [grid].design.
        models: the models the grid crosses its axes with.
        applies: whether an axis applies to a model (Spec.applies).
    """
    if kind in ("full", one_at_a_time.NAME):
        return None
    name = design_text(kind)
    if len(models) > 1:
        raise DesignError(f"{name} varies one model's axes, and [grid].model has {len(models)} "
                          f"({', '.join(models)}): give each model a spec of its own, or use design = \"full\"")
    many = [(a, v) for a, v in grid if a != "model" and len(v) > 2]
    if many:
        axis, values = many[0]
        raise DesignError(f"{name}: {axis} has {len(values)} values ({', '.join(map(show_value, values))}), "
                          "and a two-level design takes axes of two: use design = \"full\", or a study per "
                          "pair of values")
    factors = tuple(a for a, v in grid if a != "model" and len(v) == 2)
    inert = [a for a in factors if not applies(models[0], a)]
    if inert:
        raise DesignError(f"{name}: {inert[0]} does not apply to {models[0]} (its module takes no such "
                          "argument), so its two values would be one setting: leave it out of the grid")
    return _two_level(factors, kind)


def fraction_rows(grid: Grid, d: Design) -> Iterator[tuple[Any, ...]]:
    """The design's runs as the grid's values, one per axis, in the order the full grid lists them."""
    column = {a: j for j, a in enumerate(d.factors)}
    picks = sorted(tuple(int(s > 0) for s in row) for row in d.signs)  # index tuples sort as the product runs
    for pick in picks:
        yield tuple(v[pick[column[a]]] if a in column else v[0] for a, v in grid)


def design_lines(d: Design | None, kind: str | int) -> list[str]:
    """A fractional grid in words, one line each: what it runs, then each aliased set once (none: a full grid)."""
    if d is None:
        return []
    k, words, text = len(d.factors), len(d.words), design_text(kind)
    if not words:
        return [f"[grid].design {text}: all {len(d.signs)} settings of the {k} axes, as the full grid: no "
                f"fraction of {k} axes reaches resolution {kind}"]
    p = words.bit_length()  # the group of p generators has 2^p - 1 words
    return [f"[grid].design {text}: {len(d.signs)} of the {2 ** k} settings, a 2^({k}-{p}) fraction of "
            f"resolution {d.resolution}", *alias_lines(d)]

"""Fractional factorial designs for axes of two values: the runs, what each effect is aliased with, the estimates.

A full 2^k grid costs 2^k points per seed. A fraction runs 2^(k-p) of them: the first k - p factors
(the base) take every combination, and each of the other p is set to a product of base factors,
its generator (D = ABC). The price is aliasing: in the fraction D's column equals ABC's, so the
main effect of D cannot be told from the three-way interaction of A, B and C. Then ABCD is +1 on
every run: I = ABCD is the defining relation (with several generators, every product of their
words), and an effect's aliases are its products with each word (A x ABCD = BCD). The shortest word's length is the resolution: at III
main effects are aliased with two-way interactions, at IV only with three-way ones (two-ways with
each other), at V two-ways are clear of each other too. The matrix is pyDOE3's `fracfact`, from
generators chosen here: the fewest runs at the resolution asked, the least aberrant among them.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from runner.errors import RunnerError

__all__ = ["DesignError", "Design", "design", "aliases", "alias_lines", "estimable_interactions",
           "estimate_main_effects", "estimate_interactions", "MAX_FACTORS"]

MAX_FACTORS = 15  # two-level factors a design may have (2^15 points in full; the generator search stays quick)
_SEARCH = 20000  # generator sets tried per number of base factors before trying more runs


class DesignError(RunnerError):
    """A two-level design that cannot be built, or an effect it cannot estimate."""


@dataclass(frozen=True, eq=False)
class Design:
    """A two-level design: its runs, in order, and the generators that made it."""
    factors: tuple[str, ...]  # in the order given; the first len(factors) - len(words) are the base
    values: tuple[tuple[Any, Any], ...]  # each factor's two values: sign -1 is the first, +1 the second
    signs: np.ndarray  # (runs, factors) of -1.0 / +1.0: the design matrix
    generators: str  # pyDOE3's generator string, e.g. "a b c abc": D = ABC
    words: tuple[int, ...]  # the defining relation, each word a bit mask over the factors (empty when full)
    kind: str  # "full", "half" or "resolution 4", as asked

    @property
    def runs(self) -> list[dict[str, Any]]:
        """Each run as factor -> value (0 or 1, the index of the value, when the factors came without values)."""
        return [{f: v[int(s > 0)] for f, v, s in zip(self.factors, self.values, row)} for row in self.signs]

    @property
    def resolution(self) -> int | None:
        """The length of the shortest word of the defining relation; None for the full design."""
        return min(bin(w).count("1") for w in self.words) if self.words else None

    def name(self, effect: int) -> str:
        """An effect's name from its bit mask: "dropout", "dropout x batch_norm"."""
        return " x ".join(f for j, f in enumerate(self.factors) if effect >> j & 1)

    def mask(self, effect: str) -> int:
        """An effect's bit mask from its name; DesignError for a factor not in the design."""
        names = [part.strip() for part in effect.split(" x ")]
        unknown = [n for n in names if n not in self.factors]
        if unknown or len(set(names)) != len(names):
            raise DesignError(f"{effect!r} is not an effect of this design: its factors are {', '.join(self.factors)}")
        return sum(1 << self.factors.index(n) for n in names)


def design(factors: Sequence[str] | Mapping[str, Sequence[Any]], kind: str | int = "full") -> Design:
    """The runs of a two-level design: "full", "half" (2^(k-1), resolution k) or the fewest runs at a resolution.

    Args:
        factors: the factors' names in order, or name -> its two values (the first is "off").
        kind: "full" | "half" | a resolution of 3 or more (the full design when no fraction reaches it).
    """
    from pyDOE3 import fracfact  # a second to import: runner.spec imports this module, fractions are rare

    names, values = _factors(factors)
    k = len(names)
    if kind == "full":
        base, extra = k, []
    elif kind == "half":
        if k < 3:
            raise DesignError(f"a half fraction of {k} factor{'s' * (k != 1)} aliases main effects with each other: "
                              "use \"full\", or 3 factors or more")
        base, extra = k - 1, [(1 << (k - 1)) - 1]  # the last factor is the product of all the others
    elif isinstance(kind, int) and not isinstance(kind, bool) and kind >= 3:
        base, extra = _fewest_runs(k, kind)
    else:
        raise DesignError(f"a design is \"full\", \"half\" or a resolution of 3 or more (an integer), not {kind!r}")
    letters = [chr(ord("a") + j) for j in range(base)]
    generators = " ".join(letters + ["".join(letters[j] for j in range(base) if g >> j & 1) for g in extra])
    words = _group([g | 1 << (base + i) for i, g in enumerate(extra)])
    label = kind if isinstance(kind, str) else f"resolution {kind}"
    return Design(tuple(names), tuple(values), fracfact(generators), generators, words, label)


def _factors(factors: Sequence[str] | Mapping[str, Sequence[Any]]) -> tuple[list[str], list[tuple[Any, Any]]]:
    """Names and two values each, or DesignError naming the factor that has not exactly two."""
    if isinstance(factors, Mapping):
        names, values = list(factors), [tuple(v) for v in factors.values()]
    else:
        names = list(factors)
        values = [(0, 1)] * len(names)
    if not names:
        raise DesignError("a design needs at least one factor")
    if len(names) > MAX_FACTORS:
        raise DesignError(f"a design takes at most {MAX_FACTORS} factors, not {len(names)}")
    for name, vs in zip(names, values):
        if names.count(name) > 1:
            raise DesignError(f"factor {name} appears {names.count(name)} times")
        if len(vs) != 2 or vs[0] == vs[1]:
            count = len(set(vs))
            raise DesignError(f"{name} has {count} value{'s' * (count != 1)} ({', '.join(map(str, vs))}): "
                              "a two-level design needs exactly 2")
    return names, values  # type: ignore[return-value]


def _fewest_runs(k: int, resolution: int) -> tuple[int, list[int]]:
    """(base factors, generators) of the smallest fraction at the resolution, least aberrant among those tried.

    Generators are words over the base with at least resolution - 1 letters; a set of them is
    kept when every word of the group they make is at least `resolution` long. (pyDOE3's
    fracfact_by_res is not used: it never takes the word of the whole base, so it calls a 2^(5-1)
    design of resolution V, E = ABCD, "not possible".)
    """
    for base in range(max(1, math.ceil(math.log2(k + 1))), k):
        candidates = [g for g in range(1, 1 << base) if bin(g).count("1") >= max(2, resolution - 1)]
        candidates.sort(key=lambda g: (-bin(g).count("1"), g))
        best: tuple[tuple[int, ...], list[int]] | None = None
        for chosen in itertools.islice(itertools.combinations(candidates, k - base), _SEARCH):
            lengths = sorted(bin(w).count("1") for w in _group([g | 1 << (base + i) for i, g in enumerate(chosen)]))
            if lengths[0] >= resolution and (best is None or tuple(lengths) > best[0]):
                best = (tuple(lengths), list(chosen))  # longer short words: less aberration
        if best is not None:
            return base, best[1]
    return k, []


def _group(generators: list[int]) -> tuple[int, ...]:
    """Every word of the defining relation: the products (XOR of bit masks) of each nonempty set of generators."""
    words = set()
    for r in range(1, len(generators) + 1):
        for chosen in itertools.combinations(generators, r):
            w = 0
            for g in chosen:
                w ^= g
            words.add(w)
    return tuple(sorted(words, key=lambda w: (bin(w).count("1"), w)))


def _alias_set(d: Design, effect: int) -> list[int]:
    """The effect and every effect aliased with it, low orders first, then in the factors' order."""
    others = {effect ^ w for w in d.words}
    return [effect] + sorted(others - {0, effect}, key=lambda e: (bin(e).count("1"), _order(e)))


def _order(effect: int) -> list[int]:
    return [j for j in range(effect.bit_length()) if effect >> j & 1]


def _low_effects(d: Design) -> list[int]:
    """The main effects and two-way interactions, in the factors' order."""
    k = len(d.factors)
    return [1 << j for j in range(k)] + [1 << a | 1 << b for a, b in itertools.combinations(range(k), 2)]


def aliases(d: Design) -> dict[str, tuple[str, ...]]:
    """For each main effect and two-way interaction, the effects it is aliased with (none in a full design)."""
    return {d.name(e): tuple(d.name(o) for o in _alias_set(d, e)[1:]) for e in _low_effects(d)}


def alias_lines(d: Design) -> list[str]:
    """Each aliased set once, as a sentence: "dropout is aliased with batch_norm x weight_decay x augment"."""
    seen: set[int] = set()
    lines = []
    for e in _low_effects(d):
        chain = _alias_set(d, e)
        if e in seen or len(chain) == 1:
            continue
        seen.update(chain)
        others = [d.name(o) for o in chain[1:]]
        listed = others[0] if len(others) == 1 else ", ".join(others[:-1]) + " and " + others[-1]
        lines.append(f"{d.name(e)} is aliased with {listed}")
    return lines


def estimable_interactions(d: Design) -> list[str]:
    """The two-way interactions not aliased with a main effect (two aliased with each other share one estimate)."""
    mains = {1 << j for j in range(len(d.factors))}
    return [d.name(e) for e in _low_effects(d)[len(mains):] if not mains & set(_alias_set(d, e))]


def _contrast(d: Design, effect: int, responses: np.ndarray, scale: float) -> np.ndarray | float:
    """scale * (mean(responses where the effect's column is +1) - mean(where it is -1)), over axis 0 (runs)."""
    column = np.prod(d.signs[:, _order(effect)], axis=1)  # (runs,)
    out = np.tensordot(column, responses, axes=(0, 0)) * (2 * scale / len(column))
    return float(out) if np.ndim(out) == 0 else out


def _responses(d: Design, responses: Any) -> np.ndarray:
    y = np.asarray(responses, dtype=np.float64)
    if y.ndim == 0 or y.shape[0] != len(d.signs):
        raise ValueError(f"responses need one entry per run along axis 0 ({len(d.signs)} runs), not shape {y.shape}")
    return y


def estimate_main_effects(d: Design, responses: Any) -> dict[str, np.ndarray | float]:
    """Each factor's main effect as a contrast over the runs: mean at its high value minus mean at its low.

    In a full design that is the report's main effect, the mean of the paired differences.

    Args:
        responses: the runs' responses along axis 0, in the order of `d.runs`; any further axes
            (seeds, test images) are kept, so (runs, seeds, images) of 100 * correct gives each
            seed's per-image contrast, the rows power.split_contrast takes.
    """
    y = _responses(d, responses)
    return {f: _contrast(d, 1 << j, y, 1.0) for j, f in enumerate(d.factors)}


def estimate_interactions(d: Design, responses: Any, interactions: Sequence[str] | None = None
                          ) -> dict[str, np.ndarray | float]:
    """Two-way interactions as contrasts: the effect of one at the other's high minus at its low.

    That is the report's interaction (y11 - y10 - y01 + y00 per pair), twice the textbook's
    half-difference.

    Args:
        interactions: names like "dropout x batch_norm"; all the estimable ones when None. One that
            the design aliases with a main effect is refused with DesignError.
    """
    y = _responses(d, responses)
    mains = {1 << j for j in range(len(d.factors))}
    out = {}
    for name in estimable_interactions(d) if interactions is None else interactions:
        e = d.mask(name)
        if bin(e).count("1") != 2:
            raise DesignError(f"{name!r} is not a two-way interaction (write it as \"a x b\")")
        aliased = [d.name(m) for m in _alias_set(d, e) if m in mains]
        if aliased:
            raise DesignError(f"{name} cannot be estimated in this resolution-{_roman(d.resolution)} design: "
                              f"it is aliased with the main effect of {' and '.join(aliased)}")
        out[name] = _contrast(d, e, y, 2.0)
    return out


def _roman(n: int | None) -> str:
    return {3: "III", 4: "IV", 5: "V", 6: "VI", 7: "VII", 8: "VIII"}.get(n or 0, str(n))

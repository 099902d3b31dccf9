"""Seeds added until decided: a group-sequential rule, so that looking after every round is not fishing.

Testing at 0.05 after every round of seeds finds an "effect" in noise far more often than 5% of the
time: each look is another chance. The rule here spends the 5% over the looks instead (Lan and
DeMets 1983), with the O'Brien-Fleming-type spending function

    alpha*(t) = 2 - 2 Phi(z_{alpha/2} / sqrt(t))        t = information time, alpha*(1) = alpha

so early looks get almost nothing (|z| > 4.38 at t = 0.2 for alpha = 0.05) and the last look keeps
nearly the whole level (|z| > 2.06 after five equal looks, 2.12 after looks at 3, 4, ..., 10 of 10
seeds). The z boundary at each look is the one whose crossing probability, given no earlier
crossing, is that look's share of alpha; it comes from integrating the density of the statistic
over the looks (Armitage, McPherson and Rowe 1969) on a grid with Simpson's rule, accurate to
about 1e-6 in z.

Information time is the seeds, t = n / n_max. A contrast's statistic at successive looks has the
covariance of a sum of independent increments when information is counted as 1 / Var(estimate);
with the test images' part of the variance shared by every look, that information grows more
slowly than n, so the true correlation between two looks is above the sqrt(n_j / n_k) that seeds
assume. A higher correlation only makes a crossing rarer: the rule stays at or below alpha (with a
test set that is all of the variance, every look is the same test, crossed at most as often as the
last, whose boundary exceeds z_{alpha/2}). Counting seeds needs no estimate of the variance parts,
so the boundaries are fixed before any data, the same for every effect, as Lan-DeMets requires.
In simulated grids with no effect (tests/design) the rule gave false verdicts in 5.0% of studies
when the seeds' part dominates and 2.8% when the test images' part does; testing at 0.05 after
every round gave 15% and 10%. What counting seeds costs is a little power where the images dominate.

Several effects are tested with Holm's step-down over group-sequential boundaries (Maurer and
Bretz 2013): at every look the undecided effects are ranked by |z|; the first is tested at the
boundary for alpha / r (r effects undecided), and each one decided frees its share for the rest.
"""
from __future__ import annotations

import functools
import math
from typing import Literal, Sequence

import numpy as np

from runner.design.power import POWER, seeds_needed

__all__ = ["ALPHA", "Verdict", "spending", "boundaries", "boundaries_at", "decide", "decide_effects",
           "can_still_decide", "still_in_race"]

ALPHA = 0.05  # the family's two-sided level, as in the report
Verdict = Literal["improves", "hurts", "undecided"]
_FINE = 8  # grid points per standard deviation of the smallest increment between looks (16 moves z by < 1e-6)
_MOST = 3001  # grid points at most (a look's kernel is points x points floats)
_REACH = 9.0  # a look's grid reaches at most this many standard deviations: the density beyond is < 1e-18


def spending(t: float, alpha: float) -> float:
    """The O'Brien-Fleming-type alpha spent by information time t in (0, 1]: 2 - 2 Phi(z_{alpha/2} / sqrt(t))."""
    from scipy import stats  # scipy on the paths that use it: runner.spec imports this package

    return float(2 * stats.norm.sf(stats.norm.isf(alpha / 2) / math.sqrt(t)))


def boundaries(rounds: Sequence[int], n_max: int, alpha: float = ALPHA) -> list[float]:
    """The two-sided z boundary at each look, after rounds[k] seeds, of a rule that stops at n_max.

    A look's boundary depends only on the looks up to it, so adding a round leaves the earlier
    ones as they were. Information time is n / n_max (the module's docstring says why).
    """
    rounds = list(rounds)
    if not rounds or any(b <= a for a, b in zip(rounds, rounds[1:])) or rounds[0] < 1 or rounds[-1] > n_max:
        raise ValueError(f"rounds must rise strictly from 1 or more up to n_max = {n_max}, not {rounds}")
    return boundaries_at([n / n_max for n in rounds], alpha)


def boundaries_at(fractions: Sequence[float], alpha: float = ALPHA) -> list[float]:
    """The two-sided z boundaries at information fractions rising in (0, 1]: alpha spent O'Brien-Fleming-like."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), not {alpha}")
    fractions = tuple(float(t) for t in fractions)
    rising = all(a < b for a, b in zip(fractions, fractions[1:]))
    if not fractions or not rising or not 0 < fractions[0] or fractions[-1] > 1:
        raise ValueError(f"information fractions must rise strictly within (0, 1], not {list(fractions)}")
    return list(_boundaries(fractions, float(alpha)))


@functools.lru_cache(maxsize=512)
def _boundaries(fractions: tuple[float, ...], alpha: float) -> tuple[float, ...]:
    """Armitage-McPherson-Rowe: carry the sub-density of W(t) = Z sqrt(t) over the region not yet crossed."""
    from scipy import stats

    out: list[float] = []
    smallest = min(math.sqrt(b - a) for a, b in zip((0.0, *fractions), fractions))
    x = weighted = None  # the last look's grid and its sub-density times Simpson's weights
    t_before = 0.0
    for k, t in enumerate(fractions):
        share = spending(t, alpha) - spending(t_before, alpha) if t_before else spending(t, alpha)
        step = math.sqrt(t - t_before)  # sd of the increment W(t) - W(t_before)
        if weighted is None:
            c = float(stats.norm.isf(share / 2)) if share > 0 else math.inf
        else:
            c = _boundary(x, weighted, step, math.sqrt(t), share)
        out.append(c)
        if k == len(fractions) - 1:
            break
        reach = min(c * math.sqrt(t), _REACH * math.sqrt(t))
        y, w = _grid(reach, 2 * math.ceil(reach * _FINE / smallest) + 1)
        if weighted is None:
            density = _normal_pdf(y / step) / step
        else:
            density = (_normal_pdf((y[:, None] - x[None, :]) / step) / step) @ weighted  # (points,)
        x, weighted, t_before = y, w * density, t
    return tuple(out)


def _grid(reach: float, points: int) -> tuple[np.ndarray, np.ndarray]:
    """`points` (odd) points on [-reach, reach] and Simpson's weights for them."""
    points = min(max(points, 201), _MOST)
    x = np.linspace(-reach, reach, points)
    w = np.ones(points)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    return x, w * (x[1] - x[0]) / 3


def _normal_pdf(z: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def _boundary(x: np.ndarray, weighted: np.ndarray, step: float, root_t: float, share: float) -> float:
    """The z whose crossing probability at this look, with no crossing before, is `share`."""
    from scipy import optimize, special

    def crossing(c: float) -> float:
        b = c * root_t  # the boundary on W's scale
        return float(weighted @ (special.ndtr((x - b) / step) + special.ndtr((-b - x) / step))) - share
    if share <= 0 or crossing(40.0) >= 0:
        return math.inf
    return float(optimize.brentq(crossing, 0.0, 40.0, xtol=1e-10))


def decide(z: float, look: int, bounds: Sequence[float], direction: str = "maximize") -> Verdict:
    """The verdict of a contrast's z (on minus off) at look `look` (1 for the first) against `bounds`."""
    if not 1 <= look <= len(bounds):
        raise ValueError(f"look {look} is not among the {len(bounds)} looks of the boundaries")
    if not abs(z) >= bounds[look - 1]:
        return "undecided"
    return "improves" if (z > 0) == (direction == "maximize") else "hurts"


def decide_effects(zs: Sequence[float | None], rounds: Sequence[int], n_max: int, alpha: float = ALPHA,
                   decided: Sequence[Verdict] | None = None, direction: str = "maximize") -> list[Verdict]:
    """Every effect's verdict at the latest look (after rounds[-1] seeds), Holm over group-sequential boundaries.

    Args:
        zs: each effect's statistic (power.z_statistic; None when it has none: it stays undecided
            and still counts in the family).
        rounds: the seeds at every look so far, the current one last.
        decided: the verdicts of the previous look; a decided effect stays decided and frees its share.
        direction: "maximize" (accuracy: a positive z improves) or "minimize".
    """
    verdicts: list[Verdict] = list(decided) if decided is not None else ["undecided"] * len(zs)
    if len(verdicts) != len(zs):
        raise ValueError(f"{len(zs)} statistics but {len(verdicts)} earlier verdicts")
    open_ = sorted((j for j, v in enumerate(verdicts) if v == "undecided" and zs[j] is not None),
                   key=lambda j: -abs(zs[j]))  # type: ignore[arg-type]
    undecided = sum(v == "undecided" for v in verdicts)
    for j in open_:
        bounds = boundaries(rounds, n_max, alpha / undecided)
        verdict = decide(zs[j], len(rounds), bounds, direction)  # type: ignore[arg-type]
        if verdict == "undecided":
            break  # Holm's step-down stops at the first it cannot decide
        verdicts[j] = verdict
        undecided -= 1
    return verdicts


def can_still_decide(estimate: float, sigma_seed2: float, sigma_image2: float, rounds: Sequence[int], n_max: int,
                     alpha: float = ALPHA, power: float = POWER) -> bool:
    """Whether rounds of one seed up to n_max could decide an effect of the size estimated (else futile).

    It plans as if the estimate were the truth, at the level of the last look's boundary, with
    power.seeds_needed.

    Args:
        sigma_seed2, sigma_image2: the effect's variance parts (power.split_contrast), per seed.
        rounds: the seeds at every look so far, the current one last.
        alpha: the level the effect would be tested at: alpha / (effects undecided) under Holm.
    """
    from scipy import stats

    n = rounds[-1]
    if n >= n_max:
        return False
    planned = [*rounds, *range(n + 1, n_max + 1)]
    last = boundaries(planned, n_max, alpha)[-1]
    level = float(2 * stats.norm.sf(last))  # the fixed-sample level that the last boundary amounts to
    return seeds_needed(estimate, sigma_seed2, sigma_image2, level, power, max_seeds=n_max) is not None


def still_in_race(zs: Sequence[float | None], rounds: Sequence[int], n_max: int, alpha: float = ALPHA) -> list[bool]:
    """Which configurations are not yet shown worse than the best (racing: only they get more seeds).

    Args:
        zs: one per configuration other than the best at the start of the race, the z of "it minus
            the best" oriented so that positive is better; None for one already out (it stays out).
            Their number is the race's Bonferroni family, fixed from the first look to the last.
        rounds: the seeds at every look so far, the current one last (those in the race share them).

    Each comparison is tested at alpha / len(zs), Bonferroni rather than Holm: the best can change
    from look to look and configurations leave the race, so the family a step-down would recycle
    alpha within is not fixed. Bonferroni needs no order: a truly best configuration can only be
    dropped by crossing the lower boundary against one of the len(zs) others that lead at some
    look, so it is dropped with probability at most alpha / 2 whichever leads when.
    """
    c = boundaries(rounds, n_max, alpha / len(zs))[-1] if zs else math.inf
    return [z is not None and z > -c for z in zs]

"""What decides a verdict: a contrast's variance split into its seed part and its test-image part.

A contrast (a main effect, on minus off; or a configuration minus the best) is measured on every
test image for every seed. Write its per-image value, in points, as

    D[s, i] = delta + a_s + b_i + e_si        s = 1..n seeds (rows), i = 1..N test images

with a_s the seed's shift (variance sigma_a^2), b_i how much the contrast differs on image i
(sigma_b^2; the same images for every seed), and e_si the rest (sigma_e^2: an image that flips on
one seed and not another). The estimate is the mean of D, and with a test set drawn afresh:

    Var(mean D) = sigma_a^2 / n + sigma_b^2 / N + sigma_e^2 / (n N)
                = (sigma_a^2 + sigma_e^2 / N) / n   +   sigma_b^2 / N
                =          sigma_seed^2 / n          +   sigma_image^2

The image part sigma_b^2 / N does not shrink with seeds: every seed is tested on the same images.
The flips e_si do shrink (they are independent from seed to seed), so they belong to the seed part.
From one study's (n, N) array the two-way analysis of variance gives both without bias (before
sigma_image^2 is cut at 0):

    sigma_seed^2  = var over seeds of d_s = mean_i D[s, i]                (= MS_seeds / N)
    sigma_image^2 = (MS_images - MS_residual) / (n N)

where MS_images = n * var over images of mean_s D[s, i] estimates sigma_e^2 + n sigma_b^2, and
MS_residual (the seed x image residual) estimates sigma_e^2. The variance over images of the
per-image mean alone (MS_images / (n N)) would count the flips a second time, once in each part:
in tests/design that standard error is 25% too wide at 3 seeds.

The report's bootstrap resamples the seeds and the images each on its own, so its variance counts
the flips in both parts (about sigma_seed^2 (n - 1) / n^2 + sigma_image^2 + sigma_e^2 / (n N)); in a
synthetic study of 10,000 MNIST-like images (40 replicates at each of 3, 5 and 10 seeds) its
standard error came out 20-25% above the sampling spread, which the figures here predict.

All figures here use the normal approximation: with thousands of test images the image part is
known almost exactly, and the report's bootstrap is a z-like test. With few seeds and the seed
part dominant, a t-test would need more: at 2 degrees of freedom the smallest detectable effect
is 1.9 times the normal figure, at 5 1.25 times, at 20 1.05 times.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import numpy as np

__all__ = ["VarianceSplit", "split_variance", "split_contrast", "standard_error", "z_statistic",
           "minimum_detectable_effect", "floor", "seeds_needed", "holm_levels", "POWER"]

POWER = 0.8  # the power every planning figure is computed at unless told otherwise


class VarianceSplit(NamedTuple):
    """A contrast's variance parts, in squared points: Var(estimate) = sigma_seed2 / n + sigma_image2."""
    sigma_seed2: float  # one seed's variance: seed shifts and image flips; shrinks as 1/n
    sigma_image2: float  # the test images' share: the same images for every seed; never shrinks


def split_contrast(contrast: np.ndarray, rows_per_seed: int = 1) -> VarianceSplit:
    """The seed part and the test-image part of a contrast's variance, from its (rows, images) values.

    Args:
        contrast: (rows, images) per-image values in points, one row per seed (for a main effect
            on minus off: 100 * (correct_on - correct_off)); its mean is the estimate.
        rows_per_seed: how many independent rows each seed adds (a main effect over a full 2^k grid
            pairs 2^(k-1) settings of the other factors per seed, as the report's bootstrap does);
            sigma_seed2 is given per seed, that is, the rows' variance divided by this.

    sigma_image2 is cut at 0; where it is small beside the image flips and the seeds are few, that
    makes it noisy and high on average (synthetic: +40% at 3 seeds, +4% at 10).
    """
    c = np.asarray(contrast, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] < 2 or c.shape[1] < 2:
        raise ValueError(f"a contrast needs at least 2 rows and 2 images, not shape {c.shape}")
    n, images = c.shape
    grand = float(c.mean())
    c = c - grand  # the sums of squares below are about the grand mean
    row_means = c.mean(1)  # (rows,): each row's estimate d_s, less the grand mean
    image_means = c.mean(0)  # (images,)
    ss_rows = images * float(row_means @ row_means)
    ss_images = n * float(image_means @ image_means)
    ss_residual = max(0.0, float(np.vdot(c, c)) - ss_rows - ss_images)  # the seed x image residual
    ms_residual = ss_residual / ((n - 1) * (images - 1))  # estimates sigma_e^2
    ms_images = ss_images / (images - 1)  # estimates sigma_e^2 + n sigma_b^2
    sigma_image2 = max(0.0, (ms_images - ms_residual) / n) / images
    sigma_seed2 = ss_rows / images / (n - 1) / rows_per_seed  # the variance of the rows' means
    return VarianceSplit(sigma_seed2, sigma_image2)


def split_variance(correct_on: np.ndarray, correct_off: np.ndarray) -> VarianceSplit:
    """(sigma_seed2, sigma_image2) of "on minus off" from (seeds, images) arrays of 0/1 correctness.

    Row s of both arrays is seed s; the contrast per seed is 100 * (mean(on_s) - mean(off_s)).
    """
    on, off = np.asarray(correct_on, dtype=np.float64), np.asarray(correct_off, dtype=np.float64)
    if on.shape != off.shape:
        raise ValueError(f"correct_on is {on.shape} but correct_off is {off.shape}: pair them by seed and image")
    return split_contrast(100.0 * (on - off))


def standard_error(sigma_seed2: float, sigma_image2: float, n: float) -> float:
    """The standard error, in points, of a contrast's mean over n seeds."""
    return math.sqrt(sigma_seed2 / n + sigma_image2)


def z_statistic(estimate: float, sigma_seed2: float, sigma_image2: float, n: int, *,
                df_seed: float | None = None) -> float:
    """The normal score with the p-value of t = estimate / standard error (the sequential rule's statistic).

    t's degrees of freedom are Satterthwaite's: the seed part's df_seed (n - 1 unless told, e.g.
    n * rows_per_seed - 1) and the image part's as good as infinite. With the seed part known from 3
    seeds only, t = 2.5 is as strong as z = 1.5, and the sequential boundaries are in z.
    """
    from scipy import special  # scipy on the paths that use it: runner.spec imports this package

    se = standard_error(sigma_seed2, sigma_image2, n)
    if se == 0.0:
        return 0.0 if estimate == 0.0 else math.copysign(math.inf, estimate)
    t = estimate / se
    seed_part = sigma_seed2 / n
    df = n - 1 if df_seed is None else df_seed
    if seed_part == 0.0:
        return t
    if df <= 0:
        raise ValueError(f"the seed part of {n} seed{'s' * (n != 1)} has no degrees of freedom: give df_seed")
    dof = df * (se ** 2 / seed_part) ** 2
    return float(math.copysign(-special.ndtri(special.stdtr(dof, -abs(t))), t))  # the normal quantile of t's tail


def _z_sum(alpha: float, power: float) -> float:
    """z_{1 - alpha/2} + z_{power}: how many standard errors a detectable effect spans."""
    from scipy import stats

    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError(f"alpha and power must lie in (0, 1), not {alpha} and {power}")
    return float(stats.norm.isf(alpha / 2) + stats.norm.ppf(power))


def minimum_detectable_effect(sigma_seed2: float, sigma_image2: float, n: float, alpha: float,
                              power: float = POWER) -> float:
    """The smallest |effect|, in points, that n seeds detect with `power` at two-sided level `alpha`.

    alpha is the level the contrast is tested at: after Holm, alpha / (m - rank) (`holm_levels`).
    The normal approximation (z_{1-alpha/2} + z_power) * SE(n); the far tail's power is left out.
    """
    return _z_sum(alpha, power) * standard_error(sigma_seed2, sigma_image2, n)


def floor(sigma_image2: float, alpha: float, power: float = POWER) -> float:
    """The smallest detectable |effect| with unlimited seeds: what the test images alone allow."""
    return _z_sum(alpha, power) * math.sqrt(sigma_image2)


def seeds_needed(effect: float, sigma_seed2: float, sigma_image2: float, alpha: float, power: float = POWER,
                 max_seeds: int | None = None) -> int | None:
    """The fewest seeds (2 at least) at which `effect` is detectable; None when it is not.

    None means the floor of the test images is at or above |effect| ("cannot be decided with
    this test set"), or, with max_seeds, that more than max_seeds would be needed; `floor` tells
    the two apart.
    """
    k = _z_sum(alpha, power)
    room = (abs(effect) / k) ** 2 - sigma_image2  # the variance the seed part may still have
    if room <= 0.0:
        return None
    n = max(2, math.ceil(sigma_seed2 / room * (1 - 1e-12)))  # the tolerance: a ratio that is an integer
    return None if max_seeds is not None and n > max_seeds else n


def holm_levels(ps: Sequence[float | None], alpha: float) -> list[float | None]:
    """The level Holm's step-down compares each p-value with: alpha / (m - rank), rank 0 for the smallest.

    The level a contrast "was tested at", for `minimum_detectable_effect`; None stays None.
    """
    order = sorted((i for i, p in enumerate(ps) if p is not None), key=lambda i: (ps[i], i))
    out: list[float | None] = [None] * len(ps)
    for rank, i in enumerate(order):
        out[i] = alpha / (len(order) - rank)
    return out

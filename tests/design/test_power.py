"""runner/design/power.py: the variance split against synthetic studies of known variances, and the figures
it gives (standard errors, detectable effects, the floor, seeds needed, Holm's levels, z)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from runner.design import (floor, holm_levels, minimum_detectable_effect, seeds_needed, split_contrast, split_variance,
                           standard_error, z_statistic)

# ---------------------------------------------------------------- synthetic studies


def synthetic(rng: np.random.Generator, seeds: int, images: int = 2000, hard: float = 0.1, shift: float = 0.03,
              spread: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """(on, off) correctness, (seeds, images) each, of one study on a test set drawn afresh.

    A share `hard` of the images are hard: each has a latent difficulty q (its chance of being right,
    uniform on [0.35, 0.65]) and its own effect of "on", +-spread/2 on that chance (mean 0: no effect
    over all digits); each seed shifts each arm's chance on the hard images by N(0, shift^2). The
    other images are always right.
    """
    is_hard = rng.random(images) < hard
    q = rng.uniform(0.35, 0.65, images)
    own = rng.choice([-spread, spread], images) / 2
    u = rng.normal(0, shift, (2, seeds, 1))
    p_on = np.where(is_hard, q + own + u[0], 1.0)  # (seeds, images)
    p_off = np.where(is_hard, q - own + u[1], 1.0)
    return rng.random(p_on.shape) < p_on, rng.random(p_off.shape) < p_off


def known(images: int = 2000, hard: float = 0.1, shift: float = 0.03, spread: float = 0.1) -> tuple[float, float]:
    """(sigma_seed2, sigma_image2) of `synthetic`'s contrast, from its parameters, in squared points."""
    flips = 0.25 - (0.3 ** 2 / 12 + spread ** 2 / 4 + shift ** 2)  # E[p (1 - p)] of a hard image
    seed = 1e4 * (hard ** 2 * 2 * shift ** 2 + hard * 2 * flips / images)
    return seed, 1e4 * hard * spread ** 2 / images


def spread_of_estimates(n: int, studies: int, rng: np.random.Generator, **kw) -> tuple[float, float, float]:
    """(simulated sd of the estimate, predicted sd, predicted sd if the image part were the per-image means'
    variance / N) over `studies` synthetic studies of n seeds; the predictions are root mean variances."""
    estimates, predicted, naive = [], [], []
    for _ in range(studies):
        on, off = synthetic(rng, n, **kw)
        contrast = 100.0 * (on.astype(np.float64) - off)
        estimates.append(contrast.mean())
        seed2, image2 = split_variance(on, off)
        predicted.append(seed2 / n + image2)
        naive.append(seed2 / n + contrast.mean(0).var(ddof=1) / contrast.shape[1])
    return float(np.std(estimates, ddof=1)), math.sqrt(np.mean(predicted)), math.sqrt(np.mean(naive))


# ---------------------------------------------------------------- power


@pytest.mark.parametrize("n", [3, 10])
def test_the_predicted_standard_error_is_within_15_percent_of_the_simulated_spread(n):
    sd, predicted, naive = spread_of_estimates(n, 600, np.random.default_rng(n))
    assert abs(predicted / sd - 1) < 0.15, (n, sd, predicted)  # seen: 1.01 at 3 seeds, 0.98 at 10
    assert abs(predicted / math.sqrt(known()[0] / n + known()[1]) - 1) < 0.15
    if n == 3:  # counting the images' flips in both parts would fail the same check
        assert naive / sd > 1.15, (sd, naive)


def test_the_split_recovers_the_known_parts():
    rng = np.random.default_rng(7)
    splits = np.array([split_variance(*synthetic(rng, 10, spread=0.2)) for _ in range(200)])
    seed2, image2 = known(spread=0.2)
    assert splits[:, 0].mean() == pytest.approx(seed2, rel=0.05)
    assert splits[:, 1].mean() == pytest.approx(image2, rel=0.1)


def test_with_no_seed_shift_the_floor_is_the_known_image_variance():
    rng = np.random.default_rng(11)
    splits = np.array([split_variance(*synthetic(rng, 10, shift=0.0, spread=0.2)) for _ in range(200)])
    seed2, image2 = splits.mean(0)
    truth = floor(known(shift=0.0, spread=0.2)[1], 0.05)
    assert minimum_detectable_effect(seed2, image2, 10 ** 6, 0.05) == pytest.approx(floor(image2, 0.05), rel=1e-3)
    assert minimum_detectable_effect(seed2, image2, 10 ** 6, 0.05) == pytest.approx(truth, rel=0.05)
    assert minimum_detectable_effect(seed2, image2, 3, 0.05) > 1.5 * truth  # the seeds' flips still count at 3


def test_with_every_image_decided_the_seeds_add_nothing():
    rng = np.random.default_rng(3)
    on, off = rng.random(500) < 0.9, rng.random(500) < 0.85  # the same outcome on every seed
    split = split_variance(np.tile(on, (4, 1)), np.tile(off, (4, 1)))
    per_image = 100.0 * (on.astype(float) - off)
    assert split.sigma_seed2 == pytest.approx(0.0, abs=1e-12)
    assert split.sigma_image2 == pytest.approx(per_image.var(ddof=1) / 500)
    assert minimum_detectable_effect(*split, 2, 0.05) == pytest.approx(floor(split.sigma_image2, 0.05))


def test_rows_per_seed_gives_the_seed_part_per_seed():
    rng = np.random.default_rng(5)
    rows = rng.normal(0, 10, (12, 300)) + rng.normal(0, 1, (12, 1))
    assert split_contrast(rows, rows_per_seed=4).sigma_seed2 == pytest.approx(split_contrast(rows).sigma_seed2 / 4)
    assert split_contrast(rows, rows_per_seed=4).sigma_image2 == split_contrast(rows).sigma_image2


def test_the_minimum_detectable_effect_is_2_8_standard_errors_at_80_percent():
    se = standard_error(0.03, 0.002, 5)
    assert se == pytest.approx(math.sqrt(0.03 / 5 + 0.002))
    assert minimum_detectable_effect(0.03, 0.002, 5, 0.05) == pytest.approx((1.959964 + 0.841621) * se, rel=1e-6)
    assert minimum_detectable_effect(0.03, 0.002, 5, 0.0125) > minimum_detectable_effect(0.03, 0.002, 5, 0.05)
    assert floor(0.002, 0.05, 0.9) == pytest.approx((1.959964 + 1.281552) * math.sqrt(0.002), rel=1e-6)


def test_seeds_needed_is_the_first_n_whose_detectable_effect_is_below_the_effect():
    seed2, image2 = 0.04, 0.0009
    for effect in (0.15, 0.2, -0.3, 0.5):
        n = seeds_needed(effect, seed2, image2, 0.05)
        assert minimum_detectable_effect(seed2, image2, n, 0.05) <= abs(effect)
        assert n == 2 or minimum_detectable_effect(seed2, image2, n - 1, 0.05) > abs(effect)
    assert seeds_needed(0.05, seed2, image2, 0.05) is None  # the floor, 0.084, is above it
    assert floor(image2, 0.05) > 0.05
    assert seeds_needed(0.15, seed2, image2, 0.05, max_seeds=10) is None
    assert seeds_needed(0.15, seed2, image2, 0.05, max_seeds=100) == seeds_needed(0.15, seed2, image2, 0.05)
    assert seeds_needed(0.0, seed2, 0.0, 0.05) is None


def test_holm_levels_are_alpha_over_those_left():
    assert holm_levels([0.03, 0.001, None, 0.2], 0.05) == [0.05 / 2, 0.05 / 3, None, 0.05]


def test_z_statistic_is_the_normal_score_of_t():
    z = z_statistic(1.2, 0.6, 0.0, 3)  # t = 1.2 / sqrt(0.2), 2 degrees of freedom
    assert z == pytest.approx(stats.norm.isf(stats.t.sf(1.2 / math.sqrt(0.2), 2)))
    assert z_statistic(-1.2, 0.6, 0.0, 3) == pytest.approx(-z)
    assert z_statistic(0.3, 0.0, 0.01, 3) == pytest.approx(3.0)  # the image part alone: a z
    assert abs(z_statistic(1.2, 0.6, 0.0, 3)) < abs(z_statistic(1.2, 0.6, 0.0, 3, df_seed=1000)) < 1.2 / math.sqrt(0.2)

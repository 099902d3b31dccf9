"""runner/results/stats.py: Holm's correction, and a bootstrap over seeds and test images that sees what the
paired t-test cannot. (The effects the report states from them: tests/report/test_summary.py.)"""
from __future__ import annotations

import numpy as np
import pytest

from runner.results.stats import BOOTSTRAP, CHUNK, bootstrap, holm, paired_t


def test_holm_steps_down_and_stays_monotone():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, None, 0.9]) == [pytest.approx(1.0), None, pytest.approx(1.0)]


def test_the_bootstrap_counts_test_image_sampling_that_the_t_test_cannot_see():
    rng = np.random.default_rng(1)
    # three seed pairs that differ by exactly the same 8 images out of 400: the t-test sees no spread at all
    pair = np.zeros(400)
    pair[rng.choice(400, 8, replace=False)] = 100.0
    same = np.stack([pair, pair, pair])
    mean, ci, _ = paired_t(list(same.mean(1)))
    assert ci == (mean, mean)  # a zero-width interval: as if the 400 images were the whole world
    [((lo, hi), p)] = bootstrap([same])
    assert lo < mean < hi and hi - lo > 1.0  # 8 of 400 images: about +2 points, give or take 1.4
    assert p < 0.05
    noise = rng.choice([-100.0, 0.0, 0.0, 100.0], size=(3, 400))  # no effect, only noise
    [((lo, hi), p)] = bootstrap([noise])
    assert lo < 0 < hi and p > 0.05
    assert bootstrap([same]) == bootstrap([same])  # seeded: the same trials give the same report
    assert bootstrap([None, same[:1]]) == [None, None]  # no predictions, or one pair: nothing to resample


def test_a_resampled_mean_of_exactly_zero_counts_on_both_sides_whatever_the_blas():
    """Two pairs that each differ by one image won and one lost: many resamples balance exactly at 0. Their
    sign used to come from rounding in c @ (counts / n), which BLAS's kernel and threads decided (p moved by
    up to 0.01 between machines); the sums are exact now, so p is the integer count's, the same everywhere."""
    c = np.zeros((2, 50))
    c[0, 0] = c[1, 1] = 100.0
    c[0, 2] = c[1, 3] = -100.0
    [(_, p)] = bootstrap([c])
    rng, n, below, above = np.random.default_rng(0), 50, 0, 0  # the same draws, in integers
    for start in range(0, BOOTSTRAP, CHUNK):
        m = min(CHUNK, BOOTSTRAP - start)
        counts = rng.multinomial(n, np.full(n, 1 / n), size=m).T
        picks = rng.integers(0, 2, size=(m, 2))
        totals = (np.rint(c).astype(np.int64) @ counts)[picks, np.arange(m)[:, None]].sum(1)
        below, above = below + int((totals <= 0).sum()), above + int((totals >= 0).sum())
    assert p == min(1.0, 2 * (min(below, above) + 1) / (BOOTSTRAP + 1))
    assert below + above > BOOTSTRAP  # ties at 0 happened, and count on both sides

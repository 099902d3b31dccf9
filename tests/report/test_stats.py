"""runner/results/stats.py: effects as paired t-tests with Holm's correction, a bootstrap over seeds
and test images beside them, and every configuration against the best."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from runner.report import build_report, holm, render_markdown
from runner.results.stats import CHUNK, BOOTSTRAP, bootstrap, paired_t
from runner.spec import load_spec

from tests.report.synthetic import BN_EFFECT, MLP_ACC


def _effect(summary: dict, factor: str) -> dict:
    return next(e for e in summary["effects"] if e["factor"] == factor)


def test_effect_verdicts_follow_the_numbers(written):
    summary = json.loads((written / "summary.json").read_text())
    bn, aug = _effect(summary, "batch_norm"), _effect(summary, "augment")
    assert (bn["from"], bn["to"], bn["verdict"]) == (False, True, "improves")
    assert bn["delta_mean"] == pytest.approx(BN_EFFECT, abs=0.05)
    assert bn["ci95"][0] > 0 and bn["p_value"] < 0.05
    assert aug["verdict"] == "no detectable effect"
    assert aug["ci95"][0] < 0 < aug["ci95"][1]
    assert bn["n_pairs"] == aug["n_pairs"] == 6  # 2 settings of the other factor x 3 seeds
    md = (written / "report.md").read_text()
    assert "batch_norm (false → true) improves test accuracy by 0.5" in md
    assert "augment (none → affine): no detectable effect on test accuracy" in md


def test_effect_is_a_paired_t_test_with_holm_correction(study, written):
    _, _, finals = study
    summary = json.loads((written / "summary.json").read_text())
    on = [finals[f"lenet5 dropout=0.0 batch_norm=true weight_decay=0.0 augment={a} label_smoothing=0.0", s]
          for a in ("none", "affine") for s in (0, 1, 2)]
    off = [finals[f"lenet5 dropout=0.0 batch_norm=false weight_decay=0.0 augment={a} label_smoothing=0.0", s]
           for a in ("none", "affine") for s in (0, 1, 2)]
    bn = _effect(summary, "batch_norm")
    assert bn["p_raw"] == pytest.approx(stats.ttest_rel(on, off).pvalue, rel=1e-4)
    assert bn["delta_mean"] == pytest.approx(np.mean(np.subtract(on, off)), abs=1e-4)
    for e in summary["effects"] + summary["interactions"]:
        assert e["p_value"] >= e["p_raw"]
    assert min(e["p_value"] for e in summary["effects"]) == pytest.approx(
        min(e["p_raw"] for e in summary["effects"]) * len(summary["effects"]), rel=1e-4)


def test_holm_steps_down_and_stays_monotone():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, None, 0.9]) == [pytest.approx(1.0), None, pytest.approx(1.0)]


def test_every_configuration_is_compared_with_the_best_paired_by_seed(study):
    spec_path, url, finals = study
    report = build_report(load_spec(spec_path), url)
    best = report.configs[0]
    assert len(report.versus_best) == len(report.configs) - 1
    mlp = next(e for e in report.versus_best if e.model == "mlp")
    expected = [MLP_ACC + 0.1 * s - f for s, f in zip(best.seeds, best.final)]
    assert mlp.n_pairs == 3 and mlp.delta_mean == pytest.approx(sum(expected) / 3)
    assert mlp.verdict == "worse" and mlp.ci95[1] < 0
    text = render_markdown(report)
    assert "### Against the best configuration" in text and f"| `{mlp.to}` |" in text
    assert "runner-up" in text


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


def test_effects_and_comparisons_carry_the_bootstrap_and_the_verdict_uses_it(report):
    summary = json.loads((report / "r" / "summary.json").read_text())
    [effect] = summary["effects"]
    assert effect["factor"] == "batch_norm" and effect["bootstrap_p_value"] is not None
    lo, hi = effect["bootstrap_ci95"]
    assert lo <= effect["delta_mean"] <= hi
    assert all(v["bootstrap_ci95"] is not None for v in summary["versus_best"])
    text = (report / "r" / "report.md").read_text()
    assert "| 95% CI, seeds + test images | p (Holm), seeds + test images |" in text
    assert "The verdicts, and the sentences below, use the bootstrap." in text

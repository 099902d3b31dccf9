"""runner/report/summary.py: summary.json's effects: paired t-tests with Holm's correction, verdicts that follow
the numbers, and the bootstrap over seeds and test images beside them (runner/results/stats.py)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from tests.report.synthetic import BN_EFFECT


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

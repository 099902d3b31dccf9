"""What decides a verdict, in the report: for every main effect and every comparison with the best, the
smallest effect its seeds detect (80% power, at its Holm level) and the seeds that would detect the effect
observed, or the floor that the test images set. Synthetic trials with per-image predictions, nothing trained.

The test set has 2,000 images: 1,600 always right; 300 that batch_norm gets right (+15 points: a large
effect); 20 that augment moves, 11 right with it and 9 without (+0.1 points, far below what 2,000 images
resolve); 80 hard ones, right or wrong by chance in every trial (the seeds' noise).
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from runner.cli import cli
from runner.design import floor, holm_levels, minimum_detectable_effect, seeds_needed, split_contrast
from runner.spec import Point

from tests.report.predicted import write_study

IMAGES = 2000
SPEC = """
[study]
name = "power"
seeds = [0, 1, 2]
metric = "{metric}"
[data]
train_limit = 600
test_limit = 2000
[train]
epochs = 3
[models.lenet5]
arch = "lenet5"
[grid]
batch_norm = [false, true]
augment = ["none", "affine"]
"""


def correct(point: Point) -> np.ndarray:
    """(IMAGES,) which test images the point's trial gets right."""
    bn, aug = point.reg("batch_norm"), point.reg("augment") == "affine"
    out = np.zeros(IMAGES, dtype=bool)
    out[:1600] = True
    out[1600:1900] = bn
    out[1900:1911] = aug
    out[1911:1920] = not aug
    rng = np.random.default_rng([point.seed, int(bn), int(aug)])
    out[1920:] = rng.random(80) < 0.5
    return out


def _report(tmp_path_factory, metric: str) -> tuple[dict, str, object]:
    root = tmp_path_factory.mktemp(metric)
    spec, url = write_study(root / "spec.toml", SPEC.format(metric=metric), correct, IMAGES, metric)
    result = CliRunner().invoke(cli, ["report", spec.path, "--storage", url, "--out", str(root / "r")])
    assert result.exit_code == 0, result.output
    return json.loads((root / "r" / "summary.json").read_text()), (root / "r" / "report.md").read_text(), spec


@pytest.fixture(scope="module")
def accuracy(tmp_path_factory):
    return _report(tmp_path_factory, "test_acc")


def _effect(summary: dict, factor: str) -> dict:
    return next(e for e in summary["effects"] if e["factor"] == factor)


def _contrast(spec, factor: str, on, off, other: str, values) -> np.ndarray:
    """The main effect's per-image rows, one per (other factor's value, seed): 100 * (right on - right off)."""
    rows = []
    for seed in spec.study.seeds:
        for v in values:
            a = correct(spec.point({factor: on, other: v}, seed))
            b = correct(spec.point({factor: off, other: v}, seed))
            rows.append(100.0 * (a.astype(float) - b))
    return np.stack(rows)


def test_every_effect_and_comparison_has_its_figures_in_the_tables(accuracy):
    summary, text, _ = accuracy
    for e in summary["effects"] + summary["versus_best"]:
        assert e["detectable"] > 0 and e["floor"] > 0 and e["detectable_seeds"] == 3
        assert any(e["level"] == pytest.approx(x, rel=1e-6) for x in (0.05 / 3, 0.025, 0.05))
        assert e["detectable"] > e["floor"]  # 3 seeds are fewer than unlimited
    assert "| detectable at 3 seeds (points) | seeds needed |" in text
    assert text.count("detectable at 3 seeds (points)") == 2  # the effects and the comparisons with the best
    assert "How many seeds?" in text


def test_a_large_effect_needs_few_seeds_and_one_below_the_floor_cannot_be_decided(accuracy):
    summary, text, _ = accuracy
    bn, aug = _effect(summary, "batch_norm"), _effect(summary, "augment")
    assert bn["verdict"] == "improves" and bn["delta_mean"] == pytest.approx(15.0, abs=0.5)  # give or take the hard
    assert bn["seeds_needed"] == 2  # 15 points against a floor of about 2
    assert aug["verdict"] == "no detectable effect"
    assert aug["seeds_needed"] is None and aug["floor"] > 0.3 > abs(aug["delta_mean"])  # 20 images that move
    # (about 0.22 points of image part) cannot resolve a difference of 2 of them
    line = next(x for x in text.splitlines() if x.startswith("- augment"))
    assert line.endswith(f"(detectable: ±{aug['detectable']:.2f} points with 3 seeds; cannot be decided with this "
                         f"test set: the floor is {aug['floor']:.2f} points).")
    line = next(x for x in text.splitlines() if x.startswith("- batch_norm"))
    assert f"(detectable: ±{bn['detectable']:.2f} points with 3 seeds; 2 seeds detect it with 80% power)." in line
    row = next(x for x in text.splitlines() if x.startswith("| augment | none → affine |"))
    assert row.endswith(f"| ±{aug['detectable']:.2f} | cannot be decided: floor {aug['floor']:.2f} |")


def test_the_figures_are_runner_design_s_for_the_same_arrays(accuracy):
    summary, _, spec = accuracy
    levels = holm_levels([e["bootstrap_p_raw"] for e in summary["effects"]], 0.05)
    for e, level in zip(summary["effects"], levels):
        other = "augment" if e["factor"] == "batch_norm" else "batch_norm"
        values = dict(spec.grid)[other]
        rows = _contrast(spec, e["factor"], e["to"], e["from"], other, values)
        split = split_contrast(rows, rows_per_seed=len(values))
        assert e["level"] == pytest.approx(level)
        assert e["detectable"] == pytest.approx(minimum_detectable_effect(*split, 3, level), rel=1e-6)
        assert e["floor"] == pytest.approx(floor(split.sigma_image2, level), rel=1e-6)
        assert e["seeds_needed"] == seeds_needed(rows.mean(), *split, level)
    best = summary["configs"][0]  # every other configuration minus the best, one row per seed
    others = summary["configs"][1:]
    levels = holm_levels([v["bootstrap_p_raw"] for v in summary["versus_best"]], 0.05)
    for v, c, level in zip(summary["versus_best"], others, levels):
        rows = np.stack([100.0 * (correct(spec.point({"model": "lenet5", **c["params"]}, s)).astype(float)
                                  - correct(spec.point({"model": "lenet5", **best["params"]}, s)))
                         for s in spec.study.seeds])
        split = split_contrast(rows)
        assert v["detectable"] == pytest.approx(minimum_detectable_effect(*split, 3, level), rel=1e-6)
        assert v["floor"] == pytest.approx(floor(split.sigma_image2, level), rel=1e-6)
        assert v["seeds_needed"] == seeds_needed(rows.mean(), *split, level)


def test_a_loss_ranked_study_leaves_the_figures_out_and_says_why_in_one_line(tmp_path_factory):
    summary, text, _ = _report(tmp_path_factory, "test_loss")
    for e in summary["effects"] + summary["versus_best"]:
        assert e["detectable"] is None and e["seeds_needed"] is None
    assert "seeds needed |" not in text and "detectable:" not in text
    [line] = [x for x in text.splitlines() if "would decide each verdict" in x]
    assert line.endswith("and this study is ranked by test loss.")

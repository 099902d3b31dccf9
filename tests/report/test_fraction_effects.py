"""The report of a fractional grid ([grid].design): main effects as contrasts over the fraction's runs, with
both tests and the power figures; interactions only where no main effect is aliased with them, each aliased
set named once. Synthetic trials with per-image predictions whose accuracy is exactly additive, nothing trained.

Of 1,000 test images, 800 are always right and 40 always wrong; each factor has 40 of its own, of which the
first n + seed are right with it on (dropout: with it off), the others never: every factor adds the same to
every run, and each seed a little more.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from runner.cli import cli
from runner.spec import Point, load_spec
from runner.store import Store

from tests.report.predicted import add_predicted_trial, write_study

IMAGES = 1000
OWN = {"dropout": 6, "batch_norm": 20, "weight_decay": 0, "augment": 10}  # n: images each factor moves
GRID = """
[study]
name = "frac"
seeds = [0, 1, 2]
[data]
train_limit = 600
test_limit = 1000
[train]
epochs = 3
[models.lenet5]
arch = "lenet5"
[grid]
design = {design}
dropout = [0.0, 0.5]
batch_norm = [false, true]
{weight_decay}augment = ["none", "affine"]
"""
WEIGHT_DECAY = "weight_decay = [0.0, 0.0005]\n"


def correct(point: Point) -> np.ndarray:
    """(IMAGES,) which test images the point's trial gets right: exactly additive in the factors."""
    out = np.zeros(IMAGES, dtype=bool)
    out[:800] = True
    for j, (axis, n) in enumerate(OWN.items()):
        on = point.reg(axis) not in (0.0, False, "none")
        moved = on != (axis == "dropout")  # dropout's images are right with it off: it hurts
        out[800 + 40 * j: 800 + 40 * j + n + point.seed] = moved
    return out


def _report(spec, url, out) -> tuple[dict, str]:
    result = CliRunner().invoke(cli, ["report", spec.path, "--storage", url, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return json.loads((out / "summary.json").read_text()), (out / "report.md").read_text()


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """(summary, report.md) of the half, the full grid, a half of three factors and a half that lists batch norm's
    values the other way round: the half ran first, and the full grid then trained only the other half (the
    same study), whose trials the last two read too."""
    root = tmp_path_factory.mktemp("frac")
    half, url = write_study(root / "half.toml", GRID.format(design='"half"', weight_decay=WEIGHT_DECAY), correct,
                            IMAGES)
    stored = {p.config_hash for p in half.points()}
    halves = _report(half, url, root / "half")
    (root / "full.toml").write_text(GRID.format(design='"full"', weight_decay=WEIGHT_DECAY))
    full = load_spec(root / "full.toml")
    store = Store(url)
    study = store.open_study("frac", "maximize")
    labels = np.random.default_rng(0).integers(0, 10, IMAGES)
    for point in full.points():
        if point.config_hash not in stored:
            add_predicted_trial(store, study, point, correct(point), labels)
    store.dispose()
    fulls = _report(full, url, root / "full")
    (root / "third.toml").write_text(GRID.format(design='"half"', weight_decay=""))
    thirds = _report(load_spec(root / "third.toml"), url, root / "third")
    flipped = GRID.format(design='"half"', weight_decay=WEIGHT_DECAY).replace("[false, true]", "[true, false]")
    (root / "flipped.toml").write_text(flipped)  # batch norm's "on" first: the other half, signs turned
    flips = _report(load_spec(root / "flipped.toml"), url, root / "flipped")
    (root / "runs.toml").write_text(GRID.format(design='"half"', weight_decay=WEIGHT_DECAY) + RUN_BESIDE)
    beside = _report(load_spec(root / "runs.toml"), url, root / "runs")
    return halves, fulls, thirds, flips, beside


RUN_BESIDE = '[[runs]]\nmodel = "lenet5"\ndropout = 0.5\n'  # a full-grid setting the half leaves out (-+++ of ABCD)


def test_a_run_beside_the_fraction_is_compared_with_the_best_and_changes_none_of_its_effects(reports):
    (half, _), *_, (beside, text) = reports
    assert len(beside["configs"]) == 16  # every stored trial of the study, the full grid's included, as a report reads
    for mine, theirs in zip(beside["effects"], half["effects"]):
        assert (mine["factor"], mine["delta_mean"], mine["n_pairs"]) == (theirs["factor"], theirs["delta_mean"],
                                                                          theirs["n_pairs"])
    assert any(e["to"] == "lenet5 dropout=0.5" for e in beside["versus_best"])


def _by_factor(summary: dict, family: str = "effects") -> dict[str, dict]:
    return {e["factor"]: e for e in summary[family]}


def test_the_half_fraction_gives_the_full_designs_main_effects(reports):
    (half, text), (full, _), _, (flipped, _), _ = reports
    halves, fulls = _by_factor(half), _by_factor(full)
    assert list(halves) == list(fulls) == list(OWN)
    for factor, n in OWN.items():
        expected = (n + 1) / 10 * (-1 if factor == "dropout" else 1)  # n + the mean seed, of 1,000 images
        assert fulls[factor]["delta_mean"] == pytest.approx(expected, abs=1e-9)
        assert halves[factor]["delta_mean"] == pytest.approx(fulls[factor]["delta_mean"], abs=1e-9)
        assert halves[factor]["n_pairs"] == 3 and fulls[factor]["n_pairs"] == 24  # seeds; pairs of 8 settings
    assert halves["batch_norm"]["verdict"] == "improves" and halves["dropout"]["verdict"] == "hurts"
    for e in half["effects"]:  # both tests and the power figures, as a full grid's
        assert e["ci95"] is not None and e["bootstrap_ci95"] is not None and e["detectable"] is not None
    assert "a contrast over its runs" in text and "| pairs |" in text
    flips = _by_factor(flipped)  # another half (I = -ABCD), each effect still on minus off
    assert flipped["design"]["lines"][0] == half["design"]["lines"][0]
    for factor in OWN:
        assert flips[factor]["delta_mean"] == pytest.approx(fulls[factor]["delta_mean"], abs=1e-9)
        assert (flips[factor]["from"], flips[factor]["to"]) == (fulls[factor]["from"], fulls[factor]["to"])
    assert len(half["configs"]) == 8 and len(full["configs"]) == 16


def test_the_report_names_each_aliased_set_once_and_estimates_only_what_no_main_effect_hides(reports):
    (half, text), (full, full_text), *_ = reports
    assert half["design"]["resolution"] == 4 and half["design"]["interactions_left_out"] == []
    assert full["design"] is None
    inters = _by_factor(half, "interactions")
    assert list(inters) == ["dropout x batch_norm", "dropout x weight_decay", "dropout x augment"]
    assert inters["dropout x batch_norm"]["aliases"] == ["weight_decay x augment"]
    for e in inters.values():  # additive: no interaction, and their aliases' sum is none either
        assert e["delta_mean"] == pytest.approx(0.0, abs=1e-9)
    for line in ("dropout is aliased with batch_norm x weight_decay x augment",
                 "dropout x batch_norm is aliased with weight_decay x augment"):
        assert text.count(line) == 1
    assert '[grid].design "half": 8 of the 16 settings, a 2^(4-1) fraction of resolution 4' in text
    assert "is aliased with" not in full_text


def test_a_resolution_three_design_leaves_the_two_way_interactions_out_with_a_note(reports):
    _, (full, _), (third, text), *_ = reports
    assert third["design"]["resolution"] == 3 and third["interactions"] == []
    assert third["design"]["interactions_left_out"] == ["dropout x batch_norm", "dropout x augment",
                                                        "batch_norm x augment"]
    [line] = [x for x in text.splitlines() if x.startswith("None can be estimated")]
    assert line == ("None can be estimated: this resolution-3 design aliases every two-way interaction with a main "
                    "effect (dropout x batch_norm, dropout x augment, batch_norm x augment).")
    thirds, fulls = _by_factor(third), _by_factor(full)
    for factor in ("dropout", "batch_norm", "augment"):  # additive: the aliased interactions add nothing
        assert thirds[factor]["delta_mean"] == pytest.approx(fulls[factor]["delta_mean"], abs=1e-9)

"""The report looks at the stored predictions: a bootstrap over seeds and test images beside the t-test,
confusion matrices, accuracy per class, the gallery of mistakes, and the raw trials.csv / epochs.csv."""
from __future__ import annotations

import csv
import io
import json

import numpy as np
import optuna
import pytest
from click.testing import CliRunner

from runner.cli import cli
from runner.report.stats import bootstrap, paired_t

SPEC = """
[study]
name = "rp"
seeds = [0, 1, 2]
[data]
train_limit = 1000
test_limit = 400
[train]
epochs = 2
batch_size = 100
lr = 0.05
threads = 1
[models.lenet5]
arch = "lenet5"
[models.mlp]
arch = "mlp"
hidden = [2]  # a poor MLP, ranked below plain LeNet-5 (see the last test)
[grid]
model = ["lenet5"]
batch_norm = [false, true]
[[runs]]
model = "mlp"
"""


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


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rp")
    (folder / "spec.toml").write_text(SPEC)
    with pytest.MonkeyPatch.context() as m:
        m.chdir(folder)
        for args in (["grid", "spec.toml"], ["report", "spec.toml", "--out", "r"]):
            result = CliRunner().invoke(cli, args)
            assert result.exit_code == 0, result.output
    return folder


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


def test_confusion_matrices_per_class_accuracy_and_the_gallery(report):
    text = (report / "r" / "report.md").read_text()
    assert "## Where the models are wrong" in text and "![Confusion matrices](confusion.png)" in text
    assert "| class | best: `" in text and "LeNet-5, every regularizer off: `lenet5`" in text
    assert "MLP, every regularizer off: `mlp`" in text
    assert (report / "r" / "confusion.png").stat().st_size > 0 and (report / "r" / "mistakes.png").stat().st_size > 0
    line = next(x for x in text.splitlines() if x.startswith("`") and "test images wrong" in x)
    wrong = int(line.split(" gets ")[1].split(" of the ")[0].replace(",", ""))
    trials = optuna.load_study(study_name="rp", storage="sqlite:///" + str(report / "db" / "runner.sqlite")).trials
    best_label = line.split("`")[1]
    seed0 = [t for t in trials if t.user_attrs["label"].startswith(best_label.split()[0]) and t.params["seed"] == 0
             and all(f"{k}={str(v).lower()}" in t.user_attrs["label"] for k, v in
                     (x.split("=") for x in best_label.split()[1:]))]
    assert any(round(400 * (1 - t.value / 100)) == wrong for t in seed0)  # the gallery counts the trial's mistakes


def test_the_raw_tables_hold_every_trial_and_epoch(report):
    trials = list(csv.DictReader(io.StringIO((report / "r" / "trials.csv").read_text())))
    epochs = list(csv.DictReader(io.StringIO((report / "r" / "epochs.csv").read_text())))
    assert len(trials) == 9 and len(epochs) == 18
    summary = json.loads((report / "r" / "summary.json").read_text())
    for c in summary["configs"]:  # every configuration's mean recomputes from trials.csv
        mine = [float(t["test_acc"]) for t in trials if t["label"] == next(
            x["label"] for x in trials if x["model"] == c["model"] and all(
                x[k] == str(v).lower() for k, v in c["params"].items()))]
        assert np.mean(mine) == pytest.approx(c["final_mean"], abs=1e-3)


def test_a_report_of_trials_without_predictions_says_so(tmp_path, monkeypatch, restore_old_database):
    import shutil
    from pathlib import Path

    monkeypatch.chdir(tmp_path)
    shutil.copy(Path(__file__).parents[1] / "fixtures" / "v0" / "spec.toml", "spec.toml")
    restore_old_database(tmp_path / "runner.sqlite")
    result = CliRunner().invoke(cli, ["report", "spec.toml", "--storage", f"sqlite:///{tmp_path}/runner.sqlite",
                                      "--out", "r"])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "r" / "report.md").read_text()
    assert "No trial of this study stored its predictions" in text and "seeds + test images" not in text


def test_each_bootstrapped_contrast_is_made_of_its_own_models_trials(report, monkeypatch):
    """The MLP run shares the LeNet-5 baseline's params (batch_norm false): its predictions must not stand
    in for LeNet-5's. Each contrast handed to the bootstrap averages to its effect's own difference."""
    import runner.report.stats as stats
    from runner.report.build import build_report
    from runner.spec import load_spec

    seen = []
    real = stats.bootstrap
    monkeypatch.setattr(stats, "bootstrap", lambda contrasts, seed=0: seen.append(contrasts) or real(contrasts, seed))
    r = build_report(load_spec(report / "spec.toml"), "sqlite:///" + str(report / "db" / "runner.sqlite"))
    effects, versus = seen[0], seen[2]  # mains, interactions (none here), versus best
    for e, c in [*zip(r.effects, effects), *zip(r.versus_best, versus)]:
        assert c is not None and float(c.mean()) == pytest.approx(e.delta_mean, abs=1e-9), e.factor

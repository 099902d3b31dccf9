"""runner/report/build_mistakes.py: where the models are wrong, from the stored predictions:
confusion matrices, accuracy per class, the gallery of mistakes."""
from __future__ import annotations

import optuna
from click.testing import CliRunner

from runner.cli import cli


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

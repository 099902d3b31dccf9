"""runner/report/choose.py and the report of an exploration (runner/report/markdown_plan.py): a small one-at-a-time
study across two budgets with its test set locked, trained for real: each against the baseline on validation,
no test figure anywhere, how each configuration fits, and the budget it chooses by its stated rule; then
`runner confirmation` writes the confirmatory spec (runner/report/confirmation.py), the same twice, which runs in
rounds with its test set open and reports confirmatory."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from runner.data import Split
from runner.report.choose import fits
from runner.report.contents import Config, Curve
from runner.spec import load_spec
from runner.trials.lifecycle import load

from tests.helpers import explore_spec, invoke


@pytest.fixture(scope="module")
def explored(tmp_path_factory) -> tuple[Path, str, Path]:
    """(the exploration's spec, its storage URL, its report folder): 16 trials of 1 and 2 epochs."""
    tmp = tmp_path_factory.mktemp("explore")
    spec, url = explore_spec(tmp), f"sqlite:///{tmp / 'e.sqlite'}"
    ran = invoke("grid", spec, "--storage", url)
    assert ran.exit_code == 0, ran.output
    made = invoke("report", spec, "--storage", url, "--out", tmp / "r")
    assert made.exit_code == 0, made.output
    return spec, url, tmp / "r"


def test_a_locked_study_loads_no_test_image(tmp_path):
    data = load(load_spec(explore_spec(tmp_path)))
    assert len(data.test) == 0 and len(data.val) == 100 and isinstance(data.test, Split)


def test_the_exploration_s_report_is_on_validation_and_shows_no_test_figure(explored):
    _, _, out = explored
    text = (out / "report.md").read_text()
    assert text.splitlines()[2].startswith("**Exploratory.** The test set is locked")
    assert "Every verdict below is on the validation split; no test image was loaded." in text
    assert "test acc (%)" not in text and "test loss" not in text and "train − val (points)" in text
    assert "| test images | locked ([study].test = \"locked\"): never loaded |" in text
    for name in ("trials.csv", "epochs.csv"):
        header = next(csv.reader((out / name).open()))
        assert "val_acc" in header and not [c for c in header if "test_" in c]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["held_out"] == "val" and summary["plan"]["confirmatory"] is False
    assert all(c["best_mean"] is None and c["final_test_loss"] is None for c in summary["configs"])


def _value(summary: dict, model: str = "lenet5", **params) -> float:
    """A configuration's final mean, found by its model and the params given (the others at their defaults)."""
    found = [c["final_mean"] for c in summary["configs"] if c["model"] == model and all(
        c["params"].get(k) == v for k, v in {"batch_norm": False, "augment": "none", **params}.items()
        if k in c["params"])]
    assert len(found) == 1, (model, params)
    return found[0]


def test_each_setting_is_compared_with_the_baseline_at_its_budget(explored):
    _, _, out = explored
    summary = json.loads((out / "summary.json").read_text())
    effects = summary["effects"]
    assert [(e["factor"], e["to"], e["within"]) for e in effects] == [
        ("batch_norm", True, "epochs=1"), ("augment", "affine", "epochs=1"),
        ("batch_norm", True, "epochs=2"), ("augment", "affine", "epochs=2")]
    plain, bn = _value(summary, epochs=1), _value(summary, epochs=1, batch_norm=True)
    assert effects[0]["delta_mean"] == pytest.approx(bn - plain, abs=1e-4)  # paired by seed, the same mean
    assert all(e["n_pairs"] == 2 and e["bootstrap_p_value"] is not None for e in effects)
    text = (out / "report.md").read_text()
    assert "## Each against the baseline" in text and "| factor | change | at |" in text
    assert "## Do the regularizers help?" not in text and (out / "effects.png").exists()


def test_overfitting_is_said_for_each_configuration_by_the_stated_rule(explored):
    _, _, out = explored
    text = (out / "report.md").read_text()
    assert "## Overfitting and underfitting" in text and "The rule: underfits: its training accuracy" in text
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["fits"]) == 8 and {f["verdict"] for f in summary["fits"]} <= {"overfits", "underfits", "neither"}


def _config(train: list[float], held: list[float], loss: list[float]) -> Config:
    epochs = tuple(range(1, len(train) + 1))
    curve = lambda v: Curve(epochs, tuple(v), tuple(v), tuple(v))  # noqa: E731
    return Config("k", "lenet5", "lenet5", {}, "x", "x", False, 1, (0,), (0.0,), (), (), (), (), (), (0,), None, None,
                  {"train_loss": curve(loss), "test_loss": curve(loss), "train_acc": curve(train),
                   "test_acc": curve(held)})


def test_the_fit_rule_on_curves_with_a_known_answer():
    over = _config([98, 99.5, 99.9, 100], [98.5, 98.9, 98.9, 98.8], [0.05, 0.03, 0.036, 0.04])
    under = _config([90, 93, 95, 96], [95, 97, 98, 98.5], [0.2, 0.1, 0.06, 0.05])
    fine = _config([97, 98.5, 99, 99.2], [97, 98, 98.6, 98.7], [0.09, 0.06, 0.05, 0.045])
    assert [f.verdict for f in fits([over, under, fine])] == ["overfits", "underfits", "neither"]
    assert (fits([over])[0].best_epoch, fits([over])[0].last_epoch) == (2, 4)


def test_the_choice_follows_its_rule_from_the_stored_values(explored):
    _, _, out = explored
    summary = json.loads((out / "summary.json").read_text())
    compared = {e: np.mean([_value(summary, epochs=e, batch_norm=True), _value(summary, epochs=e, augment="affine")])
                for e in (1, 2)}
    assert summary["choice"]["budget"] == {"epochs": max(compared, key=compared.get)}
    plain = {e: _value(summary, epochs=e) for e in (1, 2)}
    assert summary["choice"]["tuned"] == {"epochs": max(plain, key=plain.get)}
    mlp = {e: _value(summary, "mlp", epochs=e) for e in (1, 2)}
    assert summary["choice"]["models"] == {"mlp": {"epochs": max(mlp, key=mlp.get)}}
    e = summary["choice"]["budget"]["epochs"]
    kept = {(f, json.dumps(v)) for f, v, _ in summary["choice"]["kept"]}
    assert kept == {(f, json.dumps(v)) for f, v in (("batch_norm", True), ("augment", "affine"))
                    if _value(summary, epochs=e, **{f: v}) > plain[e]}
    assert "## The budget and strengths this exploration chooses" in (out / "report.md").read_text()


def test_runner_confirmation_writes_the_same_spec_twice_and_it_runs_confirmatory(explored, tmp_path):
    spec, url, _ = explored
    first = invoke("confirmation", spec, "--storage", url, "--name", "confirm", "--seeds", "2:3", "-o", tmp_path / "c.toml")
    assert first.exit_code == 0, first.output
    again = invoke("confirmation", spec, "--storage", url, "--name", "confirm", "--seeds", "2:3")
    assert again.output == (tmp_path / "c.toml").read_text()
    confirm = load_spec(tmp_path / "c.toml")
    summary = json.loads((explored[2] / "summary.json").read_text())
    assert not confirm.study.locked and confirm.study.metric == "test_acc" and confirm.data.val_fraction == 0
    assert confirm.train.epochs == summary["choice"]["budget"]["epochs"] and confirm.study.rounds.first == 2
    assert "# Written by `runner confirmation " in again.output and "--seeds 2:3`" in again.output
    assert [(c.factor, c.on) for c in confirm.comparisons()][:2] == [("batch_norm", True), ("augment", "affine")]
    assert ("mlp", summary["choice"]["models"]["mlp"]["epochs"]) in [(s["model"], s.get("epochs", confirm.train.epochs))
                                                                    for s in confirm.settings()]
    ran = invoke("grid", tmp_path / "c.toml", "--storage", url)
    assert ran.exit_code == 0, ran.output
    made = invoke("report", tmp_path / "c.toml", "--storage", url, "--out", tmp_path / "r")
    assert made.exit_code == 0, made.output
    report = (tmp_path / "r" / "report.md").read_text()
    assert report.splitlines()[2].startswith("**Confirmatory.** The plan (hash ")
    assert "## Each against the baseline" in report and "final test acc (%)" in report


def test_runner_confirmation_of_a_study_without_budgets_is_one_line(tmp_path):
    spec_path = explore_spec(tmp_path, "plain")
    spec_path.write_text(spec_path.read_text().replace("across = { epochs = [1, 2] }\n", ""))
    url = f"sqlite:///{tmp_path / 'p.sqlite'}"
    assert invoke("grid", spec_path, "--storage", url).exit_code == 0
    result = invoke("confirmation", spec_path, "--storage", url)
    assert result.exit_code == 1 and "nothing to choose from: a confirmation is written from a one-at-a-time" in result.output
    assert len(result.output.strip().splitlines()) == 1
    bad = invoke("confirmation", spec_path, "--storage", url, "--seeds", "3:3")
    assert bad.exit_code == 2 and "'3:3' is not FIRST:MAX with 2 <= FIRST < MAX" in bad.output

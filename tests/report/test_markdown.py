"""runner/report/markdown.py: the report as text: sentences that say what the numbers say, the
sections that apply, and the same text for the same trials."""
from __future__ import annotations

import json
import textwrap

from optuna.trial import TrialState

from runner.report import Effect, build_report, effect_sentence, interaction_sentence, render_markdown
from runner.spec import load_spec
from runner.store import Store

from tests.helpers import MNIST_500
from tests.report.synthetic import NOISE, SPEC, add_trial as _add_trial
from tests.helpers import run, validation_write  # noqa: F401 - fixtures


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


def test_failed_and_running_trials_are_listed_not_counted(written):
    summary = json.loads((written / "summary.json").read_text())
    assert sorted((x["state"], x["seed"]) for x in summary["excluded"]) == [("fail", 7), ("running", 8)]
    md = (written / "report.md").read_text()
    section = md.split("## Trials left out")[1]
    assert "| fail | lenet5 | 7 | loss is NaN at epoch 2 |" in section
    assert "| running | lenet5 | 8 | running by test:1 when the report was made, at epoch 1: not a result yet" in section
    assert "Seeds: 0, 1, 2 (3)" in md


def test_the_parameter_counts_are_reported_with_their_formulas(written):
    md = (written / "report.md").read_text()
    assert "Total: **61,706** parameters." in md
    assert "| (5*5*1+1)*6 | 156 |" in md


def test_known_accuracy_is_held_against_the_published_figure(written):
    md = (written / "report.md").read_text()
    known = md.split("## Known accuracy")[1]
    assert "99.05%" in known and "below" in known and "outside the seed spread" in known
    assert "does not hold" in known  # a 600-image subset is not the published benchmark


def test_render_markdown_is_deterministic(study):
    spec_path, url, _ = study
    spec = load_spec(spec_path)
    assert render_markdown(build_report(spec, url)) == render_markdown(build_report(spec, url))


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


def test_the_report_of_a_study_ranked_by_val_acc(run, write, tmp_path):
    spec = write(data=MNIST_500 + "\nval_fraction = 0.2", metric="val_acc", epochs=1)
    assert run("grid", spec).exit_code == 0
    result = run("report", spec, "--out", tmp_path / "report")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    text = (tmp_path / "report" / "report.md").read_text()
    assert "final val acc (%)" in text

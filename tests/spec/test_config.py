from __future__ import annotations

import itertools

import pytest

from runner.errors import SpecError
from runner.spec import LATER_REGULARIZERS, REGULARIZERS, load_spec

VALID = """
[study]
name = "s"
seeds = [0, 1]
[models.lenet5]
arch = "lenet5"
[models.mlp]
arch = "mlp"
hidden = [74, 40]
dropout = 0.1
[grid]
model = ["lenet5"]
dropout = [0.0, 0.5]
lr = [0.01, 0.05]
[[runs]]
model = "mlp"
"""


def test_grid_is_the_cartesian_product_plus_runs_times_seeds(write_spec):
    spec = load_spec(write_spec(VALID))
    assert len(spec.settings()) == 2 * 2 + 1
    points = spec.points()
    assert len(points) == 5 * 2
    assert [p.seed for p in points] == [0] * 5 + [1] * 5  # seed-major
    mlp = [p for p in points if p.model.name == "mlp"][0]
    assert mlp.reg("dropout") == 0.1  # the model's default applies
    assert mlp.train.lr == 0.01
    # every regularizer, but one added later (ema) only where the spec sets it: older points keep their params
    assert set(points[0].params) == {"model", *(r for r in REGULARIZERS if r not in LATER_REGULARIZERS), "lr", "seed"}
    assert len({p.config_hash for p in points}) == len(points)


def test_config_hash_is_stable_and_ignores_execution_settings(write_spec):
    a = load_spec(write_spec(VALID)).points()
    b = load_spec(write_spec(VALID.replace('[models.lenet5]', '[train]\nthreads = 1\ndevice = "cpu"\n[models.lenet5]'),
                             name="b.toml")).points()
    assert [p.config_hash for p in a] == [p.config_hash for p in b]
    c = load_spec(write_spec(VALID.replace("seeds = [0, 1]", "seeds = [0, 1]\nmetric = \"test_loss\""),
                             name="c.toml")).points()
    assert [p.config_hash for p in a] == [p.config_hash for p in c]  # ranking metric is not config


def test_adding_a_grid_value_keeps_the_old_points(write_spec):
    old = {p.config_hash for p in load_spec(write_spec(VALID)).points()}
    new = {p.config_hash for p in load_spec(write_spec(VALID.replace("[0.0, 0.5]", "[0.0, 0.5, 0.2]"),
                                                       name="n.toml")).points()}
    assert old < new and len(new - old) == 2 * 2


@pytest.mark.parametrize("change, message", [
    (("[grid]", "[grdi]"), 'unknown key "grdi"; did you mean "grid"?'),
    (("dropout = [0.0, 0.5]", "dropuot = [0.0, 0.5]"), '[grid]: unknown key "dropuot"; did you mean "dropout"?'),
    (("dropout = [0.0, 0.5]", "dropout = [0.0, 1.5]"), "[grid].dropout: 1.5 is not a number in [0, 1)"),
    (("dropout = [0.0, 0.5]", "dropout = [0.0, 1.0]"), "[grid].dropout: 1.0 is not a number in [0, 1)"),
    (("dropout = [0.0, 0.5]", "dropout = 0.5"), "[grid].dropout: 0.5 is not a list; write dropout = [0.5]"),
    (("dropout = [0.0, 0.5]", "dropout = []"), "[grid].dropout: is an empty list"),
    (("dropout = [0.0, 0.5]", 'dropout = ["x"]'), '[grid].dropout: "x" is not a number in [0, 1)'),
    (("lr = [0.01, 0.05]", "lr = [-0.01]"), "[grid].lr: -0.01 is not a number > 0"),
    (('model = ["lenet5"]', 'model = ["lenet"]'), 'unknown model "lenet": defined are lenet5, mlp; did you mean "lenet5"?'),
    (('arch = "lenet5"', 'arch = "resnet"'), '[models.lenet5].arch: "resnet" is not "lenet5" | "mlp"'),
    (("seeds = [0, 1]", "seeds = [0, 1]\n[train]\nbatch_size = -1"), "[train].batch_size: -1 is not an integer >= 1"),
    (("seeds = [0, 1]", "seeds = [0, 1]\n[train]\nepochs = 1.5"), "[train].epochs: 1.5 is not an integer >= 1"),
    (("seeds = [0, 1]", "seeds = [0, 1]\n[train]\nlr = true"), "[train].lr: true is not a number > 0"),
    (("seeds = [0, 1]", 'seeds = [0, 1]\n[train]\noptimizer = "rmsprop"'), '"rmsprop" is not "sgd" | "adam" | "adamw"'),
    (("seeds = [0, 1]", "seeds = []"), "[study].seeds: [] is not a non-empty list of integers"),
    (("hidden = [74, 40]", "hidden = [74, 0]"), "[models.mlp].hidden: 0 is not an integer >= 1"),
    (('[[runs]]\nmodel = "mlp"', '[[runs]]\nmodel = "mlp"\nbatch_norm = "yes"'), '[[runs]] #1.batch_norm: "yes" is not true or false'),
])
def test_bad_specs_get_one_line_naming_file_key_value_and_what_is_allowed(write_spec, change, message):
    path = write_spec(VALID.replace(*change))
    assert change[0] in VALID
    with pytest.raises(SpecError) as e:
        load_spec(path)
    text = str(e.value)
    assert text.startswith(str(path) + ": ")
    assert message in text
    assert "\n" not in text


def test_toml_syntax_error_names_the_line(write_spec):
    path = write_spec(VALID.replace('name = "s"', 'name = "s'))
    with pytest.raises(SpecError, match=r"TOML syntax error: .*line 3"):
        load_spec(path)


def test_a_spec_with_nothing_to_run_is_refused(write_spec):
    path = write_spec('[study]\nname = "s"\n[models.a]\narch = "mlp"\n')
    with pytest.raises(SpecError, match="nothing to run"):
        load_spec(path)


def test_missing_spec_file(tmp_path):
    with pytest.raises(SpecError, match="no such spec file"):
        load_spec(tmp_path / "nope.toml")


def test_shipped_specs_are_valid():
    reg = load_spec("specs/regularization.toml")
    grid_axes = {k for k, _ in reg.grid}
    assert {"dropout", "batch_norm", "weight_decay", "augment"} <= grid_axes
    assert len(reg.study.seeds) == 3
    assert len(list(itertools.product(*dict(reg.grid).values()))) == 16
    baseline = [p for p in reg.points() if p.model.name == "mlp" and not p.reg("batch_norm")][0]
    assert (baseline.train.optimizer, baseline.train.lr, baseline.train.momentum) == ("sgd", 0.01, 0.9)
    assert load_spec("specs/smoke.toml").data.train_limit > 0

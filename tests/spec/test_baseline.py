"""The spec of a study against a baseline: [grid].design = "one-at-a-time", [grid].across, [[runs]] baseline and
label, [study].test = "locked"; each mistake one line (runner/spec/parse.py, config.py)."""
from __future__ import annotations

import pytest

from runner.errors import SpecError
from runner.spec import load_spec

from tests.helpers import EXPLORE_SPEC, explore_spec


def _fails(tmp_path, text: str) -> str:
    with pytest.raises(SpecError) as e:
        load_spec(explore_spec(tmp_path, text=text))
    assert "\n" not in str(e.value)
    return str(e.value)


def test_an_exploration_plans_each_change_alone_at_each_budget_and_the_runs_beside(tmp_path):
    spec = load_spec(explore_spec(tmp_path))
    assert spec.against_baseline and not spec.tested and spec.study.locked
    assert spec.setting_count() == 2 * 3 + 2 and spec.point_count() == 16  # 3 LeNet-5 and the MLP, at 2 budgets
    assert spec.grid_factors() == "8 settings one at a time against the baseline x epochs 2, x 2 seeds"
    assert [(c.factor, c.on, c.within) for c in spec.comparisons()] == [
        ("batch_norm", True, {"epochs": 1}), ("augment", "affine", {"epochs": 1}),
        ("batch_norm", True, {"epochs": 2}), ("augment", "affine", {"epochs": 2})]
    assert {p.train.epochs for p in spec.points()} == {1, 2}


def test_a_baseline_run_and_a_tuned_one_and_a_stack_with_its_label(tmp_path):
    text = EXPLORE_SPEC + '\n[[runs]]\nmodel = "lenet5"\nepochs = 3\nbaseline = "tuned"\n' \
                          '\n[[runs]]\nmodel = "lenet5"\nbatch_norm = true\naugment = "affine"\nlabel = "both"\n'
    spec = load_spec(explore_spec(tmp_path, text=text))
    assert spec.tuned_baseline() == {"model": "lenet5", "epochs": 3}
    assert [c.within for c in spec.comparisons() if c.factor == "both"] == [{"epochs": 1}, {"epochs": 2}]
    assert not [c for c in spec.comparisons() if c.setting.get("epochs") == 3]  # the tuned one is compared with none
    runs_only = '[study]\nname = "r"\n[models.a]\narch = "lenet5"\n[[runs]]\nbaseline = true\n' \
                '[[runs]]\nbatch_norm = true\n[[runs]]\ndropout = 0.5\n'
    path = tmp_path / "runs.toml"
    path.write_text(runs_only)
    spec = load_spec(path)
    assert [c.factor for c in spec.comparisons()] == ["batch_norm=true", "dropout=0.5"] and spec.setting_count() == 3


@pytest.mark.parametrize("change, words", [
    (("design = \"one-at-a-time\"\n", ""), '[grid].across: crosses axes with design = "one-at-a-time"; in a full grid'),
    (("across = {{ epochs = [1, 2] }}", "across = {{ batch_norm = [false, true] }}"), "[grid].across.batch_norm: is also"),
    (('model = ["lenet5"]', 'model = ["lenet5", "mlp"]'), '[grid].model: design = "one-at-a-time" compares within'),
    (('model = "mlp"', 'model = "mlp"\nbaseline = "yes"'), '[[runs]] #1.baseline: "yes" is not true, false or "tuned"'),
    (('metric = "val_acc"', 'metric = "test_acc"'), '[study].metric: "test_acc" reads the test set, and [study].test'),
    (('test = "locked"', 'test = "shut"'), '[study].test: "shut"'),
    (("across = {{ epochs = [1, 2] }}", "across = []"), "[grid].across: must be a table of axis = [values]"),
])
def test_each_mistake_is_one_line(tmp_path, change, words):
    old, new = change
    assert words in _fails(tmp_path, EXPLORE_SPEC.replace(old, new))


def test_a_baseline_is_refused_beside_a_full_grid_and_twice(tmp_path):
    full = EXPLORE_SPEC.replace('design = "one-at-a-time"\n', "").replace("across = {{ epochs = [1, 2] }}\n", "")
    assert "[[runs]].baseline: a baseline is what design" in _fails(
        tmp_path, full.replace('model = "mlp"', 'model = "mlp"\nbaseline = true'))
    twice = EXPLORE_SPEC + '[[runs]]\nmodel = "lenet5"\nbaseline = true\n[[runs]]\nmodel = "lenet5"\nlr = 0.1\nbaseline = true\n'
    assert "baseline = true is given to 2 runs; a study has one" in _fails(tmp_path, twice)


def test_rounds_decide_the_comparisons_and_need_some(tmp_path):
    spec = load_spec(explore_spec(tmp_path, seeds="{ first = 2, max = 4 }"))
    assert spec.study.rounds.until == "effects" and len(spec.comparisons()) == 4
    alone = '[study]\nname = "r"\nseeds = { first = 2, max = 3 }\n[models.a]\narch = "lenet5"\n[[runs]]\nbaseline = true\n'
    path = tmp_path / "alone.toml"
    path.write_text(alone)
    with pytest.raises(SpecError, match='until = "effects" decides the comparisons with the baseline, and the spec has none'):
        load_spec(path)

"""runner/report/roles.py: which model stands for LeNet-5 and which for the MLP, the gallery's baseline, and the
configurations at or near chance, with why; with modules written as students write them (tests/helpers.py)."""
from __future__ import annotations

import json
import textwrap

import pytest

from runner.models.counts import LayerRow
from runner.report.contents import CURVES, Config, Curve, Excluded, config_key
from runner.report.roles import at_chance, compared_models, gallery_baseline, named_baseline
from tests.helpers import STUDENTS, load_spec_text
from tests.report.conftest import grid_and_report

STUDENTS_SPEC = """
[study]
name = "students"
[data]
train_limit = 600
test_limit = 200
[train]
epochs = 2
batch_size = 50
lr = 0.05
threads = 1
[models.lenet]
target = "students:LeNet5"
[models.mlp]
target = "students:MLP"
[models.soft]
target = "students:SoftLeNet"
[models.bn]
target = "students:BNNet"
[grid]
model = ["lenet", "mlp", "soft", "bn"]
[[runs]]
model = "lenet"
weight_decay = 0.0005
"""


@pytest.fixture(scope="module")
def students(tmp_path_factory):
    """The students' modules trained for 2 epochs on 600 images, and their report."""
    folder = tmp_path_factory.mktemp("students")
    (folder / "students.py").write_text(STUDENTS)
    (folder / "spec.toml").write_text(STUDENTS_SPEC)
    return grid_and_report(folder)


def test_a_students_lenet5_and_mlp_get_the_comparison_figure_and_the_published_figure(students):
    text = (students / "report.md").read_text()
    assert (students / "compare.png").stat().st_size > 0
    assert "Compared: `lenet`, `mlp`, `lenet weight_decay=0.0005`." in text
    assert "LeNet-5 with every regularizer off (`lenet`) reaches" in text and "Nothing is compared" not in text
    assert "`lenet` stands for LeNet-5 here: its layer table matches LeNet-5's" in text
    assert "LeNet-5, every regularizer off: `lenet`" in text and "MLP, every regularizer off: `mlp`" in text


def test_a_model_ending_in_softmax_is_named_at_chance_with_its_cause_and_is_no_baseline(students):
    text = (students / "report.md").read_text()
    answer = text.split("## The answer")[1].split("##")[0]
    line = next(x for x in answer.splitlines() if x.startswith("- `soft` is at or near chance"))
    assert "uniform guess gets 10.00% (10 classes)" in line and "its forward ends in softmax" in line
    assert not any(x.startswith("- `lenet` is at or near chance") for x in answer.splitlines())
    gallery = next(x for x in text.splitlines() if "test images wrong" in x)
    assert "the baseline `soft`" not in gallery
    summary = json.loads((students / "summary.json").read_text())
    assert [a["label"] for a in summary["at_chance"]] == ["soft"]


def test_the_training_table_shows_what_each_module_ran(students):
    """None of the modules takes dropout or batch_norm: each is the module's own, with its own layers named."""
    lines = (students / "report.md").read_text().splitlines()
    assert ("| dropout | the module's own: `lenet` has no dropout; `mlp` has no dropout; `soft` has no dropout; `bn` "
            "has dropout 0.25 at drop |") in lines
    assert ("| batch_norm | the module's own: `lenet` has no batch norm; `mlp` has no batch norm; `soft` has no batch "
            "norm; `bn` has batch norm at bn |") in lines


# ---------------------------------------------------------------- the parts, on configurations made up


def config(label: str, acc: float, loss: tuple[float, ...] = (0.5, 0.3), regularized: bool = False,
           params: dict | None = None) -> Config:
    model = label.split()[0]
    curve = Curve(tuple(range(1, len(loss) + 1)), loss, loss, loss)
    params = params or {}
    return Config(key=config_key({"model": model, **params}), model=model, arch=model, params=params, label=label,
                  slug=label, regularized=regularized, param_count=1, seeds=(0, 1), final=(acc, acc),
                  final_acc=(acc, acc), best_acc=(acc, acc), final_loss=(0.1, 0.1), final_val=(), gap=(0.0, 0.0),
                  trial_ids=(1, 2), seconds_per_epoch=None, peak_memory_mb=None,
                  curves={name: curve for name in CURVES})


def test_chance_is_named_with_a_nan_loss_or_a_diverged_learning_rate_as_its_cause():
    configs = [config("good", 97.0), config("nan", 11.0), config("rose", 12.0, (2.0, 9.0), params={"lr": 0.5}),
               config("high", 30.0, (2.6,)), config("stuck", 10.0, (2.3, 2.3))]
    excluded = [Excluded(7, "fail", "nan", 1, "loss became nan in epoch 1; lower [train].lr")]
    found = {a.label: a for a in at_chance(configs, 10, excluded, {})}
    assert set(found) == {"nan", "rose", "high", "stuck"}  # under 32.5%: chance + a quarter of the way to 100%
    assert found["nan"].causes == ("the loss became NaN in 1 of its trials (trial 7, left out): a learning rate too "
                                   "large for it",)
    assert found["rose"].causes == ("its training loss rose from 2.00 in the first epoch to 9.00 in the last: the "
                                    "learning rate (lr 0.5) diverged",)
    assert "above the 2.30 of a uniform guess" in found["high"].causes[0]
    assert found["stuck"].causes == () and found["stuck"].chance == 10.0
    softmax = [LayerRow("fc3", "fc", (10,), "(84+1)*10", 850), LayerRow("softmax()", "softmax", (10,), "", 0)]
    assert "ends in softmax" in at_chance(configs, 10, [], {"stuck": softmax})[-1].causes[0]


SPEC = """
[study]
name = "b"
[models.lenet]
layers = [{ conv = 6, k = 5, pad = 2 }, { pool = "max", k = 2 }, { conv = 16, k = 5 }, { pool = "max", k = 2 },
          { fc = 120 }, { fc = 84 }, { fc = 10 }]
[models.net]
layers = [{ conv = 4, k = 3 }, { fc = 10 }]
compare = "mlp"
[grid]
design = "one-at-a-time"
model = ["lenet"]
weight_decay = [0.0, 0.0005]
dropout = [0.0, 0.5]
[[runs]]
model = "net"
"""


def stored(spec, setting: dict, label: str, acc: float) -> Config:
    """A configuration of the spec's setting, keyed as the report keys the trials of its point."""
    params = {k: v for k, v in spec.point(setting, 0).params.items() if k not in ("model", "seed")}
    return config(label, acc, regularized=setting != {"model": setting["model"]}, params=params)


def test_the_gallery_is_held_against_the_named_baseline_and_never_one_at_chance():
    spec = load_spec_text(textwrap.dedent(SPEC))
    base = stored(spec, {"model": "lenet"}, "lenet", 95.0)
    wd = stored(spec, {"model": "lenet", "weight_decay": 0.0005}, "lenet weight_decay=0.0005", 96.0)
    net = stored(spec, {"model": "net"}, "net", 90.0)
    configs = [wd, base, net]
    assert named_baseline(spec, configs, wd) is base
    assert gallery_baseline(spec, configs, wd, [net], []) is base
    chance = at_chance([stored(spec, {"model": "lenet"}, "lenet", 10.0)], 10, [], {})  # at chance: the next one
    assert gallery_baseline(spec, configs, wd, [net], chance) is net
    assert gallery_baseline(spec, configs, base, [base], []) is None  # the best is the baseline: none else named


def test_a_model_stands_for_a_preset_by_the_spec_or_by_its_layer_table():
    from runner.models.counts import param_table

    spec = load_spec_text(textwrap.dedent(SPEC))
    tables = {name: list(param_table(name, name, spec.point({"model": name}, 0).model_config()).rows)
              for name in spec.models}
    configs = [config("lenet", 95.0), config("net", 90.0)]
    assert compared_models(spec, configs, tables) == {
        "lenet5": ("lenet", "its layer table matches LeNet-5's (the same weights, layer by layer)"),
        "mlp": ("net", '[models.net].compare = "mlp"')}
    assert compared_models(spec, configs[1:], tables) == {"mlp": ("net", '[models.net].compare = "mlp"')}


def test_compare_is_refused_on_a_preset_of_the_other_kind_and_leaves_the_config_hash_alone():
    from runner.errors import SpecError
    from tests.helpers import one_model_spec

    with pytest.raises(SpecError, match=r'\[models.m\].compare: "lenet5" for an arch = "mlp" model'):
        one_model_spec(model={"arch": "mlp", "compare": "lenet5"})
    declared = {"layers": [{"fc": 32}, {"fc": 10}]}
    assert one_model_spec(model={**declared, "compare": "mlp"}).points()[0].config_hash == \
        one_model_spec(model=declared).points()[0].config_hash  # trials stored before it keep matching

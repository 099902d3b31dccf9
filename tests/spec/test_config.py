"""runner/spec/config.py: a spec expanded into points: the grid's product, runs and seeds, counted
without enumerating; a grid value added keeps the old points. (Their config hashes: tests/spec/test_point.py.)"""
from __future__ import annotations

import itertools
import math
import textwrap
from pathlib import Path

import pytest

from runner.spec import LATER_REGULARIZERS, REGULARIZERS, load_spec

from tests.helpers import VALID_SPEC as VALID, shipped_spec


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


def test_adding_a_grid_value_keeps_the_old_points(write_spec):
    old = {p.config_hash for p in load_spec(write_spec(VALID)).points()}
    new = {p.config_hash for p in load_spec(write_spec(VALID.replace("[0.0, 0.5]", "[0.0, 0.5, 0.2]"),
                                                       name="n.toml")).points()}
    assert old < new and len(new - old) == 2 * 2


def test_shipped_specs_are_valid():
    explore = load_spec("specs/regularization_explore.toml")  # the flagship's exploration: test locked, 4 budgets
    assert explore.study.locked and not explore.tested and explore.study.metric == "val_acc"
    assert explore.grid_design == "one-at-a-time" and explore.setting_count() == 36
    assert {k for k, _ in explore.grid} >= {"dropout", "batch_norm", "weight_decay", "augment", "label_smoothing", "ema"}
    reg = load_spec("specs/regularization.toml")  # its confirmation, as runner confirmation wrote it
    assert reg.tested and reg.study.metric == "test_acc" and reg.grid_design == "one-at-a-time"
    assert reg.study.seeds == (0, 1, 2) and (reg.study.rounds.first, reg.study.rounds.max) == (3, 5)
    assert reg.setting_count() == 11  # plain, 7 alone, the tuned baseline, the stack, the MLP
    plain = next(iter(reg.points()))  # the baseline, at the budget the exploration chose
    assert plain.model.name == "lenet5" and not plain.reg("dropout") and plain.reg("augment") == "none"
    assert (plain.train.optimizer, plain.train.lr, plain.train.epochs) == ("sgd", 0.05, 16)
    assert load_spec("specs/smoke.toml").data.train_limit > 0


# ---------------------------------------------------------------- points counted, not enumerated


@pytest.mark.parametrize("grid, runs", [
    ('model = ["a", "b"]\n"a.c1.conv" = [4, 6]\ndropout = [0.0, 0.5]', ""),
    ('model = ["a"]\nbatch_norm = [false, true]\nlr = [0.1, 0.2]',
     '[[runs]]\nmodel = "a"\nbatch_norm = true\nlr = 0.1\n[[runs]]\nmodel = "b"\n[[runs]]\nmodel = "b"\n'),
    ("", '[[runs]]\nmodel = "a"\n[[runs]]\nmodel = "b"\ndropout = 0.5\n'),
])
def test_the_count_is_the_number_of_points_enumeration_finds(tmp_path, grid, runs):
    spec = tmp_path / "spec.toml"
    spec.write_text(f"""
[study]
name = "c"
seeds = [0, 1, 2]
[models.a]
layers = [ {{ conv = 6, k = 5, name = "c1" }}, {{ pool = "max" }}, {{ fc = 10 }} ]
[models.b]
arch = "mlp"
{"[grid]" if grid else ""}
{grid}
{runs}""")
    s = load_spec(spec)
    assert s.setting_count() == len(s.settings()) and s.point_count() == len(s.points())


def test_the_shipped_specs_are_counted_as_enumerated():
    for path in sorted(Path(__file__).parents[2].glob("specs/*.toml")):
        s = shipped_spec(path)
        assert s.point_count() == len(s.points()), path.name


@pytest.mark.parametrize("grid", [
    "lr = [0.01, 0.05]",
    'lr = [0.01, 0.05]\n"lenet.c1.conv" = [4, 6, 8]',
    '"lenet.c1.conv" = [4, 6]\n"mlp.h1.fc" = [16, 32, 64]\ndropout = [0.0, 0.5]',
])
def test_the_count_lines_factors_multiply_to_its_settings(grid, tmp_path):
    """Each model's own product where an axis applies to some models only: the arithmetic is right."""
    from runner.spec import load_spec

    path = tmp_path / "s.toml"
    path.write_text(textwrap.dedent("""
        [study]
        name = "f"
        seeds = [0, 1, 2]
        [models.lenet]
        layers = [{ conv = 6, k = 5, name = "c1" }, { pool = "max", k = 2 }, { fc = 10 }]
        [models.mlp]
        layers = [{ fc = 32, name = "h1" }, { fc = 10 }]
        [grid]
        model = ["lenet", "mlp"]
        """) + grid + "\n")
    spec = load_spec(path)
    factors = spec.grid_factors()
    body = factors.removesuffix(", each x 3 seeds").removesuffix(" x 3 seeds")
    total = sum(math.prod(int(f.split()[-1]) for f in part.split(": ")[-1].split(" x ")) for part in body.split(" + "))
    assert total == spec.setting_count(), (factors, spec.setting_count())

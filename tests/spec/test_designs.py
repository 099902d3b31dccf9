"""runner/spec/designs.py, [grid].design: a fractional grid's settings are a two-level design's runs
(runner.design.fractional), each point hashed as the same setting of the full grid, so that a half and a full
study of one name share trials; a grid no two-level design fits is refused in one line. (The schema's forms
of [grid].design: tests/test_schema.py.)"""
from __future__ import annotations

import json
import tomllib

import numpy as np
import pytest

from runner.errors import SpecError
from runner.spec import parse_spec

from tests.helpers import FRACTION_SPEC as SPEC

FACTORS = ("dropout", "batch_norm", "weight_decay", "augment")


def spec_of(design: str | None = None, text: str = SPEC):
    text = text if design is None else text.replace("[grid]\n", f"[grid]\ndesign = {design}\n")
    return parse_spec(tomllib.loads(text), "d.toml")


def _signs(setting: dict, spec) -> tuple[int, ...]:
    grid = dict(spec.grid)
    return tuple(1 if setting[a] == grid[a][1] else -1 for a in FACTORS)


@pytest.mark.parametrize("design, runs", [('"half"', 8), ("{ resolution = 3 }", 8), ("{ resolution = 4 }", 8),
                                          ("{ resolution = 5 }", 16)])
def test_a_fraction_s_settings_are_the_design_s_runs_and_every_count_agrees(design, runs):
    spec = spec_of(design)
    settings = spec.settings()
    assert len(settings) == len(list(spec.iter_settings())) == spec.setting_count() == runs
    assert len(spec.points()) == spec.point_count() == 3 * runs
    signs = np.array([_signs(s, spec) for s in settings])
    assert len({tuple(r) for r in signs}) == runs  # each run once
    assert (signs.sum(0) == 0).all()  # every factor at each value in half the runs: main effects balanced
    assert (signs.T @ signs == runs * np.eye(4)).all()  # and orthogonal: no main effect aliased with another
    if runs == 8:
        assert len(set(np.prod(signs, axis=1))) == 1  # I = ABCD: the defining relation holds on every run
        assert spec.grid_factors() == ("a 2^(4-1) fraction of dropout 2 x batch_norm 2 x weight_decay 2 x augment 2, "
                                       "x 3 seeds")
    assert all(s["lr"] == 0.05 and s["model"] == "lenet5" for s in settings)  # a one-value axis is a constant


def test_a_fraction_s_points_hash_as_the_full_grid_s_and_list_in_its_order():
    full, half = spec_of(), spec_of('"half"')
    by_setting = {json.dumps(s, sort_keys=True): i for i, s in enumerate(full.settings())}
    order = [by_setting[json.dumps(s, sort_keys=True)] for s in half.settings()]
    assert order == sorted(order)  # the full grid's order, every other setting left out
    hashes = {p.config_hash: p for p in full.points()}
    for p in half.points():
        twin = hashes[p.config_hash]  # the same trial, whichever study asked for it
        assert (twin.params, twin.resolved()) == (p.params, p.resolved())
    assert full.grid_design == "full" and full.fraction() is None and full.design_lines() == []


def test_values_listed_the_other_way_round_give_the_other_half():
    half = spec_of('"half"')
    other = spec_of('"half"', SPEC.replace("batch_norm = [false, true]", "batch_norm = [true, false]"))
    mine, theirs = ({p.config_hash for p in s.points()} for s in (half, other))
    assert not mine & theirs and mine | theirs == {p.config_hash for p in spec_of().points()}


def test_the_design_lines_say_what_runs_and_each_aliased_set_once():
    lines = spec_of('"half"').design_lines()
    assert lines[0] == '[grid].design "half": 8 of the 16 settings, a 2^(4-1) fraction of resolution 4'
    assert "dropout is aliased with batch_norm x weight_decay x augment" in lines
    assert "dropout x batch_norm is aliased with weight_decay x augment" in lines
    assert not any("weight_decay x augment is aliased" in x for x in lines)  # that set was named once already
    assert len(lines) == 1 + 4 + 3
    [line] = spec_of("{ resolution = 5 }").design_lines()
    assert line == ("[grid].design { resolution = 5 }: all 16 settings of the 4 axes, as the full grid: no fraction "
                    "of 4 axes reaches resolution 5")


def test_runs_beside_a_fraction_add_their_settings_once_and_are_none_of_its_runs():
    runs = ('[[runs]]\nmodel = "mlp"\n'  # another model: a baseline beside the fraction
            '[[runs]]\nmodel = "lenet5"\naugment = "elastic"\nlr = 0.05\n'  # a setting of no run of the fraction
            '[[runs]]\nmodel = "lenet5"\ndropout = 0.0\nbatch_norm = false\nweight_decay = 0.0\naugment = "none"\n'
            'lr = 0.05\n')  # the fraction's own first run, named again: no new setting
    half, alone = spec_of('"half"', SPEC + runs), spec_of('"half"')
    assert [s for s in half.grid_settings()] == [s for s in alone.grid_settings()]  # the runs change no run of it
    assert half.setting_count() == len(half.settings()) == 8 + 2
    assert half.point_count() == len(half.points()) == 3 * 10
    assert half.grid_factors().endswith("x 3 seeds + 3 runs")
    assert half.fraction().factors == FACTORS


@pytest.mark.parametrize("change, message", [
    (('augment = ["none", "affine"]', 'augment = ["none", "affine", "elastic"]'),
     'd.toml: [grid].design: "half": augment has 3 values ("none", "affine", "elastic"), and a two-level design '
     'takes axes of two: use design = "full", or a study per pair of values'),
    (('model = ["lenet5"]', 'model = ["lenet5", "mlp"]'),
     'd.toml: [grid].design: "half" varies one model\'s axes, and [grid].model has 2 (lenet5, mlp): give each model '
     'a spec of its own, or use design = "full"'),
    (('dropout = [0.0, 0.5]\nbatch_norm = [false, true]\n', ''),
     'd.toml: [grid].design: a half fraction of 2 factors aliases main effects with each other: use "full", or 3 '
     'factors or more'),
    (('design = "half"', 'design = "third"'), 'd.toml: [grid].design: "third" is not "full" | "half" | '
                                               '"one-at-a-time" | { resolution = N }'),
    (('design = "half"', 'design = { resolution = 2 }'), "d.toml: [grid].design.resolution: 2 is not an integer >= 3"),
    (('design = "half"', 'design = { resolutoin = 4 }'),
     'd.toml: [grid].design: unknown key "resolutoin"; did you mean "resolution"?'),
])
def test_a_grid_no_two_level_design_fits_is_refused_in_one_line(change, message):
    text = SPEC.replace("[grid]\n", '[grid]\ndesign = "half"\n').replace(*change)
    with pytest.raises(SpecError) as e:
        parse_spec(tomllib.loads(text), "d.toml")
    assert str(e.value) == message

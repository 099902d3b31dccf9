"""runner/design/fractional.py: two-level fractional designs, their aliases against pyDOE3, and the effects
they estimate."""
from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

from runner.design import (Design, DesignError, alias_lines, aliases, design, estimable_interactions,
                           estimate_interactions, estimate_main_effects)

# ---------------------------------------------------------------- fractional designs

REGULARIZERS = ["dropout", "batch_norm", "weight_decay", "augment"]


def additive(d: Design, seed: int = 0) -> tuple[np.ndarray, dict[str, float]]:
    """An additive response at each run (no interactions) and each factor's true effect, high minus low."""
    rng = np.random.default_rng(seed)
    effects = dict(zip(d.factors, rng.normal(0, 1, len(d.factors))))
    return np.array([98.0 + sum(effects[f] * (s / 2) for f, s in zip(d.factors, row)) for row in d.signs]), effects


def test_a_half_fraction_has_half_the_runs():
    d = design(REGULARIZERS, "half")
    assert d.generators == "a b c abc" and d.resolution == 4 and len(d.runs) == 8
    assert all(run["augment"] == (run["dropout"] + run["batch_norm"] + run["weight_decay"]) % 2 for run in d.runs)


def test_a_half_fractions_alias_lines_are_those_of_d_is_abc():
    d = design(REGULARIZERS, "half")
    assert alias_lines(d) == [
        "dropout is aliased with batch_norm x weight_decay x augment",
        "batch_norm is aliased with dropout x weight_decay x augment",
        "weight_decay is aliased with dropout x batch_norm x augment",
        "augment is aliased with dropout x batch_norm x weight_decay",
        "dropout x batch_norm is aliased with weight_decay x augment",
        "dropout x weight_decay is aliased with batch_norm x augment",
        "dropout x augment is aliased with batch_norm x weight_decay",
    ]
    assert aliases(d)["weight_decay x augment"] == ("dropout x batch_norm",)


def test_the_alias_sets_agree_with_pydoe3():
    from pyDOE3 import fracfact_aliasing

    d = design(list("ABCDEF"), 4)  # 2^(6-2), 16 runs
    theirs, _ = fracfact_aliasing(d.signs)
    letters = {chr(ord("a") + j): f for j, f in enumerate(d.factors)}
    sets = {frozenset(" x ".join(letters[c] for c in word) for word in line.split(" = ")) for line in theirs}
    for effect, others in aliases(d).items():
        if others:
            assert frozenset((effect, *others)) in sets, effect


@pytest.mark.parametrize("factors, kind", [(REGULARIZERS, "half"), (REGULARIZERS + ["ema"], "half"),
                                           (REGULARIZERS + ["ema"], 3), (REGULARIZERS + ["ema", "mixup"], 4)])
def test_a_fraction_gives_the_full_designs_main_effects_on_an_additive_response(factors, kind):
    full, part = design(factors, "full"), design(factors, kind)
    assert len(part.runs) < len(full.runs)
    y_full, truth = additive(full)
    y_part = np.array([y_full[list(map(tuple, full.signs)).index(tuple(row))] for row in part.signs])  # the same runs
    estimated_full, estimated_part = estimate_main_effects(full, y_full), estimate_main_effects(part, y_part)
    for f in factors:
        assert estimated_part[f] == pytest.approx(estimated_full[f], abs=1e-12)
        assert estimated_full[f] == pytest.approx(truth[f], abs=1e-12)


def two_by_two() -> tuple[Design, np.ndarray, dict]:
    """A full 2 x 2 design, its (runs, seeds) values, and each run's values by (dropout, batch_norm)."""
    d = design({"dropout": (0.0, 0.3), "batch_norm": (False, True)})
    y = np.array([[97.0, 97.2], [98.1, 98.0], [97.5, 97.9], [98.9, 99.0]])  # (runs, seeds)
    by = {(run["dropout"], run["batch_norm"]): y[r] for r, run in enumerate(d.runs)}
    return d, y, by


def test_a_full_design_gives_the_reports_paired_effects():
    d, y, by = two_by_two()
    paired = np.mean([by[0.3, b] - by[0.0, b] for b in (False, True)], axis=0)
    assert estimate_main_effects(d, y)["dropout"] == pytest.approx(paired)


def test_a_full_design_gives_the_reports_interactions():
    d, y, by = two_by_two()
    interaction = by[0.3, True] - by[0.3, False] - by[0.0, True] + by[0.0, False]
    assert estimate_interactions(d, y)["dropout x batch_norm"] == pytest.approx(interaction)


def test_a_resolution_iii_design_refuses_two_way_interactions():
    d = design(["dropout", "batch_norm", "augment"], "half")  # augment = dropout x batch_norm
    assert d.resolution == 3 and estimable_interactions(d) == []
    y, _ = additive(d)
    with pytest.raises(DesignError, match=re.escape("dropout x batch_norm cannot be estimated in this resolution-III "
                                                    "design: it is aliased with the main effect of augment")):
        estimate_interactions(d, y, ["dropout x batch_norm"])
    assert estimate_interactions(d, y) == {}
    d7 = design([f"f{j}" for j in range(7)], 3)  # 2^(7-4), saturated: every two-way is on a main effect
    assert len(d7.runs) == 8 and estimable_interactions(d7) == []


def test_resolution_iv_keeps_two_ways_off_main_effects():
    d = design(REGULARIZERS, 4)
    assert estimable_interactions(d) == [f"{a} x {b}" for a, b in itertools.combinations(REGULARIZERS, 2)]
    y, _ = additive(d)
    assert all(v == pytest.approx(0.0, abs=1e-12) for v in estimate_interactions(d, y).values())


@pytest.mark.parametrize("factors, resolution, runs", [(7, 3, 8), (8, 4, 16), (5, 5, 16), (6, 5, 32), (4, 5, 16)])
def test_the_fewest_runs_at_a_resolution(factors, resolution, runs):
    d = design([f"f{j}" for j in range(factors)], resolution)
    assert len(d.runs) == runs
    assert d.resolution is None or d.resolution >= resolution


@pytest.mark.parametrize("factors, kind, message", [
    ({"augment": ("none", "affine", "elastic"), "dropout": (0.0, 0.3)}, "full",
     "augment has 3 values (none, affine, elastic): a two-level design needs exactly 2"),
    (["dropout", "batch_norm"], "half", "a half fraction of 2 factors aliases main effects with each other"),
    (REGULARIZERS, 2, "a design is \"full\", \"half\" or a resolution of 3 or more (an integer), not 2"),
    (REGULARIZERS, "quarter", "not 'quarter'"),
    (["dropout", "dropout"], "full", "factor dropout appears 2 times"),
    ([], "full", "at least one factor"),
])
def test_designs_that_cannot_be_built_are_refused_in_one_line(factors, kind, message):
    with pytest.raises(DesignError, match=re.escape(message)) as e:
        design(factors, kind)
    assert "\n" not in str(e.value)

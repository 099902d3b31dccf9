"""runner/results/looks.py, seeds in rounds: what stored trials decide at each look, and which round comes next
(and a rounds table the spec refuses). (The report's section on them: tests/report/test_markdown_rounds.py.)
Synthetic trials with per-image predictions, nothing trained.

Of 2,000 test images 1,800 are right in every trial; batch norm makes `shift` more right; every trial then
flips 30 images of its own (its seed's and setting's noise), so an effect's z grows with its seeds.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner

from runner.cli import cli
from runner.results.looks import stored_plan
from runner.store import Store

from tests.report.predicted import IMAGES, ROUNDS_SPEC as SPEC, add_predicted_trial, correct_for, write_study

def _add_seed(spec, url, seed: int, correct, only: set[str] | None = None) -> None:
    store = Store(url)
    study = store.open_study(spec.study.name, spec.study.direction)
    labels = np.random.default_rng(0).integers(0, 10, IMAGES)  # as write_study's
    for point in spec.points():
        if point.seed == 0 and (only is None or point.setting_key in only):
            point = replace(point, seed=seed)
            add_predicted_trial(store, study, point, correct(point), labels)
    store.dispose()


def test_a_large_effect_is_decided_at_the_first_look_and_no_effect_stops_as_undecidable(tmp_path):
    (tmp_path / "a").mkdir()
    spec, url = write_study(tmp_path / "a" / "s.toml", SPEC.format(until="effects"), correct_for(40), IMAGES)
    p = stored_plan(spec, url)
    [look] = p.looks
    verdicts = {e.factor: e.verdict for e in look.effects}
    assert verdicts == {"batch_norm": "improves", "augment": "undecided"}
    assert p.stopped == "none of the 1 undecided effects could be decided within max = 10 seeds"
    assert p.seeds == 3 and p.round == 1
    (tmp_path / "b").mkdir()
    spec, url = write_study(tmp_path / "b" / "s.toml", SPEC.format(until="effects"), correct_for(0), IMAGES)
    p = stored_plan(spec, url)
    assert p.stopped == "none of the 2 undecided effects could be decided within max = 10 seeds"
    assert all(e.verdict == "undecided" and not e.decidable for e in p.looks[-1].effects)


def test_an_effect_that_can_still_be_decided_asks_for_one_more_seed_for_every_point(tmp_path):
    correct = correct_for(15)
    spec, url = write_study(tmp_path / "s.toml", SPEC.format(until="effects"), correct, IMAGES)
    p = stored_plan(spec, url)
    [look] = p.looks
    bn = look.effects[0]
    assert (bn.factor, bn.verdict, bn.decidable) == ("batch_norm", "undecided", True)
    assert abs(bn.z) < look.bound  # the first look's O'Brien-Fleming boundary is far: 4.09 at 3 of 10 seeds
    assert p.stopped is None and p.seeds == 4 and p.round == 2
    round_two = p.spec(spec)
    assert round_two.point_count() == len(round_two.points()) == 16  # 4 settings x seeds 0-3
    stored = {q.config_hash for q in spec.points()}
    assert sum(q.config_hash not in stored for q in round_two.points()) == 4  # only seed 3 is new
    for seed in range(3, 10):
        _add_seed(spec, url, seed, correct)
        p = stored_plan(spec, url)
        if p.stopped is not None:
            break
    assert [x.seeds for x in p.looks] == list(range(3, seed + 2))  # a look after every round: seeds 0 to `seed`
    assert p.looks[-1].effects[0].verdict == "improves" and p.looks[-1].seeds < 10  # decided before max
    assert p.stopped.startswith("none of the 1 undecided")  # augment has nothing to decide


def test_racing_drops_what_is_shown_worse_and_adds_seeds_only_to_the_rest(tmp_path):
    correct = correct_for(0, worse=120)  # affine without batch norm: 6 points worse, the rest the same
    spec, url = write_study(tmp_path / "s.toml", SPEC.format(until="best"), correct, IMAGES)
    p = stored_plan(spec, url)
    [look] = p.looks
    assert [label for label, _ in look.left] == ["lenet5 augment=affine"]  # the report's label
    assert look.racing == 3 and p.stopped is None and p.seeds == 4
    nxt = p.spec(spec)
    assert len(nxt.points()) == nxt.point_count() == 12 + 3  # seeds 0-2 for all four, seed 3 for the three left
    out = {q.setting_key for q in spec.points()} - p.race[3]
    assert len(out) == 1 and "affine" in next(iter(out)) and '"batch_norm": false' in next(iter(out))
    _add_seed(spec, url, 3, correct, only=set(p.race[3]))
    again = stored_plan(spec, url)
    assert [x.seeds for x in again.looks] == [3, 4] and again.looks[1].left == ()  # the rest are the same: they stay


@pytest.mark.parametrize("seeds, message", [
    ('{ first = 3 }', "[study].seeds: a table needs max = M"),
    ('{ first = 3, max = 3 }', "[study].seeds.max: 3 is not above first = 3"),
    ('{ first = 1, max = 5 }', "[study].seeds.first: 1 is not an integer >= 2"),
    ('{ max = 5, until = "bets" }', '[study].seeds.until: "bets" is not "effects" | "best"; did you mean "best"?'),
])
def test_a_wrong_rounds_table_is_refused_in_one_line(tmp_path, seeds, message):
    path = tmp_path / "s.toml"
    path.write_text(SPEC.format(until="effects").replace('{ first = 3, max = 10, until = "effects" }', seeds))
    result = CliRunner().invoke(cli, ["grid", str(path), "--dry-run"])
    assert result.exit_code != 0 and message in result.output and len(result.output.strip().splitlines()) == 1

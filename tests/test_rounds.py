"""`runner grid` of seeds in rounds (runner.rounds), trained for real on a data subset: a round after another
until the stored trials decide, with --workers too; an interrupted round continues; a failed trial stops the
rounds in one line; --dry-run shows the first round and the most it can cost; `runner watch` shows the round."""
from __future__ import annotations

import optuna
from click.testing import CliRunner

from runner import record
from runner.cli import cli
from runner.spec import load_spec
from runner.store import Store

ROUNDS = '{ first = 2, max = 3, until = "effects" }'


def _grid(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["grid", *args])  # stdout and stderr together
    return result.exit_code, result.output


RACE = """
[study]
name = "race"
seeds = { first = 2, max = 3, until = "best" }
[data]
train_limit = 600
test_limit = 300
[train]
epochs = 1
batch_size = 100
lr = 0.05
[models.lenet5]
arch = "lenet5"
[grid]
weight_decay = [0.0, 1e-12]
"""  # two settings that train alike: neither is shown worse, so both race to max


def test_rounds_run_until_max_with_two_workers_and_watch_shows_where_they_stopped(write_spec, tmp_path):
    spec = write_spec(RACE)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    code, out = _grid(str(spec), "--storage", url, "--workers", "2")
    assert code == 0, out
    lines = out.splitlines()
    assert [x for x in lines if x.startswith("race: round") or x.startswith("race: seeds in")] == [
        'race: round 1 of at most 2: seeds 0-1 (until = "best")',
        'race: round 2 of at most 2: seeds 0-2 (until = "best"), 2 configurations still racing',
        'race: seeds in rounds { first = 2, max = 3, until = "best" }: stopped after round 2 of at most 2: max = 3 '
        "seeds reached with 2 configurations still racing"]
    assert "race: 0 of 4 trials complete; 4 to run on 2 workers" in lines
    assert "race: 4 of 6 trials complete; 2 to run on 2 workers" in lines
    assert lines[-4] == "race: 6 of 6 trials complete"  # then the best so far, the report and trials commands
    study = optuna.load_study(study_name="race", storage=url)
    complete = [t for t in study.get_trials() if t.state.name == "COMPLETE"]
    assert sorted(t.params["seed"] for t in complete) == [0, 0, 1, 1, 2, 2]
    assert len({record.of(t).config_hash for t in complete}) == 6  # each point once
    at = record.study_of(study).round
    assert (at["round"], at["seeds"], at["points"]) == (2, 3, 6) and at["stopped"].startswith("max = 3 seeds")
    watch = CliRunner().invoke(cli, ["watch", str(spec), "--storage", url, "--once"])
    assert watch.exit_code == 0, watch.output
    assert watch.output.splitlines()[1] == ("seeds in rounds: stopped after round 2 of at most 2 (3 seeds): max = 3 "
                                            "seeds reached with 2 configurations still racing")
    assert watch.output.splitlines()[2].startswith("6 of 6 complete")  # the round's points, not the first round's
    again_code, again = _grid(str(spec), "--storage", url)  # nothing left: the same stop, nothing trained
    assert again_code == 0 and "stopped after round 2" in again and "trial 6" not in again
    assert again.splitlines()[-4] == "race: 6 of 6 trials complete"  # what the storage holds, nothing run
    report = CliRunner().invoke(cli, ["report", str(spec), "--storage", url, "--out", str(tmp_path / "report")])
    assert report.exit_code == 0, report.output
    assert "## Seeds in rounds" in (tmp_path / "report" / "report.md").read_text()


def test_the_first_look_can_decide_every_effect(write_spec, tmp_path):
    spec = write_spec(seeds=ROUNDS)  # batch norm after 1 epoch of 600 images: a large effect
    code, out = _grid(str(spec), "--storage", f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert code == 0, out
    assert ('t: seeds in rounds { first = 2, max = 3, until = "effects" }: stopped after round 1 of at most 2: every '
            "main effect was decided at 2 seeds") in out
    assert out.splitlines()[-4] == "t: 4 of 4 trials complete"


def test_an_interrupted_round_continues_and_a_failed_trial_stops_the_rounds(write_spec, tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    first = write_spec(seeds="[0]", name="first.toml")  # seed 0 of round 1 only: as a run stopped half-way
    assert _grid(str(first), "--storage", url, "-q")[0] == 0
    spec = write_spec(seeds=ROUNDS)
    store = Store(url)
    rounds_spec = load_spec(spec)
    [point] = [p for p in rounds_spec.points() if p.seed == 1 and p.reg("batch_norm")]
    store.claim("t", point.config_hash, "elsewhere:1", 60)  # its trial failed on another machine
    store.update_claim("t", point.config_hash, "elsewhere:1", state="failed")
    store.dispose()
    code, out = _grid(str(spec), "--storage", url)
    assert code == 1, out
    assert "t: 2 of 4 trials complete; 1 to run" in out  # the two of seed 0 kept; the failed one not retried
    assert "t: round 1 cannot be looked at: 1 of its trials failed before (--retry-failed runs them again)" in out
    code, out = _grid(str(spec), "--storage", url, "--retry-failed")
    assert code == 0, out
    assert "t: 3 of 4 trials complete; 1 to run" in out and "t: seeds in rounds" in out


def test_dry_run_shows_the_first_round_and_the_most_the_rounds_can_cost(write_spec):
    spec = write_spec(seeds='{ first = 3, max = 8, until = "best" }')
    code, out = _grid(str(spec), "--dry-run")
    assert code == 0, out
    assert "6 points: 2 settings x 3 seeds" in out
    assert ('seeds in rounds { first = 3, max = 8, until = "best" }: the first round is the 6 points above (seeds '
            "0-2); each later round adds one seed; at most 16 points (8 seeds if no setting leaves the race, 5 more "
            "rounds)") in out
    code, out = _grid(str(spec), "--dry-run", "--max-points", "10")  # the first round fits, not the most
    assert code == 0 and "runner grid would refuse it: more than 10 points" in out
    code, out = _grid(str(spec), "--max-points", "10")
    assert code != 0 and "16 points" in out and "--max-points 16" in out

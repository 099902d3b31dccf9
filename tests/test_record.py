"""runner/record.py: what a trial and a study store has one home. No other module touches a record's user
attrs, nor names a stored key with a string; the readers give each key's value, or its default, and a search
trial's record is built as a grid trial's is."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
from click.testing import CliRunner

from runner import record
from runner.cli import cli

from tests.helpers import TUNE_SPEC as SPEC, URL, tune_trials as trials
from tests.helpers import tune_project  # noqa: F401 - fixtures

PACKAGE = Path(__file__).parent.parent / "runner"


WRITERS = ("set_user_attr", "set_trial_user_attr")


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts and p.name != "record.py")


def _offences(path: Path) -> list[str]:
    """Each place where a module reads user attrs itself, or writes one under a key spelled as a string."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr == "user_attrs":
            out.append(f"{path.name}:{node.lineno}: reads .user_attrs (use runner.record.of / study_of)")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in WRITERS:
            keys = [a for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            if keys:
                out.append(f"{path.name}:{node.lineno}: {node.func.attr}({keys[0].value!r}, ...)")
        if isinstance(node, ast.keyword) and node.arg == "user_attrs" and isinstance(node.value, ast.Dict):
            spelled = [k.value for k in node.value.keys if isinstance(k, ast.Constant)]
            if spelled:
                out.append(f"{path.name}:{node.value.lineno}: user_attrs={{{spelled[0]!r}: ...}}")
    return out


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_but_record_spells_a_stored_key(path):
    assert not _offences(path)


def test_the_check_finds_a_key_spelled_outside(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('x = t.user_attrs.get("label")\nstore.set_trial_user_attr(1, "fail_reason", "x")\n'
                   'study.enqueue_trial({}, user_attrs={"enqueued_from": "x"})\n')
    assert len(_offences(bad)) == 3


def test_every_key_is_listed_once():
    constants = {v for k, v in vars(record).items() if k.isupper() and isinstance(v, str) and not k.endswith("SUFFIX")}
    assert constants == record.TRIAL_KEYS | record.STUDY_KEYS
    assert not record.TRIAL_KEYS & record.STUDY_KEYS


def test_derived_study_names_round_trip():
    assert record.search_study("reg") == "reg-search" and record.select_study("reg") == "reg-select"
    assert record.is_search_study("reg-search") and not record.is_search_study("reg-select")


def test_the_readers_give_stored_values_and_defaults():
    attrs = {"config_hash": "abc", "config": {"model": {"source_sha256": "s1"}, "train": {"epochs": 3}},
             "weights": {"sha256": "f" * 64, "bytes": 10, "artifact_id": "a1"}, "epochs": [{"epoch": 1}],
             "worker": "h:1", "versions": {"torch": "2"}}
    r = record.TrialRecord(attrs)
    assert (r.config_hash, r.source_sha256, r.train_epochs, r.worker) == ("abc", "s1", 3, "h:1")
    assert r.weights == record.Weights("f" * 64, 10, "a1")
    assert r.section("data") == {} and r.data_source_sha256 is None and r.label is None
    assert r.provenance() == {"config_hash": "abc", "worker": "h:1", "versions": {"torch": "2"}}
    empty = record.TrialRecord({})
    assert (empty.config, empty.epochs, empty.versions, empty.weights, empty.normalization_auto) == ({}, [], {}, None, ())
    assert record.StudyRecord({}).test_information == {} and record.StudyRecord({"winner": {"a": 1}}).winner == {"a": 1}


def test_the_builders_write_only_known_keys():
    out = record.outcome_record(1.5, 12.345, 99.1)
    assert out == {"wall_seconds": 1.5, "peak_memory_mb": 12.3, "best_test_acc": 99.1}
    assert "best_test_acc" not in record.outcome_record(1.5, 1.0)
    written = {}

    class Storage:
        def set_trial_user_attr(self, trial_id, key, value):
            written[key] = value

    record.write(Storage(), 0, out)
    assert written == out
    with pytest.raises(AssertionError):
        record.write(Storage(), 0, {"not_a_key": 1})


# ---------------------------------------------------------------- one builder for grid and search


def test_a_search_trial_records_what_it_trained_with_as_a_grid_trial_does(project):
    """The normalization numbers (not "auto"), the dataset, its source, the split sizes, the checksum."""
    spec = SPEC.replace("val_fraction = 0.2", 'val_fraction = 0.2\nmean = "auto"\nstd = "auto"')
    (project / "spec.toml").write_text(spec.replace("trials = 6", "trials = 1"))
    result = CliRunner().invoke(cli, ["tune", "spec.toml", "--storage", URL])
    assert result.exit_code == 0, result.output
    search = trials("tu-search")[0].user_attrs
    grid = trials("tu-select")[0].user_attrs  # a selection trial: a grid trial of the same data
    for k in ("mean", "std"):
        assert isinstance(search["config"]["data"][k], float)
        assert search["config"]["data"][k] == grid["config"]["data"][k]
    assert search["normalization_auto"] == ["mean", "std"]
    for k in ("dataset", "data_source", "data_official", "data_shape", "classes", "data_checksum", "train_size",
              "val_size"):
        assert search[k] == grid[k], k
    assert search["train_size"] + search["val_size"] == 600 and search["test_size"] == 0  # test never used
    for record in (search, grid):  # one builder: a search trial has its time and memory as a grid trial does
        assert record["wall_seconds"] > 0 and record["peak_memory_mb"] > 0


# ---------------------------------------------------------------- interrupted is not failed (issue 35 point 8)


def test_an_interrupted_or_taken_over_trial_is_shown_apart_from_the_failed(tmp_path, write_spec):
    """Optuna's state stays FAIL; the reason lifecycle writes makes studies, trials, watch and the report say
    "interrupted", and only the NaN trial counts as failed."""
    import json

    import optuna

    from runner.store import Store
    from runner.trials.lifecycle import fail_trial

    spec, url = write_spec(), f"sqlite:///{tmp_path}/db.sqlite"
    assert CliRunner().invoke(cli, ["grid", str(spec), "--storage", url, "-q"]).exit_code == 0
    study = optuna.load_study(study_name="t", storage=url)
    done = study.get_trials()[0]
    store = Store(url)
    for i, reason in enumerate((record.StopReason.INTERRUPTED, record.StopReason.TAKEN_OVER, "loss became nan")):
        study.add_trial(optuna.trial.create_trial(  # a point of seed 1: not in the spec's 2 points
            state=optuna.trial.TrialState.RUNNING, params=done.params, distributions=done.distributions,
            user_attrs={**done.user_attrs, "config_hash": f"other{i}"}))
        fail_trial(store, study.get_trials()[-1]._trial_id, reason)  # as the lifecycle ends it
    store.dispose()
    assert [t.state.name for t in study.get_trials()][2:] == ["FAIL"] * 3  # Optuna's state, underneath

    run = CliRunner()
    studies = json.loads(run.invoke(cli, ["studies", "--storage", url, "--format", "json"]).output)
    assert (studies[0]["complete"], studies[0]["fail"], studies[0]["interrupted"]) == (2, 1, 2)
    assert "interrupted" in run.invoke(cli, ["studies", "--storage", url]).output.splitlines()[0]
    rows = json.loads(run.invoke(cli, ["trials", "--study", "t", "--storage", url, "--format", "json"]).output)
    assert [r["state"] for r in rows] == ["complete", "complete", "interrupted", "interrupted", "fail"]
    where = run.invoke(cli, ["trials", "--study", "t", "--storage", url, "--where", "state = fail"]).output
    assert "loss became nan" in where and "taken over" not in where
    watch = run.invoke(cli, ["watch", "--study", "t", "--storage", url, "--once"]).output
    assert "2 complete, 0 running, 1 failed, 2 interrupted (among those to go: they resume from their checkpoints)" \
        in watch, watch
    made = run.invoke(cli, ["report", str(spec), "--storage", url, "--out", str(tmp_path / "r")])
    assert made.exit_code == 0, made.output
    left_out = json.loads((tmp_path / "r" / "summary.json").read_text())["excluded"]
    assert sorted(x["state"] for x in left_out) == ["fail", "interrupted", "interrupted"]
    assert any(x["reason"].startswith("interrupted: stopped, not failed") for x in left_out)
    assert ",interrupted," in (tmp_path / "r" / "trials.csv").read_text()

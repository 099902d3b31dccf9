"""runner/query.py: `runner studies`, `runner trials` and `runner show` over a small real study."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner

from runner.cli import cli
from runner.query import Clause, parse_filter

from tests.helpers import epoch_rows, header, validation_trials as trials
from tests.helpers import run, tune_project, validation_write  # noqa: F401 - fixtures


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    """A study of 2 models x 2 batch_norm x 2 seeds, plus one failed and one running trial."""
    folder = tmp_path_factory.mktemp("query")
    spec = folder / "q.toml"
    spec.write_text(Path(__file__).with_name("conftest.py").read_text().split('SMALL_SPEC = """')[1]
                    .split('"""')[0].format(name="q", seeds="[0, 1]", epochs=1, models='["lenet5", "mlp"]',
                                            batch_norm="[false, true]"))
    url = f"sqlite:///{folder}/q.sqlite"
    result = CliRunner().invoke(cli, ["grid", str(spec), "--storage", url, "--quiet"])
    assert result.exit_code == 0, result.output
    storage = optuna.storages.RDBStorage(url)
    study = optuna.load_study(study_name="q", storage=storage)
    failed = optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL, params={"model": "lenet5", "seed": 7},
                                       distributions={"model": optuna.distributions.CategoricalDistribution(["lenet5", "mlp"]),
                                                      "seed": optuna.distributions.IntDistribution(7, 7)},
                                       user_attrs={"fail_reason": "loss became nan in epoch 1"})
    study.add_trial(failed)
    study.ask()  # a running trial with no params yet
    storage.engine.dispose()  # close it, so that the WAL is folded into the file the tests copy
    return folder / "q.sqlite"


@pytest.fixture
def query(db, tmp_path):
    copy = tmp_path / "q.sqlite"
    shutil.copy(db, copy)

    def run(*args: str):
        result = CliRunner().invoke(cli, [*args, "--storage", f"sqlite:///{copy}"])
        return result
    run.path = copy
    return run


def test_studies_lists_trials_by_state_and_best_value(query):
    out = query("studies").output
    assert "q      maximize   10      8         1        1" in out


def test_filter_grammar_binds_and_tighter_than_or():
    groups = parse_filter("model = lenet5 and dropout > 0 or augment = 'affine net'")
    assert groups == [[Clause("model", "=", "lenet5"), Clause("dropout", ">", 0.0)],
                      [Clause("augment", "=", "affine net")]]
    assert parse_filter("batch_norm = TRUE") == [[Clause("batch_norm", "=", True)]]


@pytest.mark.parametrize("hostile", [
    "model = lenet5; drop table trials", "__import__('os').system('x')", "model = lenet5 and", "", "dropout >",
    "model == lenet5", "model = lenet5 xor seed = 1", "1 = 1", "model = (lenet5)", "seed = nan",
])
def test_hostile_or_malformed_filters_are_refused_with_the_grammar(query, hostile):
    result = query("trials", "--study", "q", "--where", hostile)
    assert result.exit_code == 1
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert "KEY OP VALUE" in result.output or "holds numbers" in result.output or "unknown key" in result.output


def test_unknown_filter_key_names_the_keys(query):
    result = query("trials", "--study", "q", "--where", "dropuot > 0")
    assert result.exit_code == 1
    assert "unknown key 'dropuot'; did you mean \"dropout\"? keys: number, state, model, seed" in result.output
    assert "batch_norm" in result.output and "test_acc" in result.output


@pytest.mark.parametrize("option, typo, near", [("--where", "modle = lenet5", "model"), ("--sort", "-tset_acc", "test_acc"),
                                                ("--group-by", "batchnorm", "batch_norm")])
def test_a_misspelled_key_gets_the_nearest_one(query, option, typo, near):
    result = query("trials", "--study", "q", option, typo)
    assert result.exit_code == 1 and f'did you mean "{near}"?' in result.output


def test_a_key_like_no_other_gets_the_list_alone(query):
    result = query("trials", "--study", "q", "--sort", "zzzz")
    assert result.output.strip() == ("Error: --sort: unknown key 'zzzz'; keys: number, state, model, seed, "
                                     + result.output.split("model, seed, ", 1)[1].strip())
    assert "did you mean" not in result.output


def test_where_sort_and_limit(query):
    out = query("trials", "--study", "q", "--where", "model = lenet5 and state = complete", "--sort", "-test_acc",
                "--format", "json").output
    rows = json.loads(out)
    assert len(rows) == 4 and {r["model"] for r in rows} == {"lenet5"}
    accs = [r["test_acc"] for r in rows]
    assert accs == sorted(accs, reverse=True)
    up = json.loads(query("trials", "--study", "q", "--sort", "test_acc", "--limit", "3", "--format", "json").output)
    assert [r["test_acc"] for r in up] == sorted(r["test_acc"] for r in rows + up)[:3] or len(up) == 3
    assert [r["test_acc"] for r in up] == sorted(r["test_acc"] for r in up)


def test_json_is_flat_with_params_as_keys(query):
    rows = json.loads(query("trials", "--study", "q", "--format", "json").output)
    assert len(rows) == 10
    first = rows[0]
    assert {"number", "state", "model", "batch_norm", "seed", "test_acc", "seconds"} <= set(first)
    assert isinstance(first["batch_norm"], bool) and 0 < first["test_acc"] <= 100


def test_csv_has_a_header_row(query):
    text = query("trials", "--study", "q", "--format", "csv", "--columns", "number,model,seed,test_acc").output
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == ["number", "model", "seed", "test_acc"] and len(rows) == 10


def test_markdown_is_a_github_table(query):
    lines = query("trials", "--study", "q", "--format", "markdown", "--columns", "number,state,model").output.splitlines()
    assert lines[0] == "| number | state | model |" and lines[1] == "|---|---|---|"
    assert len(lines) == 12


def test_failed_and_running_trials_are_listed_and_filterable(query):
    out = query("trials", "--study", "q", "--where", "state != complete", "--format", "json").output
    rows = json.loads(out)
    assert sorted(r["state"] for r in rows) == ["fail", "running"]
    assert all(r["test_acc"] is None for r in rows)
    fail = [r for r in rows if r["state"] == "fail"][0]
    assert fail["fail_reason"] == "loss became nan in epoch 1"


def test_group_by_gives_mean_std_and_n_over_seeds_of_complete_trials(query):
    rows = json.loads(query("trials", "--study", "q", "--group-by", "model,batch_norm", "--format", "json").output)
    assert len(rows) == 4 and all(r["n"] == 2 for r in rows)
    trials = json.loads(query("trials", "--study", "q", "--format", "json").output)
    lenet_bn = [t["test_acc"] for t in trials if t["model"] == "lenet5" and t["batch_norm"] is True]
    group = [r for r in rows if r["model"] == "lenet5" and r["batch_norm"] is True][0]
    assert group["test_acc_mean"] == pytest.approx(sum(lenet_bn) / 2)
    table = query("trials", "--study", "q", "--group-by", "batch_norm").output
    assert "±" in table and "n" in table.splitlines()[0]


def test_an_unknown_column_is_one_line(query):
    assert "unknown column 'acc'" in query("trials", "--study", "q", "--columns", "acc").output


def test_an_unknown_study_is_one_line(query):
    result = query("trials", "--study", "nope")
    assert result.exit_code == 1 and "no study named 'nope'; studies here: q" in result.output


def test_show_prints_config_provenance_and_epochs(query):
    out = query("show", "--study", "q", "0").output
    assert "trial 0 of q: complete" in out
    assert '"arch": "lenet5"' in out and "data_checksum:" in out and "versions:" in out
    assert "epoch  train_loss" in out
    detail = json.loads(query("show", "--study", "q", "0", "--format", "json").output)
    assert len(detail["epochs"]) == 1 and detail["epochs"][0]["test_acc"] == detail["value"]
    assert "has no trial 99" in query("show", "--study", "q", "99").output


def test_reading_never_writes(query):
    before = hashlib.sha256(query.path.read_bytes()).hexdigest()
    for args in (["studies"], ["trials", "--study", "q"], ["trials", "--study", "q", "--group-by", "model"],
                 ["show", "--study", "q", "3"], ["trials", "--study", "q", "--where", "bad"]):
        query(*args)
    assert hashlib.sha256(query.path.read_bytes()).hexdigest() == before


def test_a_missing_database_is_not_created(tmp_path):
    result = CliRunner().invoke(cli, ["studies", "--storage", f"sqlite:///{tmp_path}/none.sqlite"])
    assert result.exit_code == 1 and "no such database" in result.output
    assert not (tmp_path / "none.sqlite").exists()


# ---------------------------------------------------------------- a search's trials


def test_runner_trials_lists_a_search_with_its_validation_metrics_and_no_test_metric(project):
    assert CliRunner().invoke(cli, ["tune", "spec.toml", "--no-confirm"]).exit_code == 0
    result = CliRunner().invoke(cli, ["trials", "--study", "tu-search", "--sort", "-val_acc", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    finished = [r for r in rows if r["state"] in ("complete", "pruned")]
    assert len(finished) == 6 and all(r["val_acc"] is not None and r["test_acc"] is None for r in finished)
    vals = [r["val_acc"] for r in rows if r["val_acc"] is not None]
    assert vals == sorted(vals, reverse=True)
    shown = CliRunner().invoke(cli, ["show", "--study", "tu-search", str(finished[0]["number"]), "--format", "json"])
    detail = json.loads(shown.output)
    assert detail["epochs"] and all(e["val_acc"] is not None and e["test_acc"] is None for e in detail["epochs"])


# ---------------------------------------------------------------- without a validation split


def test_a_study_without_a_validation_split_shows_no_val_columns(run, write):
    result = run("grid", write(epochs=1))
    assert result.exit_code == 0, result.output
    (t,) = trials()
    assert t.user_attrs["val_size"] == 0 and t.user_attrs["train_size"] == 500
    assert "val_fraction" not in t.user_attrs["config"]["data"]
    assert all(r[1] is None and r[2] is None for r in epoch_rows())
    listed = run("trials", "--study", "v")
    assert listed.exit_code == 0, listed.output
    assert "test_acc" in header(listed.output)
    assert not {"val_acc", "val_loss"} & set(header(listed.output))
    shown = run("show", "--study", "v", "0")
    epochs = shown.output.split("\nepochs:\n")[1]
    assert "val_" not in epochs and "test_acc" in epochs


# ---------------------------------------------------------------- a study whose test set is locked


LOCKED_SPEC = """
[study]
name = "lk"
seeds = [0]
metric = "val_acc"
test = "locked"

[data]
train_limit = 300
test_limit = 100
val_fraction = 0.2

[train]
epochs = 1
batch_size = 100

[models.mlp]
arch = "mlp"
hidden = [16]

[grid]
model = ["mlp"]
lr = [0.01, 0.05]
"""
TEST_WORDS = ("test_acc", "test_loss", "best_test_acc", "test_size")


@pytest.fixture(scope="module")
def locked_db(tmp_path_factory) -> Path:
    """A locked study of 2 points ([study].test = "locked"), 1 epoch on 240 training images, weights kept."""
    folder = tmp_path_factory.mktemp("locked")
    (folder / "lk.toml").write_text(LOCKED_SPEC)
    url = f"sqlite:///{folder}/lk.sqlite"
    result = CliRunner().invoke(cli, ["grid", str(folder / "lk.toml"), "--storage", url, "--quiet",
                                      "--artifacts", str(folder / "artifacts")])
    assert result.exit_code == 0, result.output
    return folder / "lk.sqlite"


@pytest.fixture
def locked(locked_db, tmp_path):
    copy = tmp_path / "lk.sqlite"
    shutil.copy(locked_db, copy)

    def run(*args: str):
        return CliRunner().invoke(cli, [*args, "--storage", f"sqlite:///{copy}"])
    return run


def test_trials_of_a_locked_study_have_no_test_column_in_any_format(locked):
    table = locked("trials", "--study", "lk")
    assert table.exit_code == 0, table.output
    assert header(table.output) == ["number", "state", "model", "lr", "seed", "epochs", "val_acc", "val_loss",
                                    "train_acc", "train_loss", "seconds"]
    rows = json.loads(locked("trials", "--study", "lk", "--format", "json").output)
    assert len(rows) == 2 and all(r["val_acc"] is not None for r in rows)
    assert not any(k.startswith(("test_", "best_test")) for r in rows for k in r)
    assert "test" not in locked("trials", "--study", "lk", "--format", "csv").output
    grouped = locked("trials", "--study", "lk", "--group-by", "model", "--format", "json").output
    assert "val_acc_mean" in grouped and "test" not in grouped
    ranked = json.loads(locked("trials", "--study", "lk", "--sort", "-val_acc", "--format", "json").output)
    assert [r["val_acc"] for r in ranked] == sorted((r["val_acc"] for r in rows), reverse=True)


@pytest.mark.parametrize("args", [
    ["--where", "test_acc>1"], ["--sort", "-test_acc"], ["--sort", "best_test_acc"], ["--columns", "number,test_loss"],
    ["--group-by", "model", "--sort", "-test_acc"],
])
def test_a_test_metric_asked_of_a_locked_study_is_refused_in_one_line(locked, args):
    result = locked("trials", "--study", "lk", *args)
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1, result.output
    assert "the study's test set is locked ([study].test = \"locked\")" in result.output
    assert "use val_acc or val_loss" in result.output


def test_show_of_a_locked_trial_has_no_test_line(locked):
    out = locked("show", "--study", "lk", "0").output
    assert "trial 0 of lk: complete" in out
    epochs = out.split("\nepochs:\n")[1]
    assert epochs.splitlines()[0].split() == ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"]
    provenance = out.split("\nprovenance:\n")[1].split("\n\n")[0]
    assert not any(w in provenance for w in TEST_WORDS) and "val_size: " in provenance
    detail = json.loads(locked("show", "--study", "lk", "0", "--format", "json").output)
    assert detail["epochs"][0]["val_acc"] == detail["value"]
    assert not any(w in json.dumps([detail["epochs"], detail["provenance"]]) for w in TEST_WORDS)


def test_studies_says_a_locked_study_is_locked(locked, query):
    out = locked("studies").output.splitlines()
    assert out[0].split()[-2:] == ["best_value", "test"] and out[2].split()[-1] == "locked"
    assert "test" not in query("studies").output  # no study locked: as before, no column


def test_export_of_a_locked_study_holds_no_test_metric(locked_db, tmp_path):
    import torch

    url, out = f"sqlite:///{locked_db}", tmp_path / "best.pt"
    result = CliRunner().invoke(cli, ["export", "--study", "lk", "--best", "--out", str(out), "--storage", url,
                                      "--artifacts", str(locked_db.parent / "artifacts")])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"wrote {out}: trial ") and "test" not in result.output.split(": ", 1)[1]
    kept = torch.load(out, weights_only=True)
    assert not any("test" in k or "acc" in k for k in kept)


def test_an_epochs_axis_keeps_its_planned_value_beside_the_epochs_a_trial_ran(query):
    """With epochs a grid axis, a trial stopped before its first epoch is still an epochs = 16 trial: the epochs it
    ran are their own column (epochs_run), not written over the axis, and the table has no column twice."""
    storage = optuna.storages.RDBStorage(f"sqlite:///{query.path}")
    study = optuna.create_study(study_name="e", storage=storage, direction="maximize")
    dists = {"model": optuna.distributions.CategoricalDistribution(["lenet5"]),
             "epochs": optuna.distributions.CategoricalDistribution([8, 16]),
             "seed": optuna.distributions.IntDistribution(0, 0)}
    for epochs in (8, 16):
        study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL, distributions=dists,
                                                  params={"model": "lenet5", "epochs": epochs, "seed": 0},
                                                  user_attrs={"fail_reason": "interrupted"}))
    storage.engine.dispose()
    out = query("trials", "--study", "e", "--where", "epochs = 16", "--format", "json").output
    assert [(r["epochs"], r["epochs_run"]) for r in json.loads(out)] == [(16, 0)], out
    head = query("trials", "--study", "e").output.splitlines()[0].split()
    assert head.count("epochs") == 1 and "epochs_run" in head, head

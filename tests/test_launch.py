"""runner/launch.py: `runner launch slurm`. Without a cluster: the time limits as Slurm reads them, and the
batch script. Then against a real single-node Slurm cluster and PostgreSQL server the suite starts (marked
slurm and postgres).

What is read back is read as a user would: the trials through Optuna's own CLI, the jobs through
squeue. The tasks share the work through the storage alone.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner

from runner.cli import cli
from runner.errors import RunnerError
from runner.launch import slurm_time

URL = "postgresql+psycopg://me@head:5432/runner"


@pytest.mark.parametrize("given, limit", [
    ("2h", "02:00:00"), ("90m", "01:30:00"), ("1h30m", "01:30:00"), ("1d12h", "1-12:00:00"),
    ("45", "00:45:00"), ("45:30", "00:45:30"), ("1:30:00", "01:30:00"),
    ("1-12", "1-12:00:00"), ("1-12:30", "1-12:30:00"), ("1-12:30:15", "1-12:30:15"),  # days-hours[:min[:s]]
])
def test_time_limits_read_as_slurm_reads_them(given, limit):
    assert slurm_time(given)[0] == limit


@pytest.mark.parametrize("given", ["5x", "30s", "0", ""])
def test_a_time_limit_slurm_cannot_take_is_one_line(given):
    with pytest.raises(RunnerError):
        slurm_time(given)


def test_the_dry_run_prints_a_script_that_requeues_near_its_limit_and_passes_the_options_on(write_spec, tmp_path):
    spec = write_spec()
    result = CliRunner().invoke(cli, ["launch", "slurm", str(spec), "--storage", URL, "--jobs", "4", "--time", "2h",
                                      "--gpus-per-job", "2", "--partition", "gpu", "--max-points", "500",
                                      "--checkpoints", str(tmp_path / "ck"), "--dry-run"])
    assert result.exit_code == 0, result.output
    script = result.output
    for line in ("#SBATCH --array=0-3", "#SBATCH --partition=gpu", "#SBATCH --time=02:00:00",
                 "#SBATCH --signal=B:USR1@120", "#SBATCH --gres=gpu:2", "#SBATCH --requeue", "trap requeue USR1",
                 'scontrol requeue "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"'):
        assert line in script, line
    assert f"--checkpoints {tmp_path / 'ck'}" in script and "--workers 2" in script and "--max-points 500" in script
    assert not (tmp_path / "slurm").exists()  # nothing written, nothing submitted


def test_a_grid_over_the_point_limit_is_refused_before_submitting(write_spec):
    result = CliRunner().invoke(cli, ["launch", "slurm", str(write_spec(seeds="[0, 1]")), "--storage", URL,
                                      "--jobs", "2", "--max-points", "3"])
    assert result.exit_code == 1 and "4 points (batch_norm 2 x 2 seeds), more than the 3" in result.output


# ---------------------------------------------------------------- against a real cluster


RUNNER = str(Path(sys.executable).with_name("runner"))


OPTUNA = str(Path(sys.executable).with_name("optuna"))


SPEC = """
[study]
name = "{name}"
seeds = {seeds}

[data]
train_limit = {train}
test_limit = 300

[train]
epochs = {epochs}
batch_size = 100
lr = 0.05
threads = 1

[models.mlp]
arch = "mlp"
hidden = [32]

[models.lenet5]
arch = "lenet5"

[grid]
model = ["{model}"]
batch_norm = [false, true]
"""


def _launch(env: dict, spec: Path, url: str, tmp: Path, *extra: str) -> str:
    done = subprocess.run([RUNNER, "launch", "slurm", str(spec), "--storage", url, "--checkpoints", str(tmp / "ckpt"),
                           "--artifacts", str(tmp / "artifacts"), "--logs", str(tmp / "logs"), *extra],
                          env=env, cwd=tmp, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    first = done.stdout.splitlines()[0]
    assert first.startswith("submitted job ") and "runner watch --study" in done.stdout, done.stdout
    return first.split()[2].rstrip(":")


def _wait(env: dict, job: str, timeout: float = 300) -> None:
    """Until no task of the job is pending or running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = subprocess.run(["squeue", "-h", "-j", job, "-o", "%i %T"], env=env, capture_output=True, text=True)
        if not left.stdout.strip():
            return
        time.sleep(1)
    pytest.fail(f"job {job} still in the queue after {timeout} s: {left.stdout}")


def _optuna_trials(url: str, study: str) -> list[dict]:
    """The study's trials as Optuna's own CLI prints them."""
    done = subprocess.run([OPTUNA, "trials", "--study-name", study, "--storage", url, "-f", "json"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _logs(tmp: Path) -> str:
    return "".join(p.read_text() for p in sorted((tmp / "logs").glob("*.out")))


@pytest.mark.slurm
@pytest.mark.postgres
def test_a_two_task_array_runs_every_point_exactly_once(slurm_cluster, postgres_url, tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.format(name="slurm2", seeds="[0, 1, 2]", train=600, epochs=1, model="mlp"))  # 6 points
    job = _launch(slurm_cluster, spec, postgres_url, tmp_path, "--jobs", "2")
    _wait(slurm_cluster, job)
    trials = _optuna_trials(postgres_url, "slurm2")
    assert [t["state"] for t in trials] == ["COMPLETE"] * 6, _logs(tmp_path)
    per_point = Counter(t["user_attrs"]["config_hash"] for t in trials)
    assert len(per_point) == 6 and set(per_point.values()) == {1}
    logs = _logs(tmp_path)
    assert f"task 0 of job {job}" in logs and f"task 1 of job {job}" in logs
    assert len(list((tmp_path / "artifacts").rglob("*"))) > 0  # the weights went to the shared folder


@pytest.mark.slurm
@pytest.mark.postgres
def test_a_two_task_array_runs_the_same_rounds_each_point_once(slurm_cluster, postgres_url, tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.format(name="rounds2", seeds='{ first = 2, max = 3, until = "best" }', train=600, epochs=1,
                                model="mlp").replace("batch_norm = [false, true]", "weight_decay = [0.0, 1e-12]"))
    job = _launch(slurm_cluster, spec, postgres_url, tmp_path, "--jobs", "2")  # two settings that train alike
    _wait(slurm_cluster, job)
    trials = _optuna_trials(postgres_url, "rounds2")
    logs = _logs(tmp_path)
    assert [t["state"] for t in trials] == ["COMPLETE"] * 6, logs  # both race to max = 3 seeds: 2 x 3 points
    per_point = Counter(t["user_attrs"]["config_hash"] for t in trials)
    assert len(per_point) == 6 and set(per_point.values()) == {1}
    texts = [[p.read_text() for p in (tmp_path / "logs").glob(f"*{task}")][0] for task in ("_0.out", "_1.out")]
    for text in texts:  # each task began the first round and saw where the rounds stopped, all complete
        assert 'rounds2: round 1 of at most 2: seeds 0-1 (until = "best")' in text, logs
        assert "stopped after round 2 of at most 2: max = 3 seeds reached" in text, logs
        assert "rounds2: 6 of 6 trials complete\nbest so far: " in text, logs  # each task: the storage's count
    # the second round ran once both tasks were past the first (a task that waits may find it ended already)
    assert any('rounds2: round 2 of at most 2: seeds 0-2 (until = "best")' in text for text in texts), logs


def _running_mid_trial(url: str, study: str, epochs: int, timeout: float = 120) -> optuna.trial.FrozenTrial:
    """A trial that has stored at least one epoch and is not done."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            trials = optuna.load_study(study_name=study, storage=url).get_trials()
        except KeyError:  # the study is made before submitting; its trials come once a task starts
            trials = []
        for t in trials:
            if t.state.name == "RUNNING" and 1 <= len(t.intermediate_values) < epochs:
                return t
        time.sleep(0.2)
    pytest.fail("no trial was seen mid-way")


@pytest.mark.slurm
@pytest.mark.postgres
def test_a_task_cancelled_mid_trial_has_its_point_taken_over_from_its_last_epoch(slurm_cluster, postgres_url,
                                                                                  tmp_path):
    epochs = 6
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.format(name="slurmcancel", seeds="[0, 1]", train=6000, epochs=epochs, model="lenet5"))
    # 4 points of some 4 s each
    job = _launch(slurm_cluster, spec, postgres_url, tmp_path, "--jobs", "2")
    victim = _running_mid_trial(postgres_url, "slurmcancel", epochs)
    pid = int(victim.user_attrs["worker"].rsplit(":", 1)[1])
    environ = dict(x.split("=", 1) for x in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in x)
    task = environ["SLURM_ARRAY_TASK_ID"]
    subprocess.run(["scancel", f"{job}_{task}"], env=slurm_cluster, check=True)
    _wait(slurm_cluster, job)

    study = optuna.load_study(study_name="slurmcancel", storage=postgres_url)
    trials = _optuna_trials(postgres_url, "slurmcancel")
    complete = Counter(t["user_attrs"]["config_hash"] for t in trials if t["state"] == "COMPLETE")
    assert len(complete) == 4 and set(complete.values()) == {1}, _logs(tmp_path)
    cancelled = next(t for t in study.get_trials() if t.number == victim.number)
    assert cancelled.state.name == "FAIL"
    point = victim.user_attrs["config_hash"]
    [after] = [t for t in study.get_trials() if t.state.name == "COMPLETE" and t.user_attrs["config_hash"] == point]
    done_before = {e: v for e, v in cancelled.intermediate_values.items()}
    assert done_before and all(after.intermediate_values[e] == v for e, v in done_before.items())  # carried over
    assert sorted(after.intermediate_values) == list(range(1, epochs + 1))
    assert f"resumed from the checkpoint after epoch {max(done_before)}" in _logs(tmp_path)


TUNE_SPEC = """
[study]
name = "slurmtune"
seeds = [0]

[data]
train_limit = 600
test_limit = 300
val_fraction = 0.2

[train]
epochs = 2
batch_size = 100
threads = 1

[models.mlp]
arch = "mlp"
hidden = [32]

[search]
metric = "val_acc"
trials = 5
top = 1
pruner = "none"

[search.space]
lr = {{ low = 0.01, high = 0.2, log = true }}
"""


@pytest.mark.slurm
@pytest.mark.postgres
def test_a_tune_array_finishes_exactly_its_budget(slurm_cluster, postgres_url, tmp_path):
    spec = tmp_path / "tune.toml"
    spec.write_text(TUNE_SPEC.format())
    job = _launch(slurm_cluster, spec, postgres_url, tmp_path, "--jobs", "2", "--tune")
    _wait(slurm_cluster, job)
    search = _optuna_trials(postgres_url, "slurmtune-search")
    assert Counter(t["state"] for t in search) == {"COMPLETE": 5}, _logs(tmp_path)
    confirmed = _optuna_trials(postgres_url, "slurmtune")
    assert [t["state"] for t in confirmed] == ["COMPLETE"]  # the best one, on test, once


def _resumed(url: str, study: str, timeout: float) -> tuple[optuna.trial.FrozenTrial, optuna.trial.FrozenTrial]:
    """A failed trial with epochs, and a later trial, running, that has trained past them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            trials = optuna.load_study(study_name=study, storage=url).get_trials()
        except KeyError:  # the study is made before submitting; its trials come once a task starts
            trials = []
        stopped = [t for t in trials if t.state.name == "FAIL" and t.intermediate_values]
        later = [t for t in trials if stopped and t.number > stopped[-1].number and t.state.name == "RUNNING"
                 and max(t.intermediate_values, default=0) > max(stopped[-1].intermediate_values)]
        if later:
            return stopped[-1], later[0]
        time.sleep(1)
    pytest.fail(f"no point resumed and trained on within {timeout} s: {[(t.number, t.state.name) for t in trials]}")


@pytest.mark.slurm
@pytest.mark.postgres
def test_a_task_at_its_time_limit_requeues_itself_and_its_point_resumes(slurm_cluster, postgres_url, tmp_path):
    """--time 2 (minutes): the task is told (SIGUSR1) 30 s before its limit, requeues itself and stops; its
    next run resumes the point from its last epoch checkpoint and trains on. Slurm looks at its jobs' limits
    every 30 s and warns early rather than late (sbatch --signal: "up to 60 seconds earlier"), so a run
    lasts 30 to 90 s. With 1 minute a requeued task restarted 10 s (cred_expire) after the look that
    requeued it was told at the next one, 20 s in: on a busy machine before its start-up and a first epoch
    were done, so that every run began the point afresh and the job never ended. The point has more epochs
    than any run trains, on a fast machine or a busy one: once a second run has trained past the first,
    the job is cancelled."""
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.format(name="slurmrequeue", seeds="[0]", train=6000, epochs=1000, model="lenet5").replace(
        "batch_norm = [false, true]", "batch_norm = [false]"))  # 1 point of some 1,000 x 0.7 s on 1 core
    job = _launch(slurm_cluster, spec, postgres_url, tmp_path, "--jobs", "1", "--time", "2")
    stopped, resumed = _resumed(postgres_url, "slurmrequeue", timeout=400)
    subprocess.run(["scancel", job], env=slurm_cluster, check=True)
    _wait(slurm_cluster, job)
    logs = _logs(tmp_path)
    assert "time limit in 30 s: requeued" in logs and "restart 1" in logs, logs
    last = max(stopped.intermediate_values)
    assert f"resumed from the checkpoint after epoch {last}" in logs, logs
    trials = {t.number: t for t in optuna.load_study(study_name="slurmrequeue", storage=postgres_url).get_trials()}
    after = trials[resumed.number]
    assert trials[stopped.number].state.name == "FAIL" and after.state.name == "FAIL"  # requeued, then cancelled
    assert all(after.intermediate_values[e] == v for e, v in stopped.intermediate_values.items())  # carried over
    assert sorted(after.intermediate_values) == list(range(1, max(after.intermediate_values) + 1))
    assert max(after.intermediate_values) > last  # and trained on


@pytest.mark.slurm
@pytest.mark.postgres
def test_a_partition_slurm_rejects_is_one_line_in_slurms_words_and_nothing_is_submitted(slurm_cluster, postgres_url,
                                                                                         tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.format(name="slurmbad", seeds="[0]", train=600, epochs=1, model="mlp"))
    done = subprocess.run([RUNNER, "launch", "slurm", str(spec), "--storage", postgres_url, "--jobs", "2",
                           "--partition", "nope", "--logs", str(tmp_path / "logs")],
                          env=slurm_cluster, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("Error: sbatch refused the job (nothing was submitted): ") and "partition" in line.lower()
    queue = subprocess.run(["squeue", "-h", "-n", "runner-slurmbad"], env=slurm_cluster, capture_output=True, text=True)
    assert queue.stdout.strip() == ""


@pytest.mark.slurm
@pytest.mark.postgres
def test_without_sbatch_or_with_a_sqlite_storage_or_a_bad_spec_nothing_is_submitted(tmp_path, write_spec):
    spec = write_spec()
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}  # the venv's scripts, no Slurm
    run = lambda *a: subprocess.run([RUNNER, "launch", "slurm", *map(str, a)], env=env, cwd=tmp_path,  # noqa: E731
                                    capture_output=True, text=True, timeout=120)
    no_sbatch = run(spec, "--storage", "postgresql+psycopg://u@127.0.0.1:1/x", "--jobs", "2")
    assert no_sbatch.returncode == 1 and no_sbatch.stderr.count("\n") == 1
    assert no_sbatch.stderr.startswith("Error: sbatch not found"), no_sbatch.stderr
    sqlite = run(spec, "--storage", "db/runner.sqlite", "--jobs", "2")
    assert sqlite.returncode == 1 and "a SQLite file lives on one machine's disk" in sqlite.stderr
    assert "postgresql+psycopg://USER@HEAD-NODE:5432/runner" in sqlite.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text(spec.read_text().replace("epochs = 1", "epochs = 0"))
    wrong = run(bad, "--storage", "postgresql+psycopg://u@127.0.0.1:1/x", "--jobs", "2")
    assert wrong.returncode == 1 and wrong.stderr.count("\n") == 1 and "epochs" in wrong.stderr
    assert not (tmp_path / "slurm").exists()  # no script written, nothing submitted


@pytest.mark.slurm
@pytest.mark.postgres
def test_a_database_restart_during_a_two_task_array_stops_nothing(slurm_cluster, postgres_server, tmp_path):
    """Issue 29: the server restarted while both tasks train; each task waits it out, every point completes once."""
    url = postgres_server.url
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.format(name="slurmblink", seeds="[0, 1]", train=3000, epochs=6, model="lenet5"))  # 4 points
    job = _launch(slurm_cluster, spec, url, tmp_path, "--jobs", "2")
    _running_mid_trial(url, "slurmblink", 6, timeout=240)
    postgres_server.stop()
    time.sleep(8)
    postgres_server.start()
    _wait(slurm_cluster, job, timeout=600)
    trials = _optuna_trials(url, "slurmblink")
    complete = Counter(t["user_attrs"]["config_hash"] for t in trials if t["state"] == "COMPLETE")
    assert len(complete) == 4 and set(complete.values()) == {1}, _logs(tmp_path)
    assert not [t for t in trials if t["state"] == "RUNNING"]
    assert "lost the database" in _logs(tmp_path) and "has the database back after" in _logs(tmp_path)

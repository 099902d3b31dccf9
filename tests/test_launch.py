"""`runner launch slurm` without a cluster: the time limits as Slurm reads them, and the batch script."""
from __future__ import annotations

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

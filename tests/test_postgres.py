"""Exactly once on a real PostgreSQL server that the suite starts itself (127.0.0.1, a free port)."""
from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import optuna
import pytest

pytestmark = pytest.mark.postgres

RUNNER = str(Path(sys.executable).with_name("runner"))


def test_two_machines_share_a_postgres_study_and_run_each_point_once(postgres_url, write_spec, tmp_path):
    spec = write_spec(seeds="[0, 1, 2]", models='["mlp"]')  # 6 points
    procs = [subprocess.Popen([RUNNER, "grid", str(spec), "--storage", postgres_url, "--quiet"], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    trials = optuna.load_study(study_name="t", storage=postgres_url).get_trials()
    assert all(t.state.name == "COMPLETE" for t in trials)
    per_point = Counter(t.user_attrs["config_hash"] for t in trials)
    assert len(per_point) == 6 and set(per_point.values()) == {1}


def test_workers_on_postgres_and_a_rerun_trains_nothing(postgres_url, write_spec, tmp_path):
    spec = write_spec(text=write_spec().read_text().replace('name = "t"', 'name = "w"'), name="w.toml")
    first = subprocess.run([RUNNER, "grid", str(spec), "--storage", postgres_url, "--workers", "2", "--quiet"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stdout + first.stderr
    again = subprocess.run([RUNNER, "grid", str(spec), "--storage", postgres_url], cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
    assert "w: 2 of 2 trials complete; 0 to run" in again.stderr
    assert len(optuna.load_study(study_name="w", storage=postgres_url).get_trials()) == 2

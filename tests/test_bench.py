"""`runner bench --quick`: every building block runs on tiny data and lands in the table and JSON.

The figures themselves are never checked (benchmarks are not tests), only that each is there.
"""
from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from runner.bench import MEASUREMENTS
from runner.cli import cli


@pytest.mark.slow
def test_quick_bench_writes_every_measurement(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may land in the project's db/ or reports/
    out = tmp_path / "bench" / "quick.json"
    result = CliRunner().invoke(cli, ["bench", "--quick", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["quick"] is True and report["command"] == "runner bench --quick"
    rows = {r["key"]: r for r in report["measurements"]}
    assert list(rows) == [m.key for m in MEASUREMENTS]
    for m in MEASUREMENTS:
        row = rows[m.key]
        assert math.isfinite(row["value"]) and row["value"] > 0, row
        assert (row["pass"] is None) == (not m.goal)  # a goal always gets a verdict
        assert m.label in result.output
    assert {"cpu_count", "threads", "torch"} <= set(report["machine"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench"]  # the temporary storages are gone


def test_bench_help_has_examples():
    result = CliRunner().invoke(cli, ["bench", "--help"])
    assert result.exit_code == 0 and "runner bench --quick" in result.output

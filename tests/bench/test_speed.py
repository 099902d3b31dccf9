"""runner/bench/speed.py: `runner bench --quick`: every building block runs on tiny data and lands
in the table and JSON.

The figures themselves are never checked (benchmarks are not tests), only that each is there.
"""
from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from runner.bench.speed import MEASUREMENTS
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
        if row["value"] is None:  # a time to accuracy whose every seed missed: null, and the misses say so
            assert m.key.startswith("time_to_99") and rows[m.key.removesuffix("_s") + "_missed"]["value"] > 0
            continue
        assert math.isfinite(row["value"]) and (row["value"] > 0 or m.unit == "seeds" and row["value"] == 0), row
        assert (row["pass"] is None) == (not m.goal)  # a goal always gets a verdict
        assert m.label in result.output
    assert {"cpu_count", "threads", "torch"} <= set(report["machine"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench"]  # the temporary storages are gone


def test_the_bench_json_names_the_course_and_time_to_accuracy_figures():
    from runner.bench.speed import MEASUREMENTS

    keys = {m.key for m in MEASUREMENTS}
    assert {"course_whole_process_ratio", "course_epoch_ratio", "time_to_99_s", "time_to_99_missed",
            "time_to_99_fast_s", "time_to_99_fast_missed"} <= keys
    assert not any(k.startswith("png_") for k in keys)  # the old imitation of the pipeline is gone

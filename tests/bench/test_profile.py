"""runner/bench/profile.py: `runner bench profile` reports every stage of train.py and the
operator families. Figures are never checked (benchmarks are not tests)."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from runner.bench.profile import OP_FAMILIES, STAGES
from runner.cli import cli


@pytest.mark.slow
def test_profile_command_reports_stages_and_families(tmp_path):
    out = tmp_path / "profile.json"
    result = CliRunner().invoke(cli, ["bench", "profile", "--images", "512", "--top", "5", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert set(report["stages"]) == set(STAGES)
    assert all(report["stages"][s] > 0 for s in STAGES)  # every stage of train.py is labelled
    assert report["families"]["conv forward"] > 0 and report["families"]["conv backward"] > 0
    assert set(report["families"]) <= {*OP_FAMILIES, "other"}
    top = [o["self_s"] for o in report["top_ops"]]
    assert len(top) == 5 and top == sorted(top, reverse=True)
    assert report["images"] == 512 and "aten::mkldnn_convolution" in result.output
    for stage in STAGES:
        assert stage in result.output

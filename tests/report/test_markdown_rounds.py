"""runner/report/markdown_rounds.py: the report states the rule of seeds in rounds and what each look found, in
report.md and summary.json; a study with a list of seeds has no such section."""
from __future__ import annotations

import json

from click.testing import CliRunner

from runner.cli import cli
from runner.spec import load_spec

from tests.report.predicted import IMAGES, ROUNDS_SPEC as SPEC, correct_for, write_study


def test_the_report_states_the_rule_and_each_look(tmp_path):
    spec, url = write_study(tmp_path / "s.toml", SPEC.format(until="effects"), correct_for(40), IMAGES)
    out = tmp_path / "report"
    result = CliRunner().invoke(cli, ["report", str(spec.path), "--storage", url, "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = (out / "report.md").read_text()
    section = text.split("## Seeds in rounds")[1].split("\n## ")[0]
    assert "Lan-DeMets O'Brien-Fleming" in section and "Holm" in section
    assert "It stopped after round 1 (3 seeds): none of the 1 undecided effects" in section
    assert "| 1 | 3 | 4.09 |" in section and "improves" in section
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rounds"]["until"] == "effects" and [x["seeds"] for x in summary["rounds"]["looks"]] == [3]
    # the same trials read by a spec with a list of seeds: no rounds section
    (tmp_path / "fixed.toml").write_text((tmp_path / "s.toml").read_text().replace(
        'seeds = { first = 3, max = 10, until = "effects" }', "seeds = [0, 1, 2]"))
    assert load_spec(tmp_path / "fixed.toml").study.rounds is None
    result = CliRunner().invoke(cli, ["report", str(tmp_path / "fixed.toml"), "--storage", url, "--out",
                                      str(tmp_path / "fixed")])
    assert result.exit_code == 0, result.output
    assert "## Seeds in rounds" not in (tmp_path / "fixed" / "report.md").read_text()
    assert "rounds" not in json.loads((tmp_path / "fixed" / "summary.json").read_text())

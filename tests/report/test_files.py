"""runner/report/files.py: the report's files: byte-identical for the same trials, every figure
linked, the raw tables, and the README's block refreshed between its markers only."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from runner.cli import cli
from runner.report import END_MARKER, START_MARKER


def test_figures_exist_and_are_linked(written):
    md = (written / "report.md").read_text()
    pngs = sorted(p.name for p in written.glob("*.png"))
    assert {"compare.png", "effects.png", "curves-lenet5.png", "curves-mlp.png"} <= set(pngs)
    for name in pngs:
        assert f"]({name})" in md
        assert (written / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def report_with_readme(study, tmp_path) -> tuple[Path, Path, str, str]:
    """`runner report` of the synthetic study into reports/t with --readme: (its folder, the README, the README's
    text before and after the markers)."""
    spec_path, url, _ = study
    readme = tmp_path / "README.md"
    before, after = "# Project\n\nIntro.\n\n", "\n\n## License\nMIT\n"
    readme.write_text(f"{before}{START_MARKER}\nold results\n{END_MARKER}{after}")
    out = tmp_path / "reports" / "t"
    result = CliRunner().invoke(cli, ["report", str(spec_path), "--storage", url, "--out", str(out),
                                      "--readme", str(readme)])
    assert result.exit_code == 0, result.output
    return out, readme, before, after


def test_same_trials_give_byte_identical_files(study, written, tmp_path):
    out, _, _, _ = report_with_readme(study, tmp_path)
    for path in written.iterdir():
        assert (out / path.name).read_bytes() == path.read_bytes(), path.name


def test_the_readme_is_refreshed_between_its_markers(study, tmp_path):
    _, readme, before, after = report_with_readme(study, tmp_path)
    text = readme.read_text()
    assert text.startswith(before + START_MARKER) and text.endswith(END_MARKER + after)
    assert "old results" not in text
    assert "[reports/t/report.md](reports/t/report.md)" in text
    assert "![" in text and "(reports/t/compare.png)" in text
    assert "| factor | change |" in text and "| # | model |" in text


def test_readme_without_markers_changes_nothing(study, tmp_path):
    spec_path, url, _ = study
    readme = tmp_path / "README.md"
    readme.write_text("# Project\nno markers here\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["report", str(spec_path), "--storage", url, "--out", str(out),
                                      "--readme", str(readme)])
    assert result.exit_code != 0
    assert "runner:report:start" in result.output and len(result.output.strip().splitlines()) == 1
    assert readme.read_text() == "# Project\nno markers here\n"
    assert not out.exists()


def test_the_raw_tables_hold_every_trial_and_epoch(report):
    trials = list(csv.DictReader(io.StringIO((report / "r" / "trials.csv").read_text())))
    epochs = list(csv.DictReader(io.StringIO((report / "r" / "epochs.csv").read_text())))
    assert len(trials) == 9 and len(epochs) == 18
    summary = json.loads((report / "r" / "summary.json").read_text())
    for c in summary["configs"]:  # every configuration's mean recomputes from trials.csv
        mine = [float(t["test_acc"]) for t in trials if t["label"] == next(
            x["label"] for x in trials if x["model"] == c["model"] and all(
                x[k] == str(v).lower() for k, v in c["params"].items()))]
        assert np.mean(mine) == pytest.approx(c["final_mean"], abs=1e-3)

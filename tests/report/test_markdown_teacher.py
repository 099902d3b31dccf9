"""runner/report/markdown_teacher.py: a distilled study's report names its teacher and compares each taught
configuration with the same student untaught; its curves draw the teacher's accuracy."""
from __future__ import annotations

import json

import pytest

from runner.report import make_report
from runner.report.figures import curves_figure
from runner.spec import load_spec
from runner.trials.grid import run_grid

from tests.test_distill import STUDENT, TEACHER


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("taught")
    url = f"sqlite:///{folder}/db.sqlite"
    (folder / "teacher.toml").write_text(TEACHER)
    run_grid(load_spec(folder / "teacher.toml"), url)
    (folder / "student.toml").write_text(STUDENT.replace("seeds = [0]", "seeds = [0, 1]"))
    spec = load_spec(folder / "student.toml", storage=url)
    run_grid(spec, url)
    made, written = make_report(spec, url, folder / "out")
    return made, folder / "out"


def test_the_report_names_the_teacher_its_size_and_its_accuracy_here(report):
    made, out = report
    text = (out / "report.md").read_text()
    t = made.teacher
    assert "## The teacher" in text and f"learned from `teach trial 0`: {t['parameters']:,} parameters" in text
    assert f"{t['measured']['test_acc']:.2f}% on this study's test images" in text and t["sha256"][0][:12] in text
    assert "(1 − w)·CE(student, labels) + w·T²·KL" in text


def test_the_report_shows_the_taught_against_untaught_comparison(report):
    made, out = report
    text = (out / "report.md").read_text()
    assert "### Taught against untaught" in text and "| teacher | untaught → taught (w=0.9, T=4) |" in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["teacher"]["from"] == "teach trial 0" and len(summary["versus_untaught"]) == 1


def test_the_curves_draw_the_teachers_accuracy_on_the_held_out_panel(report):
    made, _ = report
    figure = next(f for f in made.figures if f.kind == "curves")
    fig = curves_figure(made, figure)
    panel = fig.axes[3]  # test accuracy
    lines = [line for line in panel.get_lines() if line.get_linestyle() == "--"]
    assert len(lines) == 1 and lines[0].get_ydata()[0] == made.teacher["measured"]["test_acc"]
    assert not any(line.get_linestyle() == "--" for ax in fig.axes[:3] for line in ax.get_lines())

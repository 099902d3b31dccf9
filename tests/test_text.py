"""runner/text.py: text for people: plurals, and file names made from labels."""
from __future__ import annotations

from click.testing import CliRunner

from runner.cli import cli

from tests.helpers import spec_project  # noqa: F401 - fixtures


def test_plurals_are_right(project):
    spec = project(batch_norm="[false]")
    assert CliRunner().invoke(cli, ["grid", str(spec)]).exit_code == 0
    result = CliRunner().invoke(cli, ["report", str(spec), "--out", "r"])
    assert "t: 1 trial in 1 configuration" in result.output


def test_figure_file_names_stay_short_and_stable():
    from runner.text import SLUG_MAX, file_slug

    assert file_slug("lenet5") == "lenet5" and file_slug("lenet5 batch_norm=true") == "lenet5-batch_norm-true"
    long = "lenet dropout=0.195 augment=affine lr=0.0402 lenet.c1.conv=10 lenet.f5.fc=90"
    assert file_slug(long) == file_slug(long) and len(file_slug(long)) <= SLUG_MAX and file_slug(long).startswith("lenet-")
    assert file_slug(long) != file_slug(long.replace("0.195", "0.196"))

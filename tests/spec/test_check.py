"""runner/spec/check.py: every value checked against its key's choices gets a "did you mean"."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from runner.cli import cli

from tests.helpers import spec_project  # noqa: F401 - fixtures


@pytest.mark.parametrize("old, new, message", [
    ('train_limit = 600', 'dataset = "mnsit"\ntrain_limit = 600',
     '[data].dataset: "mnsit" is not "mnist" | "fashion_mnist"'),
    ('lr = 0.05', 'lr = 0.05\noptimizer = "adamm"', '; did you mean "adam"?'),
    ('lr = 0.05', 'lr = 0.05\nschedule = "cosin"', '[train].schedule: "cosin" is not'),
    ('arch = "lenet5"', 'arch = "lenet5"\naugment = "afine"', '; did you mean "affine"?'),
    ('arch = "lenet5"', 'arch = "lenet5"\nact = "rellu"', '; did you mean "relu"?'),
])
def test_every_enumerated_value_gets_a_did_you_mean(project, old, new, message):
    spec = project(batch_norm="[false]")
    spec.write_text(spec.read_text().replace(old, new, 1))
    result = CliRunner().invoke(cli, ["grid", str(spec), "--dry-run"])
    assert result.exit_code == 1 and message in result.output and "did you mean" in result.output, result.output

"""runner/results/versus.py: each taught configuration against the same student untaught (and the tuned baseline:
tests/report/test_markdown_plan.py)."""
from __future__ import annotations

import pytest

from tests.report.test_markdown_teacher import report  # noqa: F401 - the fixture: a taught study, reported


def test_each_taught_configuration_is_compared_with_the_same_student_untaught(report):
    made, out = report
    (e,) = made.versus_untaught
    taught = next(c for c in made.configs if c.params["distill_weight"] == 0.9)
    plain = next(c for c in made.configs if c.params["distill_weight"] == 0.0)
    assert e.n_pairs == 2 and e.delta_mean == pytest.approx(sum(taught.final) / 2 - sum(plain.final) / 2)  # by seed

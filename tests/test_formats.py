"""runner/formats.py: each format's fixture, the formats the branches that keep old hashes name, and the table
of formats in docs/architecture.md (the columns each format added: tests/test_migrations.py)."""
from __future__ import annotations

import re
from pathlib import Path

from runner.formats import FORMAT, FORMATS
from runner.spec import LATER_REGULARIZERS, REGULARIZERS

ROOT = Path(__file__).parent.parent


def test_each_format_but_this_runners_has_its_fixture():
    for fmt, f in FORMATS.items():
        assert (fmt == FORMAT) == (f.fixture == ""), (fmt, f)
        assert not f.fixture or (f.fixture == f"tests/fixtures/v{fmt}" and (ROOT / f.fixture).is_dir()), (fmt, f)


def test_a_later_regularizer_names_a_format_before_this_runners_or_its_own():
    assert set(LATER_REGULARIZERS) <= set(REGULARIZERS)
    assert all(0 < fmt <= FORMAT for fmt in LATER_REGULARIZERS.values())


def test_the_docs_table_lists_every_format_with_its_code_and_fixture():
    text = (ROOT / "docs" / "architecture.md").read_text()
    rows = re.findall(r"^\| (\d+) \| (\S+(?: runner)?) \| .* \| (.+) \|$", text, re.M)
    assert [int(r[0]) for r in rows] == sorted(FORMATS)
    for fmt, code, fixture in rows:
        f = FORMATS[int(fmt)]
        assert code == (f.commit or "this runner") and (f.fixture or "none") in fixture.replace("`", ""), fmt

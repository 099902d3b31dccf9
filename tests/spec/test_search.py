"""runner/spec/search.py: the [search] section: a bad search is refused in one line."""
from __future__ import annotations

import pytest

from runner.errors import SpecError
from runner.spec import load_spec

from tests.helpers import TUNE_SPEC as SPEC


@pytest.mark.parametrize("old, new, message", [
    ('trials = 6', 'trials = 6\nmetric = "test_acc"', '[search].metric: "test_acc" is not "val_acc" | "val_loss"'),
    ('val_fraction = 0.2\n', '', "[search]: a search chooses on a validation split, never on test"),
    ('lr = { low', 'lrr = { low', '[search.space]: unknown key "lrr"; did you mean "lr"?'),
    ('low = 0.01, high = 0.2', 'low = 0.2, high = 0.01', "[search.space].lr: low = 0.2 is above high = 0.01"),
    ('log = true', 'log = true, step = 0.01', "log and step exclude each other"),
    ('low = 0.01, high = 0.2, log = true', 'low = 0.0, high = 0.2, log = true', "[search.space].lr.low: 0.0 is not a number > 0"),
    ('batch_norm = [false, true]', 'batch_norm = { low = 0, high = 1 }', "batch_norm takes no range"),
    ('batch_norm = [false, true]', 'batch_norm = []', "[search.space].batch_norm: is an empty list"),
    ('"small.c1.conv" = { low = 2', '"small.c9.conv" = { low = 2', 'small has no layer "c9"'),
    ('high = 8, step = 2', 'high = 8.5, step = 2', "[search.space].small.c1.conv.high: 8.5 is not an integer >= 1"),
    ('timeout', 'timeout', ''),
])
def test_a_bad_search_is_refused_in_one_line(tmp_path, old, new, message):
    path = tmp_path / "spec.toml"
    path.write_text(SPEC.replace(old, new) if old != "timeout" else SPEC.replace("top = 2", 'top = 2\ntimeout = "soon"'))
    with pytest.raises(SpecError) as e:
        load_spec(path)
    text = str(e.value)
    assert "\n" not in text and (message or '[search].timeout: "soon" is not a duration') in text

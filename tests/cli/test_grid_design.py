"""runner grid --dry-run of a fractional grid: the design's points, and what it aliases, one line each."""
from __future__ import annotations

from tests.helpers import invoke_ok

SPEC = """
[study]
name = "d"
seeds = [0, 1]
[data]
train_limit = 200
test_limit = 100
[models.lenet5]
arch = "lenet5"
[grid]
design = "half"
dropout = [0.0, 0.5]
batch_norm = [false, true]
weight_decay = [0.0, 0.0005]
augment = ["none", "affine"]
"""


def test_the_dry_run_lists_the_fraction_s_points_and_its_alias_structure(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.toml").write_text(SPEC)
    lines = invoke_ok("grid", "spec.toml", "--dry-run").output.splitlines()
    start = lines.index("16 points: 8 settings x 2 seeds (a 2^(4-1) fraction of dropout 2 x batch_norm 2 x "
                        "weight_decay 2 x augment 2, x 2 seeds)")
    assert lines[start + 1:start + 9] == [
        '[grid].design "half": 8 of the 16 settings, a 2^(4-1) fraction of resolution 4',
        "dropout is aliased with batch_norm x weight_decay x augment",
        "batch_norm is aliased with dropout x weight_decay x augment",
        "weight_decay is aliased with dropout x batch_norm x augment",
        "augment is aliased with dropout x batch_norm x weight_decay",
        "dropout x batch_norm is aliased with weight_decay x augment",
        "dropout x weight_decay is aliased with batch_norm x augment",
        "dropout x augment is aliased with batch_norm x weight_decay"]
    rows = [x.split() for x in lines[2:start]]
    assert len(rows) == 16 and [r[-2] for r in rows] == ["0"] * 8 + ["1"] * 8
    assert rows[0][2:6] == ["0.0", "false", "0.0", "none"] and rows[1][2:6] == ["0.0", "false", "0.0005", "affine"]
    assert not (tmp_path / "db").exists()  # nothing stored

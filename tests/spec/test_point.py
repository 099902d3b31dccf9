"""runner/spec/point.py: a point's config hash: the same whatever the execution settings and the ranking metric,
and as the shipped specs pinned it (tests/fixtures/v1)."""
from __future__ import annotations

import json
from pathlib import Path

from runner.spec import load_spec

from tests.helpers import V1, VALID_SPEC as VALID, shipped_spec


def test_config_hash_is_stable_and_ignores_execution_settings(write_spec):
    a = load_spec(write_spec(VALID)).points()
    b = load_spec(write_spec(VALID.replace('[models.lenet5]', '[train]\nthreads = 1\ndevice = "cpu"\n[models.lenet5]'),
                             name="b.toml")).points()
    assert [p.config_hash for p in a] == [p.config_hash for p in b]
    c = load_spec(write_spec(VALID.replace("seeds = [0, 1]", "seeds = [0, 1]\nmetric = \"test_loss\""),
                             name="c.toml")).points()
    assert [p.config_hash for p in a] == [p.config_hash for p in c]  # ranking metric is not config


# ---------------------------------------------------------------- config hashes pinned by tests/fixtures/v1


def test_every_shipped_spec_keeps_its_config_hashes():
    pinned = json.loads((V1 / "config_hashes.json").read_text())
    specs = sorted(Path(__file__).parents[2].glob("specs/*.toml"))
    assert sorted(p.name for p in specs) == sorted(pinned)
    for path in specs:
        spec = shipped_spec(path)
        defaults = [spec.point({"model": m}, s).config_hash for s in spec.study.seeds for m in spec.models]
        assert [p.config_hash for p in spec.points()] == pinned[path.name]["points"], path.name
        assert defaults == pinned[path.name]["model_defaults"], path.name

"""runner/sources.py: what stored trials say the spec means. Here, EMA trials stored before the decay
warm-up existed (tests/fixtures/v3, made by the code before it): their study goes on without the warm-up,
their config hashes and values unchanged, and nothing trains again; a new study of the same spec warms up."""
from __future__ import annotations

import json
import shutil
import sqlite3

import optuna
from click.testing import CliRunner

from runner.cli import cli
from runner.spec import load_spec

from tests.helpers import V1

V3 = V1.parent / "v3"


def test_ema_trials_stored_before_the_warm_up_keep_their_hashes_values_and_meaning(tmp_path):
    db = tmp_path / "ema.sqlite"
    with sqlite3.connect(db) as con:
        con.executescript((V3 / "ema.sql").read_text())
    shutil.copy(V3 / "ema.toml", tmp_path / "ema.toml")
    url = f"sqlite:///{db}"
    stored = {t.user_attrs["config_hash"]: t.value for t in optuna.load_study(study_name="v3ema", storage=url).get_trials()}
    fresh = load_spec(tmp_path / "ema.toml")  # as a new study reads it: the EMA point warms up, a new hash
    assert [p.config_hash in stored for p in fresh.points()] == [True, False]
    runner = CliRunner()
    result = runner.invoke(cli, ["grid", str(tmp_path / "ema.toml"), "--storage", url])
    assert result.exit_code == 0, result.output
    assert ("v3ema: ema_warmup is off, as for the 1 EMA trial this study stored before the warm-up existed (their "
            "results keep their meaning)") in result.output
    assert "v3ema: 2 of 2 trials complete; 0 to run" in result.output  # nothing trains again
    after = {t.user_attrs["config_hash"]: t.value for t in optuna.load_study(study_name="v3ema", storage=url).get_trials()}
    assert after == stored  # the same trials, hashes and values
    report = runner.invoke(cli, ["report", str(tmp_path / "ema.toml"), "--storage", url, "--out", str(tmp_path / "r")])
    assert report.exit_code == 0, report.output
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert len(summary["configs"]) == 2 and summary["excluded"] == []  # both count, neither "not this spec's result"
    assert "| ema_warmup | false (the EMA trials) |" in (tmp_path / "r" / "report.md").read_text()  # as they ran
    other = f"sqlite:///{tmp_path / 'new.sqlite'}"  # the same spec, a new study: the EMA point warms up
    dry = runner.invoke(cli, ["grid", str(tmp_path / "ema.toml"), "--storage", other, "--dry-run"])
    assert dry.exit_code == 0 and fresh.points()[1].config_hash in dry.output and "ema_warmup is off" not in dry.output

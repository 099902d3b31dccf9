"""runner/report/build_search.py: the report of a tuned spec shows the search, the selection over
seeds and the confirmation, also of a search the code before confirmed (tests/fixtures/v2)."""
from __future__ import annotations

import json
from pathlib import Path

import optuna
from click.testing import CliRunner

from runner.cli import cli

from tests.helpers import tune_project  # noqa: F401 - fixtures


def test_the_report_of_a_tuned_spec_shows_the_search(project):
    assert CliRunner().invoke(cli, ["tune", "spec.toml"]).exit_code == 0
    result = CliRunner().invoke(cli, ["report", "spec.toml", "--out", "r"])
    assert result.exit_code == 0, result.output
    text = (project / "r" / "report.md").read_text()
    assert "## The search" in text and "6 of 6 finished trials" in text and "### Parameter importances" in text
    assert "too few" in text or "rough" in text  # 6 trials: the importances carry a warning
    assert (project / "r" / "search-history.png").exists() and (project / "r" / "search-curves.png").exists()
    summary = json.loads((project / "r" / "summary.json").read_text())
    assert summary["search"]["budget"] == 6 and len(summary["search"]["top"]) == 1  # the winner, refit and tested
    selection = summary["search"]["selection"]
    assert len(selection["candidates"]) == 2 and sum(c["winner"] for c in selection["candidates"]) == 1
    assert all(len(c["val"]) == 2 and len(c["test_information"]) == 2 for c in selection["candidates"])
    assert selection["protocol"] in text and "information only" in text and "would be biased" in text
    win = next(c for c in selection["candidates"] if c["winner"])
    assert win["label"] == summary["configs"][0]["label"]
    assert max(c["val_mean_ci95"][0] for c in selection["candidates"]) == win["val_mean_ci95"][0]
    # a report that fits a search: the winner as a [[runs]] entry that parses and says what was confirmed,
    # the layer tables of the confirmed configurations, no section that does not apply
    import tomllib

    snippet = text.split("```toml\n", 1)[1].split("```", 1)[0]
    entry = tomllib.loads(snippet)["runs"][0]
    best = summary["configs"][0]
    assert entry["model"] == best["model"] and all(entry[k] == v for k, v in best["params"].items() if v is not None)
    assert "## Known accuracy" not in text and "## Do the regularizers help?" not in text
    assert "Left out, as they do not apply to this search:" in text
    counts = text.split("## Parameter counts", 1)[1].split("## Comparison", 1)[0]
    assert {f"Total: **{c['param_count']:,}** parameters." for c in summary["configs"]} <= set(counts.splitlines())
    import csv  # the search's own raw values travel with the report too

    rows = list(csv.DictReader((project / "r" / "search_trials.csv").open()))
    trials = optuna.load_study(study_name="tu-search", storage="sqlite:///db/runner.sqlite").get_trials()
    assert [int(r["number"]) for r in rows] == [t.number for t in trials]
    assert all(r["value"] == ("" if t.value is None else str(t.value)) for r, t in zip(rows, trials))
    epochs = list(csv.DictReader((project / "r" / "search_epochs.csv").open()))
    assert len(epochs) == sum(len(t.user_attrs.get("epochs", [])) for t in trials) > 0


# ---------------------------------------------------------------- tests/fixtures/v2: made by the code at 5c4409c

V2 = Path(__file__).parents[1] / "fixtures" / "v2"


def test_a_search_confirmed_by_the_code_before_refit_is_reported_as_it_was_confirmed(tmp_path):
    import sqlite3

    db = tmp_path / "search.sqlite"
    with sqlite3.connect(db) as con:
        con.executescript((V2 / "search.sql").read_text())
    url = f"sqlite:///{db}"
    result = CliRunner().invoke(cli, ["report", str(V2 / "search.toml"), "--storage", url, "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "r" / "report.md").read_text()
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    # its 4 confirmation trials (top 2 x seeds 0, 1, trained without the validation images) all count
    assert sum(c["seeds"] for c in summary["configs"]) == 4 and "from 4 complete trials" in text
    assert "### The top configurations, confirmed on test" in text and "Selection over seeds" not in text
    assert summary["search"]["selection"] is None and len(summary["search"]["top"]) == 2

"""runner/report/contents.py: the report as data: a Report finds each configuration by its key, and its files are
the ones the report writes."""
from __future__ import annotations

import pytest

from runner.report import build_report
from runner.report.contents import REPORT_FILE, SUMMARY_FILE
from runner.spec import load_spec


def test_a_report_finds_each_configuration_by_its_key(study):
    spec_path, url, _ = study
    report = build_report(load_spec(spec_path), url)
    assert len(report.configs) == 5 and all(report.config(c.key) is c for c in report.configs)
    with pytest.raises(StopIteration):
        report.config("no such key")


def test_the_report_writes_its_named_files(written):
    assert (REPORT_FILE, SUMMARY_FILE) == ("report.md", "summary.json")
    assert (written / REPORT_FILE).read_text().startswith("# ") and (written / SUMMARY_FILE).stat().st_size > 0

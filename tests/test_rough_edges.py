"""The rough edges a new user hits first: a plain path as --storage, a server that does not answer,
the continue hint after Ctrl-C, a misspelt value, plurals."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

import runner.trials.lifecycle as lifecycle_module
from runner.cli import cli


@pytest.fixture
def project(tmp_path, monkeypatch, write_spec):
    monkeypatch.chdir(tmp_path)
    return write_spec


@pytest.mark.parametrize("path", ["db/runner.sqlite", "./x.sqlite", "elsewhere/y.db"])
def test_a_plain_file_path_is_a_sqlite_storage_everywhere(project, tmp_path, path):
    spec = project(batch_norm="[false]")
    for args in (["grid", str(spec)], ["studies"], ["trials", "--study", "t"], ["show", "--study", "t", "0"],
                 ["report", str(spec), "--out", "r"]):
        result = CliRunner().invoke(cli, [*args, "--storage", path])
        assert result.exit_code == 0, (args, result.output)
    assert (tmp_path / path).is_file()


@pytest.mark.parametrize("given", ["nonsense:x", "sqlite:db.sqlite", "host:5432"])
def test_what_is_neither_a_url_nor_a_path_is_one_line_with_the_forms(project, given):
    result = CliRunner().invoke(cli, ["studies", "--storage", given])
    assert result.exit_code == 1
    assert result.output.strip() == (f"Error: --storage {given!r}: not a SQLAlchemy URL nor a file path; give a SQLite "
                                     "file (db/runner.sqlite, sqlite:///db/runner.sqlite) or a server's SQLAlchemy "
                                     "URL (postgresql+psycopg://user@host:5432/db)")


@pytest.mark.parametrize("command", ["studies", "grid"])
def test_an_unreachable_server_is_one_line_with_its_host_port_and_the_drivers_reason(project, command):
    pytest.importorskip("psycopg")
    url = "postgresql+psycopg://postgres:secret@127.0.0.1:1/runner"
    args = ["studies"] if command == "studies" else ["grid", str(project(batch_norm="[false]"))]
    result = CliRunner().invoke(cli, [*args, "--storage", url])
    assert result.exit_code == 1
    line = result.output.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "cannot reach 127.0.0.1:1: " in line and "Connection refused" in line
    assert "secret" not in line  # the password is never shown


def test_the_continue_hint_repeats_every_option_as_typed(project, monkeypatch):
    spec = project(batch_norm="[false]")
    monkeypatch.setattr(lifecycle_module, "train_point", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    result = CliRunner().invoke(cli, ["grid", str(spec), "--storage", "other.sqlite", "--stale-after", "60", "-q",
                                      "--retry-failed"])
    assert result.exit_code == 130
    assert (f"run the same command again to continue: runner grid {spec} --storage other.sqlite --retry-failed "
            "--stale-after 60.0 --quiet") in result.output


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


def test_plurals_are_right(project):
    spec = project(batch_norm="[false]")
    assert CliRunner().invoke(cli, ["grid", str(spec)]).exit_code == 0
    result = CliRunner().invoke(cli, ["report", str(spec), "--out", "r"])
    assert "t: 1 trial in 1 configuration" in result.output

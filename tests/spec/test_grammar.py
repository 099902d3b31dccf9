"""runner/spec/grammar.py: the bounds the grammar sets, checked before the storage."""
from __future__ import annotations

import optuna
from click.testing import CliRunner

from runner.cli import cli

from tests.helpers import TYPO, refused as _refused, untouched as _untouched
from tests.helpers import here  # noqa: F401 - fixtures


def test_a_study_name_too_long_for_optuna_is_refused_before_the_storage_and_a_long_one_works(here):
    (here / "long.toml").write_text(TYPO.replace('name = "typo"', f'name = "{"x" * 600}"'))
    line = _refused(CliRunner().invoke(cli, ["grid", "long.toml"]), "[study].name:", "(600 characters)",
                    "at most 505 characters (Optuna stores a study's name in 512")
    assert len(line) < 400
    _untouched(here, {"long.toml"})
    name = "y" * 300  # longer than a file name may be: its folders are named by a hash
    (here / "ok.toml").write_text(TYPO.replace('name = "typo"', f'name = "{name}"').replace(
        "layers = [ { fc = 100000000 }, { fc = 10 } ]", 'arch = "mlp"\nhidden = [16]'))
    for _ in range(2):  # and again, on the study it made
        result = CliRunner().invoke(cli, ["grid", "ok.toml", "-q"])
        assert result.exit_code == 0, result.output
    assert [t.state.name for t in optuna.load_study(study_name=name, storage="sqlite:///db/runner.sqlite")
            .get_trials()] == ["COMPLETE"]
    assert [p.name for p in (here / "db" / "artifacts").iterdir()]  # its weights kept, under a hashed folder

"""The report's fixtures: the synthetic study and its report (see synthetic.py), and a small grid
trained for real whose report looks at the stored predictions. Each is made once per session."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from optuna.trial import TrialState

from runner.cli import cli
from runner.spec import load_spec
from runner.store import Store

from tests.report.synthetic import SPEC, add_trial as _add_trial, final as _final

PREDICTIONS_SPEC = """
[study]
name = "rp"
seeds = [0, 1, 2]
[data]
train_limit = 1000
test_limit = 400
[train]
epochs = 2
batch_size = 100
lr = 0.05
threads = 1
[models.lenet5]
arch = "lenet5"
[models.mlp]
arch = "mlp"
hidden = [2]  # a poor MLP, ranked below plain LeNet-5 (see test_build.py's test_each_bootstrapped_contrast...)
[grid]
model = ["lenet5"]
batch_norm = [false, true]
[[runs]]
model = "mlp"
"""


def grid_and_report(folder: Path) -> Path:
    """`runner grid spec.toml`, then `runner report spec.toml --out r`, in the folder; the report's folder."""
    with pytest.MonkeyPatch.context() as m:
        m.chdir(folder)
        for args in (["grid", "spec.toml"], ["report", "spec.toml", "--out", "r"]):
            result = CliRunner().invoke(cli, args)
            assert result.exit_code == 0, result.output
    return folder / "r"


@pytest.fixture(scope="session")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rp")
    (folder / "spec.toml").write_text(PREDICTIONS_SPEC)
    grid_and_report(folder)
    return folder


@pytest.fixture(scope="session")
def study(tmp_path_factory) -> tuple[Path, str, dict]:
    """(spec path, storage URL, expected finals by label and seed) of the synthetic study."""
    root = tmp_path_factory.mktemp("report")
    spec_path = root / "spec.toml"
    spec_path.write_text(textwrap.dedent(SPEC))
    spec = load_spec(spec_path)
    url = f"sqlite:///{root / 'db.sqlite'}"
    store = Store(url)
    st = store.open_study("t", "maximize")
    finals: dict[tuple[str, int], float] = {}
    lenet = 0
    for point in spec.points():
        final = _final(point, lenet)
        lenet += point.model.name == "lenet5"
        _add_trial(store, st, point, TrialState.COMPLETE, final)
        finals[point.label(), point.seed] = final
    base = spec.settings()[0]
    _add_trial(store, st, spec.point(base, 7), TrialState.FAIL, None, epochs=1, reason="loss is NaN at epoch 2")
    _add_trial(store, st, spec.point(base, 8), TrialState.RUNNING, None, epochs=1)
    store.dispose()
    return spec_path, url, finals


@pytest.fixture(scope="session")
def written(study, tmp_path_factory) -> Path:
    """The report folder written once by the CLI."""
    spec_path, url, _ = study
    out = tmp_path_factory.mktemp("out") / "report"
    result = CliRunner().invoke(cli, ["report", str(spec_path), "--storage", url, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out

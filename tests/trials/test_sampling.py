"""runner/trials/sampling.py: the search's sampler and pruner: floats stored as readable as
they are trained, and a patience that spares a slow starter."""
from __future__ import annotations

import optuna
from click.testing import CliRunner

from runner.cli import cli

from tests.helpers import TUNE_SPEC as SPEC, load_spec_text, tune_trials as trials
from tests.helpers import tune_project  # noqa: F401 - fixtures


def test_sampled_floats_are_stored_rounded_to_3_significant_digits_and_trained_with_that_value(project):
    from optuna.distributions import FloatDistribution, IntDistribution

    from runner.trials.sampling import readable

    assert readable(0.07819127573796913, FloatDistribution(0.01, 0.2, log=True)) == 0.0782
    assert readable(0.0123001, FloatDistribution(0.01234, 0.2)) == 0.01234  # rounded below low: low
    assert readable(0.25, FloatDistribution(0.0, 1.0, step=0.05)) == 0.25 and readable(7, IntDistribution(1, 9)) == 7
    result = CliRunner().invoke(cli, ["tune", "spec.toml", "--no-confirm"])
    assert result.exit_code == 0, result.output
    searched = [t for t in trials("tu-search") if "lr" in t.params]
    assert len(searched) == 6
    for t in searched:
        assert f"{t.params['lr']:.3g}" == repr(t.params["lr"]), t.params  # 0.0782, not 0.07819127573796913
        assert t.user_attrs["config"]["train"]["lr"] == t.params["lr"]  # the stored value is the trained one
        assert f"lr={t.params['lr']}" in t.user_attrs["label"]


def _slow_starter(patience: int, warmup: int = 1) -> bool:
    """Whether the pruner stops a trial that is below the median at epoch 2 and best by epoch 4."""
    import dataclasses

    from runner.trials.sampling import make_pruner

    search = dataclasses.replace(load_spec_text(SPEC).search, warmup_epochs=warmup, patience=patience)
    study = optuna.create_study(direction="maximize", pruner=make_pruner(search, 4))
    for _ in range(5):  # five steady trials: 80, 81, 82, 83 %
        t = study.ask()
        for epoch in range(1, 5):
            t.report(79.0 + epoch, epoch)
        study.tell(t, 83.0)
    t = study.ask()
    for epoch, value in enumerate([70.0, 75.0, 84.0, 90.0], 1):  # slow at first, then the best
        t.report(value, epoch)
        if t.should_prune():
            return True
    return False


def test_patience_spares_a_slow_starter_that_the_plain_median_pruner_stops():
    assert _slow_starter(patience=0)  # below the median after the warm-up: stopped
    assert not _slow_starter(patience=2)  # two epochs' grace, and then it improves: kept
    assert not _slow_starter(patience=0, warmup=3)  # never judged before epoch 3: kept

"""runner/trials/confirm.py: a search's confirmation: no winner from an unfinished selection, and
the winner refit and tested on test."""
from __future__ import annotations

from tests.helpers import TUNE_SPEC as SPEC, load_spec_text


def test_no_winner_is_chosen_from_an_unfinished_selection_and_a_val_ranked_study_is_tested_on_test():
    from runner.spec.stages import confirm_spec, selection_spec
    from runner.trials.confirm import Candidate, winner

    spec = load_spec_text(SPEC)
    settings = [{"lr": 0.05, "batch_norm": True, "small.c1.conv": 4}, {"lr": 0.1, "batch_norm": False, "small.c1.conv": 4}]
    select = selection_spec(spec, settings)
    assert select.study.name == "tu-select" and not select.tested and select.study.metric == "val_acc"
    done = Candidate(settings[0], 1, (0, 1), (90.0, 91.0), 2)
    half = Candidate(settings[1], 2, (2,), (99.0,), 2)  # one seed still training on another machine
    assert winner(select, [done, half]) is None
    assert winner(select, [done, Candidate(settings[1], 2, (2, 3), (99.0, 80.0), 2)]).rank == 1  # mean, not best seed
    val_ranked = load_spec_text(SPEC.replace('name = "tu"', 'name = "tu"\nmetric = "val_acc"'))
    confirm = confirm_spec(val_ranked, settings[:1])
    assert confirm.data.val_fraction == 0 and confirm.study.metric == "test_acc"  # refit: no validation split left
    kept_out = confirm_spec(load_spec_text(SPEC.replace("top = 2", "top = 2\nrefit = false")), settings[:1])
    assert kept_out.data.val_fraction == 0.2 and kept_out.study.metric == "test_acc"


# ---------------------------------------------------------------- the search's trials reused as selection trials


def _copy(spec, select, url, start, out):
    """A process that copies the search's trials into the selection study once `start` lets every process go; each
    trial it adds takes a while to come back (a database across a network), so that the other process adds its
    copies meanwhile."""
    import time

    import optuna
    from optuna.storages import RDBStorage

    from runner.trials.confirm import reuse_search_trials

    def slow(add):
        def added(*args, **kwargs):
            made = add(*args, **kwargs)
            time.sleep(0.2)
            return made
        return added

    optuna.Study.add_trial = slow(optuna.Study.add_trial)
    RDBStorage.create_new_trial = slow(RDBStorage.create_new_trial)
    start.wait()
    out.put(len(reuse_search_trials(spec, select, url)))


def test_two_processes_copying_at_once_each_put_a_copys_predictions_and_claim_on_its_own_trial(tmp_path):
    import multiprocessing

    import numpy as np
    import optuna
    from optuna.trial import TrialState

    from runner import record
    from runner.store import Predictions, Store
    from runner.spec.stages import selection_spec

    spec = load_spec_text(SPEC)
    settings = [{"lr": round(0.01 * (k + 1), 2), "batch_norm": False, "small.c1.conv": 4} for k in range(12)]
    select = selection_spec(spec, settings)
    searched = [p for p in select.points() if p.seed == spec.study.seeds[0]]  # the search's seed: reused
    url = f"sqlite:///{tmp_path / 'runner.sqlite'}"
    store = Store(url)
    search = store.open_study("tu-search", "maximize")
    for k, point in enumerate(searched):  # one search trial per candidate, its predictions all class k
        search.add_trial(optuna.trial.create_trial(state=TrialState.COMPLETE, value=50.0 + k,
                                                   user_attrs={record.CONFIG_HASH: point.config_hash}))
    ids = store.trial_ids("tu-search", range(len(searched)))
    for number, trial_id in ids.items():
        store.add_predictions("tu-search", trial_id, "val", Predictions(np.full(40, number, "<i2"),
                                                                        np.zeros(40, "<i2"), np.ones(40, "<f2")))
    store.dispose()
    context = multiprocessing.get_context("fork")
    start, out = context.Barrier(2), context.Queue()
    # the same candidates, one process from the first, the other from the last: they copy side by side, then meet
    orders = (select, selection_spec(spec, settings[::-1]))
    workers = [context.Process(target=_copy, args=(spec, order, url, start, out)) for order in orders]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert [w.exitcode for w in workers] == [0, 0]
    assert out.get() + out.get() == len(searched)  # each point copied once, by one of them
    store = Store(url, create=False)
    copies = store.load_study(select.study.name).get_trials(deepcopy=False)
    assert len(copies) == len(searched)
    copy_ids = store.trial_ids(select.study.name, [t.number for t in copies])
    claims = store.claims(select.study.name)
    predictions = store.predictions(list(copy_ids.values()), "val")
    for t in copies:
        source = int(record.of(t).reused_from.removeprefix("tu-search trial "))
        assert record.of(t).config_hash == searched[source].config_hash
        mine = predictions.get(copy_ids[t.number])
        assert mine is not None and set(mine.predicted) == {source}, t.number  # its own source's predictions
        claim = claims[record.of(t).config_hash]
        assert (claim.trial_id, claim.state) == (copy_ids[t.number], "complete")
    store.dispose()

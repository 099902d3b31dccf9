"""runner/train.py: one point trained, reproducibly; ema, the average of the weights that is
evaluated and kept; the presets train to the values the code before stored."""
from __future__ import annotations

import optuna
import pytest
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from runner.augment import AUGMENTATIONS
from runner.data import MNIST, Split
from runner.errors import SpecError
from runner.export import export_model
from runner.spec import load_spec
from runner.store import Store
from runner.train import TrainingError, train_point
from runner.trials.checkpoints import Checkpoints
from runner.trials.grid import run_grid
from runner.trials.settings import RunSettings

from tests.helpers import CPU, one_model_spec as spec, small
from tests.helpers import old_db  # noqa: F401 - fixtures


def test_same_point_and_seed_give_identical_metrics(write_spec, mnist):
    spec = load_spec(write_spec(epochs=2, batch_norm="[true]"))
    point = spec.points()[0]
    _, a = train_point(point, small(mnist), torch.device("cpu"))
    _, b = train_point(point, small(mnist), torch.device("cpu"))
    strip = lambda h: [(m.train_loss, m.train_acc, m.test_loss, m.test_acc, m.lr) for m in h]  # noqa: E731
    assert strip(a) == strip(b)
    assert len(a) == 2 and a[-1].test_acc > 50  # it learned


@pytest.mark.parametrize("augment", ["affine", "elastic"])
def test_augmentation_touches_training_batches_only(write_spec, mnist, monkeypatch, augment):
    spec = load_spec(write_spec(text=f"""
        [study]
        name = "a"
        [train]
        epochs = 1
        batch_size = 100
        [models.m]
        arch = "mlp"
        hidden = [16]
        [grid]
        augment = ["{augment}"]
        """))
    calls = []
    real = AUGMENTATIONS[augment]
    monkeypatch.setitem(AUGMENTATIONS, augment, lambda x, g: calls.append(len(x)) or real(x, g))
    val = Split(mnist.train.images[540:600], mnist.train.labels[540:600])
    data = MNIST(mnist.train.head(540), mnist.test.head(300), "test", "x", False, val=val)
    train_point(spec.points()[0], data, torch.device("cpu"))
    assert sum(calls) == 540  # every training image once, no validation or test image


def test_a_nan_loss_fails_the_trial(write_spec, mnist):
    spec = load_spec(write_spec(text="""
        [study]
        name = "nan"
        [train]
        epochs = 1
        lr = 1e30
        [models.m]
        arch = "mlp"
        hidden = [16]
        [grid]
        model = ["m"]
        """))
    with pytest.raises(TrainingError, match="loss became nan in epoch 1"):
        train_point(spec.points()[0], small(mnist), torch.device("cpu"))


def test_a_last_batch_of_one_image_is_skipped_so_batch_norm_trains(write_spec, mnist):
    spec = load_spec(write_spec(batch_norm="[true]"))
    data = MNIST(Split(mnist.train.images[:201], mnist.train.labels[:201]), mnist.test.head(100), "t", "x", False)
    _, history = train_point(spec.points()[0], data, torch.device("cpu"))
    assert len(history) == 1


# ---------------------------------------------------------------- ema


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def metrics(history: list) -> list[tuple]:
    return [(m.train_loss, m.train_acc, m.test_loss, m.test_acc, m.lr) for m in history]


@pytest.mark.parametrize("warmup", [True, False])
def test_the_evaluated_weights_are_the_moving_average_of_every_step(mnist, monkeypatch, warmup):
    decay = 0.9
    point = spec({"ema": [decay], "ema_warmup": [warmup]},
                 model={"arch": "mlp", "hidden": [32], "batch_norm": True}).points()[0]
    steps = []
    real = AveragedModel.update_parameters
    monkeypatch.setattr(AveragedModel, "update_parameters", lambda self, m: steps.append(weights(m)) or real(self, m))
    model, _ = train_point(point, small(mnist), CPU)
    assert len(steps) == 6  # one update after each optimizer step
    by_hand = dict(steps[0])  # the first step's weights as they are
    for n, w in enumerate(steps[1:], 1):  # the n-th update after the first: warmed up, min(decay, (1 + n) / (10 + n))
        d = min(decay, (1 + n) / (10 + n)) if warmup else decay
        by_hand = {k: d * by_hand[k] + (1 - d) * w[k] for k in w}
    got = weights(model)
    assert type(model) is not AveragedModel and set(got) == set(steps[-1])  # the raw model's keys
    floats = [k for k in got if got[k].is_floating_point()]
    assert any("running_mean" in k for k in floats)  # batch norm's statistics are averaged too
    for k in floats:
        assert torch.allclose(got[k], by_hand[k], atol=1e-6), k
    assert not torch.allclose(got["classifier.fc1.weight"], steps[-1]["classifier.fc1.weight"])  # not the raw ones


def test_ema_changes_what_is_evaluated_and_kept_not_how_the_model_trains(mnist):
    raw_point, ema_point = spec().points()[0], spec({"ema": [0.99]}).points()[0]
    raw, a = train_point(raw_point, small(mnist), CPU)
    averaged, b = train_point(ema_point, small(mnist), CPU)
    assert [(m.train_loss, m.train_acc) for m in a] == [(m.train_loss, m.train_acc) for m in b]
    assert a[-1].test_loss != b[-1].test_loss
    assert not all(torch.equal(v, averaged.state_dict()[k]) for k, v in raw.state_dict().items())


def test_the_warm_up_is_on_by_default_and_an_ema_without_it_hashes_as_before_it_existed():
    before = spec({"ema": [0.999], "ema_warmup": [False]}).points()[0]  # as every EMA trial stored before it
    now = spec({"ema": [0.999]}).points()[0]
    assert before.reg("ema_warmup") is False and now.reg("ema_warmup") is True
    assert "ema_warmup" not in before.resolved()["regularizers"] and now.resolved()["regularizers"]["ema_warmup"]
    assert before.config_hash != now.config_hash and "ema_warmup" not in now.params  # an axis only where set
    off = spec({"ema": [0.0]}).points()[0]  # no average, nothing to warm up: the hash of no EMA at all
    assert off.config_hash == spec().points()[0].config_hash and "ema_warmup" not in off.resolved()["regularizers"]


def test_ema_zero_is_no_ema_bit_for_bit_and_keeps_the_hash(mnist):
    without, zero = spec().points()[0], spec({"ema": [0.0]}).points()[0]
    assert zero.config_hash == without.config_hash and "ema" not in without.resolved()["regularizers"]
    assert "ema" not in without.params and zero.params["ema"] == 0.0  # an axis only where the spec sets it
    on = spec({"ema": [0.999]}).points()[0]
    assert on.config_hash != without.config_hash and on.resolved()["regularizers"]["ema"] == 0.999
    _, a = train_point(without, small(mnist), CPU)
    _, b = train_point(zero, small(mnist), CPU)
    assert metrics(a) == metrics(b)


def test_resuming_with_ema_equals_an_uninterrupted_run(mnist, tmp_path):
    point = spec({"ema": [0.95]}, model={"arch": "lenet5", "batch_norm": True}, epochs=3).points()[0]
    data = small(mnist, 300, 100)
    full_model, full = train_point(point, data, CPU)
    ckpt = Checkpoints(tmp_path)  # written and read as the grid does (weights_only)
    train_point(point, data, CPU, save=lambda state: state["epoch"] == 1 and ckpt.save(point.config_hash, state))
    state = ckpt.load(point.config_hash)
    assert state["epoch"] == 1 and "ema" in state
    model, resumed = train_point(point, data, CPU, resume=state)
    assert metrics(resumed) == metrics(full)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in full_model.state_dict().items())


def test_a_grid_trial_keeps_the_averaged_weights_it_evaluated(mnist, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = spec({"ema": [0.9]})
    url = f"sqlite:///{tmp_path / 'levers.sqlite'}"
    assert run_grid(s, url, RunSettings(artifacts=str(tmp_path / "artifacts"))).ran == 1
    store = Store(url, create=False)
    _, out = export_model(store, "levers", None, tmp_path / "kept.pt", artifacts=str(tmp_path / "artifacts"))
    store.dispose()
    kept = torch.load(out, weights_only=True)["state_dict"]
    averaged, _ = train_point(s.points()[0], small(mnist), CPU)  # the same point, trained again
    raw, _ = train_point(spec().points()[0], small(mnist), CPU)  # trained the same way, without the average
    assert set(kept) == set(averaged.state_dict()) == set(raw.state_dict())
    assert all(torch.equal(kept[k], v) for k, v in averaged.state_dict().items())
    assert not all(torch.equal(kept[k], v) for k, v in raw.state_dict().items())


def test_the_average_keeps_the_models_memory_format(mnist):
    point = spec({"ema": [0.9]}, model={"arch": "lenet5"}).points()[0]
    model, _ = train_point(point, small(mnist, 200, 100), CPU)
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)  # as train.py trains a conv model


def test_an_ema_of_one_or_more_is_refused_in_one_line():
    for bad in (1.0, 1.5, -0.1):
        with pytest.raises(SpecError) as e:
            spec({"ema": [bad]})
        assert str(e.value) == f"levers.toml: [grid].ema: {bad} is not a number in [0, 1)"
    with pytest.raises(SpecError, match=r"\[models.m\].ema: 1.0 is not a number in \[0, 1\)"):
        spec(model={"arch": "mlp", "ema": 1.0})


# ---------------------------------------------------------------- the values the code before stored (tests/fixtures/v0)


def test_the_presets_train_to_the_values_the_old_code_stored(old_db, tmp_path):
    spec_path, url = old_db
    old = {t.user_attrs["config_hash"]: t for t in optuna.load_study(study_name="v0", storage=url).get_trials()}
    fresh = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    run_grid(load_spec(spec_path), fresh)
    store = Store(fresh)
    new = {t.user_attrs["config_hash"]: t for t in optuna.load_study(study_name="v0", storage=fresh).get_trials()}
    assert set(new) == set(old)
    old_store = Store(url, create=False)
    for h, t in new.items():
        assert t.user_attrs["param_count"] == old[h].user_attrs["param_count"]
        e_new = store.epochs([t._trial_id])[t._trial_id][-1]
        e_old = old_store.epochs([old[h]._trial_id])[old[h]._trial_id][-1]
        for m in ("train_loss", "train_acc", "test_loss", "test_acc"):
            assert getattr(e_new, m) == pytest.approx(getattr(e_old, m), rel=1e-5, abs=1e-6), (t.params, m)

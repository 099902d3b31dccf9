"""Two regularizer axes of issue 20: augment = "elastic" (Simard et al. 2003) and ema (a weight average)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel

from runner import augment
from runner.augment import affine_augment, elastic_augment
from runner.data import MNIST
from runner.errors import SpecError
from runner.export import export_model
from runner.models.memory import footprint
from runner.spec import parse_spec
from runner.spec.tables import averages_weights
from runner.store import Store
from runner.train import train_point
from runner.trials.checkpoints import Checkpoints
from runner.trials.grid import run_grid
from runner.trials.settings import RunSettings

CPU = torch.device("cpu")


def small(mnist: MNIST, n_train: int = 600, n_test: int = 300) -> MNIST:
    return MNIST(mnist.train.head(n_train), mnist.test.head(n_test), "test", "x", False)


def spec(grid: dict | None = None, model: dict | None = None, epochs: int = 1, runs: list | None = None):
    """A one-model spec on 600 training images, batch 100 (6 steps an epoch)."""
    raw = {"study": {"name": "levers"}, "data": {"train_limit": 600, "test_limit": 300},
           "train": {"epochs": epochs, "batch_size": 100, "lr": 0.05},
           "models": {"m": model or {"arch": "mlp", "hidden": [32]}}, "grid": {"model": ["m"], **(grid or {})}}
    if runs:
        raw["runs"] = runs
    return parse_spec(raw, "levers.toml")


def digits(mnist: MNIST, n: int = 64) -> torch.Tensor:
    return mnist.train.images[:n].unsqueeze(1).float()  # (n, 1, 28, 28) in [0, 255], background 0


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def metrics(history: list) -> list[tuple]:
    return [(m.train_loss, m.train_acc, m.test_loss, m.test_acc, m.lr) for m in history]


# ---------------------------------------------------------------- augment = "elastic"


def test_the_smoothing_is_the_separable_gaussian_convolution_with_zeros_beyond_the_image():
    u = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    k = augment.gaussian_kernel(augment.ELASTIC_SIGMA, CPU)
    r = len(k) // 2
    assert len(k) == 2 * 16 + 1 and k.sum().item() == pytest.approx(1)
    reference = F.conv2d(F.conv2d(u, k.view(1, 1, 1, -1), padding=(0, r)), k.view(1, 1, -1, 1), padding=(r, 0))
    m = augment.smoothing_matrix(28, augment.ELASTIC_SIGMA, CPU)
    assert torch.allclose(m @ u @ m.T, reference, atol=1e-6)


def test_the_displacement_field_is_smooth_and_of_simards_size():
    d = augment.elastic_displacement(256, 28, 28, torch.Generator().manual_seed(0), CPU)  # (B, 2, H, W) px
    assert d.shape == (256, 2, 28, 28)
    centre = d[:, :, 10:18, 10:18]  # away from the zeros beyond the image
    # uniform [-1, 1] (variance 1/3) through a normalized Gaussian: std = alpha * sqrt(1/3) * sum(k^2) = 1.4 px
    k = augment.gaussian_kernel(augment.ELASTIC_SIGMA, CPU)
    expected = augment.ELASTIC_ALPHA * (1 / 3) ** 0.5 * (k**2).sum().item()
    assert centre.std().item() == pytest.approx(expected, rel=0.1)
    assert 0.8 < d.norm(dim=1).mean().item() < 2.5  # px: a visible warp, not a scramble
    neighbours = torch.corrcoef(torch.stack([d[..., :-1].flatten(), d[..., 1:].flatten()]))[0, 1]
    assert neighbours > 0.95  # smoothed: an unsmoothed field's neighbours are uncorrelated
    assert not torch.allclose(d[0], d[1])  # a field per image


def test_elastic_augment_moves_the_ink_keeps_the_background_and_is_reproducible(mnist):
    x = digits(mnist)
    y = elastic_augment(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.dtype == x.dtype
    assert ((y - x).abs().mean(dim=(1, 2, 3)) > 1).all()  # every image moved (pixels in [0, 255])
    ink = y.sum(dim=(1, 2, 3)) / x.sum(dim=(1, 2, 3))  # strokes stretch and shrink locally, within bounds
    assert 0.6 < ink.min() and ink.max() < 1.5
    assert y.min() >= 0 and y.max() <= 255 + 1e-3  # bilinear: no value outside the image's range
    border = torch.ones(28, 28, dtype=torch.bool)
    border[3:-3, 3:-3] = False  # MNIST's digits sit in the middle 20 x 20: the frame is background
    assert y[..., border].mean() < 3 and (y == 0).float().mean() > 0.6
    assert torch.equal(elastic_augment(x, torch.Generator().manual_seed(0)), y)
    assert not torch.equal(elastic_augment(x, torch.Generator().manual_seed(1)), y)
    assert not torch.allclose(affine_augment(x, torch.Generator().manual_seed(0)), y, atol=1)


def test_elastic_augment_takes_any_size_and_channel_count():
    x = torch.rand(3, 3, 32, 30) * 255  # three channels, 32 x 30 after a pad or from a user's data
    y = elastic_augment(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and not torch.allclose(y, x)


def test_augment_elastic_parses_and_an_unknown_one_is_refused_with_the_choices():
    point = spec({"augment": ["elastic"]}).points()[0]
    assert point.reg("augment") == "elastic" and point.params["augment"] == "elastic"
    with pytest.raises(SpecError) as e:
        spec({"augment": ["elastik"]})
    message = str(e.value)
    assert message.startswith("levers.toml: [grid].augment") and "\n" not in message
    assert '"none" | "affine" | "elastic"' in message and 'did you mean "elastic"' in message


def test_elastic_training_is_reproducible_and_learns(mnist):
    point = spec({"augment": ["elastic"]}, epochs=2).points()[0]
    _, a = train_point(point, small(mnist), CPU)
    _, b = train_point(point, small(mnist), CPU)
    assert [(m.train_loss, m.test_acc) for m in a] == [(m.train_loss, m.test_acc) for m in b]
    _, plain = train_point(spec(epochs=2).points()[0], small(mnist), CPU)
    assert a[-1].train_loss != plain[-1].train_loss and a[-1].test_acc > 50


# ---------------------------------------------------------------- ema


def test_the_evaluated_weights_are_the_moving_average_of_every_step(mnist, monkeypatch):
    decay = 0.9
    point = spec({"ema": [decay]}, model={"arch": "mlp", "hidden": [32], "batch_norm": True}).points()[0]
    steps = []
    real = AveragedModel.update_parameters
    monkeypatch.setattr(AveragedModel, "update_parameters", lambda self, m: steps.append(weights(m)) or real(self, m))
    model, _ = train_point(point, small(mnist), CPU)
    assert len(steps) == 6  # one update after each optimizer step
    by_hand = dict(steps[0])  # the first step's weights as they are
    for w in steps[1:]:
        by_hand = {k: decay * by_hand[k] + (1 - decay) * w[k] for k in w}
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


def test_the_memory_estimate_counts_the_average_copy():
    s = spec({"ema": [0.0, 0.999]})
    point = s.points()[0]
    cfg = point.model_config()
    plain, averaged = footprint(cfg, 100), footprint(cfg, 100, averaged=True)
    assert averaged.weights_bytes - plain.weights_bytes == 4 * plain.params
    assert averages_weights(s) and not averages_weights(spec())
    assert averages_weights(spec(runs=[{"model": "m", "ema": 0.99}]))
    assert averages_weights(spec(model={"arch": "mlp", "ema": 0.99}))

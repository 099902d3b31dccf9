from __future__ import annotations

import pytest
import torch

from runner.augment import AUGMENTATIONS
from runner.data import MNIST, Split
from runner.spec import load_spec
from runner.train import TrainingError, affine_augment, train_point


def small(mnist: MNIST, n_train: int = 600, n_test: int = 300) -> MNIST:
    return MNIST(mnist.train.head(n_train), mnist.test.head(n_test), "test", "x", False)


def test_affine_augment_moves_pixels_a_little_and_keeps_the_digit(mnist):
    x = mnist.train.images[:64].unsqueeze(1).float()
    g = torch.Generator().manual_seed(0)
    y = affine_augment(x, g)
    assert y.shape == x.shape
    changed = (y - x).abs().mean(dim=(1, 2, 3))
    assert (changed > 0).all()  # an independent draw per image: every image moved
    assert not torch.allclose(y[0] - x[0], y[1] - x[1])
    # small transforms: ink stays roughly where it was and keeps most of its mass
    assert (y.sum(dim=(1, 2, 3)) / x.sum(dim=(1, 2, 3))).min() > 0.7
    assert torch.equal(affine_augment(x, torch.Generator().manual_seed(0)), y)


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

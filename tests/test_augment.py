"""runner/augment.py: the training-batch augmentations, affine and elastic (Simard et al. 2003)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from runner import augment
from runner.augment import affine_augment, elastic_augment
from runner.data import MNIST
from runner.errors import SpecError
from runner.train import train_point

from tests.helpers import CPU, one_model_spec as spec, small


# ---------------------------------------------------------------- augment = "elastic"


def digits(mnist: MNIST, n: int = 64) -> torch.Tensor:
    return mnist.train.images[:n].unsqueeze(1).float()  # (n, 1, 28, 28) in [0, 255], background 0


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


def test_augment_elastic_parses():
    point = spec({"augment": ["elastic"]}).points()[0]
    assert point.reg("augment") == "elastic" and point.params["augment"] == "elastic"


def test_an_unknown_augment_is_refused_with_the_choices():
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


# ---------------------------------------------------------------- augment = "affine"


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


def test_augmentation_takes_any_channel_count():
    from runner.train import affine_augment

    x = torch.rand(4, 3, 32, 32)
    out = affine_augment(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and not torch.equal(out, x)

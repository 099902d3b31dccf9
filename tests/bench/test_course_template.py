"""runner/bench/course_template.py: the baseline `runner bench` compares with is the course
template as written."""
from __future__ import annotations

import torch


def test_the_course_template_is_the_template_as_written(tmp_path):
    """The comparison's baseline: PIL per PNG, Grayscale, ToTensor, Normalize, batch 64, a plain LeNet-5."""
    from torchvision import transforms

    from runner.bench import course_template as ct
    from runner.bench.speed import write_pngs
    from runner.data import load_mnist

    steps = [type(t) for t in ct.TRANSFORM.transforms]
    assert steps == [transforms.Grayscale, transforms.ToTensor, transforms.Normalize]
    assert sum(p.numel() for p in ct.LeNet5().parameters()) == 61_706
    data = load_mnist(train_limit=128, test_limit=64)
    write_pngs(data.train.images, data.train.labels, tmp_path / "train")
    write_pngs(data.test.images, data.test.labels, tmp_path / "test")
    train, test = ct.loaders(tmp_path)
    assert (train.batch_size, train.num_workers, test.batch_size) == (64, 0, 64)
    digits = ct.Digits(tmp_path / "test")
    for i, path in enumerate(digits.paths[:10]):  # sorted by file name, as the template's glob gives them
        index = int(path.stem.split("_")[0])
        x, y = digits[i]
        expected = (data.test.images[index].float() / 255 - 0.1307) / 0.3081
        assert torch.allclose(x[0], expected, atol=1e-6) and y == int(data.test.labels[index])
    out = ct.main([str(tmp_path)])
    assert set(out) == {"train_s", "test_s", "train_loss", "test_acc"}

"""The course template's pipeline, as students wrote it: the baseline `runner bench` compares with.

    python -m runner.bench.course_template ROOT     # ROOT/train/ and ROOT/test/ of {index}_{label}.png

A `Dataset` that opens each PNG with PIL, `Grayscale`, `ToTensor`, `Normalize(0.1307, 0.3081)`,
a shuffling `DataLoader` at batch 64 with `num_workers=0`, a plain contiguous LeNet-5 written out
as in the template, SGD lr 0.01 momentum 0.9, one epoch and a test pass. It imports nothing of the
runner, so that timing it as a whole process measures what a student's script costs, start-up
included. It prints its own timings as JSON on the last line.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

__all__ = ["Digits", "LeNet5", "TRANSFORM", "loaders", "train_epoch", "test_pass", "main"]

BATCH = 64  # the template's DataLoader
TRANSFORM = transforms.Compose([transforms.Grayscale(), transforms.ToTensor(),
                                transforms.Normalize((0.1307,), (0.3081,))])


class Digits(Dataset):
    """One PNG opened with PIL per item; the label is in the file name, {index}_{label}.png."""

    def __init__(self, folder: Path):
        self.paths = sorted(Path(folder).glob("*.png"))

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path = self.paths[i]
        return TRANSFORM(Image.open(path)), int(path.stem.split("_")[1])


class LeNet5(nn.Module):
    """LeNet-5 as the template writes it: 61,706 parameters, ReLU, max pooling."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # (B, 6, 14, 14)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # (B, 16, 5, 5)
        x = x.view(x.size(0), -1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


def loaders(root: Path) -> tuple[DataLoader, DataLoader]:
    """The shuffling training loader and the test loader, batch 64, no worker processes."""
    return (DataLoader(Digits(root / "train"), batch_size=BATCH, shuffle=True, num_workers=0),
            DataLoader(Digits(root / "test"), batch_size=BATCH, shuffle=False, num_workers=0))


def train_epoch(model: nn.Module, loader: DataLoader, opt: torch.optim.Optimizer) -> float:
    """One epoch; returns the mean training loss."""
    model.train()
    total, n = 0.0, 0
    for x, y in loader:
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        total += loss.item() * len(y)
        n += len(y)
    return total / n


def test_pass(model: nn.Module, loader: DataLoader) -> float:
    """Accuracy in percent over the test loader."""
    model.eval()
    correct = n = 0
    with torch.no_grad():
        for x, y in loader:
            correct += (model(x).argmax(1) == y).sum().item()
            n += len(y)
    return 100.0 * correct / n


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Train one epoch from ROOT's PNG folders and test; print and return the timings."""
    root = Path((argv if argv is not None else sys.argv[1:])[0])
    torch.manual_seed(0)
    model = LeNet5()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    train_loader, test_loader = loaders(root)
    start = time.perf_counter()
    loss = train_epoch(model, train_loader, opt)
    middle = time.perf_counter()
    acc = test_pass(model, test_loader)
    out = {"train_s": middle - start, "test_s": time.perf_counter() - middle, "train_loss": loss, "test_acc": acc}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()

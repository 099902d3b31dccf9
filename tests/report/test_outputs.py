"""runner/report/outputs.py: a model whose forward ends in softmax or log_softmax is said so in the report's Setup
and beside its layer table and curves, from the layer table its trials stored; with modules written as students
write them (tests/helpers.py)."""
from __future__ import annotations

import json

import pytest

from runner.models.user import LOG_PROBABILITIES, PROBABILITIES
from runner.report.outputs import output_paragraph, probability_floor
from runner.report.contents import OutputNote
from tests.helpers import STUDENTS
from tests.report.conftest import grid_and_report

LOG_SOFT = """

class LogSoftLeNet(LeNet5):
    def forward(self, x):
        return F.log_softmax(super().forward(x), dim=1)
"""

SPEC = """
[study]
name = "outputs"
[data]
train_limit = 300
test_limit = 100
[train]
epochs = 1
batch_size = 50
lr = 0.05
threads = 1
[models.lenet]
target = "students:LeNet5"
[models.soft]
target = "students:SoftLeNet"
[models.logsoft]
target = "students:LogSoftLeNet"
[grid]
model = ["lenet", "soft", "logsoft"]
"""


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """A LeNet-5 returning logits, one ending in softmax and one in log_softmax, 1 epoch on 300 images; the report."""
    folder = tmp_path_factory.mktemp("outputs")
    (folder / "students.py").write_text(STUDENTS + LOG_SOFT)
    (folder / "spec.toml").write_text(SPEC)
    return grid_and_report(folder)


def section(text: str, heading: str) -> str:
    """The Markdown under the first heading that begins with `heading`, up to the next of its level or above."""
    level = heading.split()[0]
    body = text.split(f"\n{heading}", 1)[1].split("\n", 1)[1]
    ends = [body.find(f"\n{'#' * n} ") for n in range(1, len(level) + 1)]
    return body[:min([e for e in ends if e >= 0], default=len(body))]


def test_the_setup_says_what_a_softmax_does_to_training_and_how_to_fix_it(outputs):
    text = (outputs / "report.md").read_text()
    training = section(text, "### Training")
    soft = next(p for p in training.split("\n\n") if p.startswith("`soft` returns probabilities"))
    assert "its forward ends in softmax (`softmax()` in its layer table)" in soft
    assert "its loss cannot fall below 1.46 (2.30 is a uniform guess's, 10 classes)" in soft
    assert "training barely learns; that is why `soft` reaches only" in soft
    assert "return the last layer's output as it is (logits)" in soft
    accuracy = json.loads((outputs / "summary.json").read_text())
    mean = next(c["final_mean"] for c in accuracy["configs"] if c["label"] == "soft")
    assert f"reaches only {mean:.2f}% final test accuracy" in soft
    logsoft = next(p for p in training.split("\n\n") if p.startswith("`logsoft` returns log-probabilities"))
    assert "its accuracy does not suffer" in logsoft and "barely" not in logsoft
    assert "`lenet` returns" not in text  # logits: nothing to say
    assert accuracy["outputs"] == [{"model": m, "kind": k, "layer": layer} for m, k, layer in
                                   sorted([("soft", PROBABILITIES, "softmax()"),
                                           ("logsoft", LOG_PROBABILITIES, "log_softmax()")],
                                          key=lambda o: [c["model"] for c in accuracy["configs"]].index(o[0]))]


def test_the_note_sits_beside_the_models_layer_table_and_curves(outputs):
    text = (outputs / "report.md").read_text()
    for heading in ("### soft (", "### `soft`\n"):  # its layer table, its learning curves
        part = section(text, heading)
        assert "> Note: `soft` returns probabilities (its forward ends in softmax, `softmax()`)" in part, heading
        assert "[Training](#training)" in part and "`logsoft` returns" not in part
    assert "> Note: `logsoft` returns log-probabilities" in section(text, "### `logsoft`\n")
    for heading in ("### lenet (", "### `lenet`\n"):
        assert "> Note:" not in section(text, heading)


def test_the_floor_is_the_loss_of_a_certain_softmax_taken_for_logits():
    import torch

    for classes in (2, 10, 47):
        best = torch.zeros(1, classes)
        best[0, 0] = 1.0
        loss = torch.nn.functional.cross_entropy(best, torch.tensor([0])).item()
        assert probability_floor(classes) == pytest.approx(loss)
    note = OutputNote("net", PROBABILITIES, "out", 10, "net", None)
    assert "reaches only" not in output_paragraph(note) and "training barely learns." in output_paragraph(note)
    held = output_paragraph(OutputNote("net", PROBABILITIES, "out", 10, "net", 30.0, 3), "val")
    assert "reaches only 30.00% final validation accuracy (mean over 3 seeds)" in held

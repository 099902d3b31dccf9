"""runner/distill.py: the teacher's term of the loss, the teacher as the student sees it, and its checks."""
from __future__ import annotations

import math

import optuna
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import runner.distill as distill_module
from runner.data import DataSource, load_data
from runner.distill import Distillation, Teacher, TeacherError, check_teacher, distill_loss
from runner.spec import load_spec
from runner.store import Store
from runner.trials.grid import run_grid
from runner.weights import load_kept

TEACHER = """
[study]
name = "teach"
seeds = [0]
[data]
train_limit = 300
test_limit = 100
val_fraction = 0.2
[train]
epochs = 2
batch_size = 100
threads = 1
[models.small]
layers = [{ conv = 4, k = 5, name = "c1" }, { pool = "max", k = 2 }, { fc = 10, name = "output" }]
[grid]
lr = [0.05]
"""

STUDENT = """
[study]
name = "student"
seeds = [0]
[data]
train_limit = 300
test_limit = 100
val_fraction = 0.2
[train]
epochs = 2
batch_size = 100
threads = 1
teacher = { study = "teach", trial = 0 }
[models.mlp]
layers = [{ fc = 16, name = "h1" }, { fc = 10, name = "output" }]
[grid]
distill_weight = [0.0, 0.9]
"""


class Fixed(nn.Module):
    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.logits = logits

    def forward(self, x):
        return self.logits


def test_the_loss_is_the_mixture_hinton_et_al_give():
    torch.manual_seed(0)
    out, y, soft_logits = torch.randn(8, 10), torch.randint(0, 10, (8,)), torch.randn(8, 10)
    teacher = Teacher.__new__(Teacher)
    nn.Module.__init__(teacher)
    teacher.nets, teacher.maps, teacher.channels_last = nn.ModuleList([Fixed(soft_logits)]), [(1.0, 0.0)], False
    w, t = 0.7, 3.0
    got = distill_loss(out, y, 0.1, Distillation(teacher, w, t), torch.zeros(8, 1, 28, 28))
    p = F.softmax(soft_logits / t, 1)
    kl = (p * (p.log() - F.log_softmax(out / t, 1))).sum(1).mean()
    expected = (1 - w) * F.cross_entropy(out, y, label_smoothing=0.1) + w * t * t * kl
    assert math.isclose(got.item(), expected.item(), rel_tol=1e-5)
    assert distill_loss(out, y, 0.1, None, out).item() == F.cross_entropy(out, y, label_smoothing=0.1).item()
    same = Distillation(teacher, 0.5, 2.0)  # a student that already says what its teacher says: no soft term
    assert math.isclose(distill_loss(soft_logits, y, 0.0, same, out).item(),
                        0.5 * F.cross_entropy(soft_logits, y).item(), rel_tol=1e-5)


def test_the_soft_term_pulls_the_student_towards_its_teacher():
    out = torch.zeros(4, 10, requires_grad=True)
    teacher = Teacher.__new__(Teacher)
    nn.Module.__init__(teacher)
    target = torch.zeros(4, 10)
    target[:, 3] = 5.0
    teacher.nets, teacher.maps, teacher.channels_last = nn.ModuleList([Fixed(target)]), [(1.0, 0.0)], False
    distill_loss(out, torch.zeros(4, dtype=torch.long), 0.0, Distillation(teacher, 1.0, 2.0), out).backward()
    assert (out.grad[:, 3] < 0).all() and (out.grad[:, 0] > 0).all()  # raise class 3, the teacher's; not the label 0


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    """A storage holding a kept teacher trained on the student's split, and the student's spec."""
    folder = tmp_path_factory.mktemp("distill")
    (folder / "teacher.toml").write_text(TEACHER)
    url = f"sqlite:///{folder}/db.sqlite"
    run_grid(load_spec(folder / "teacher.toml"), url)
    (folder / "student.toml").write_text(STUDENT)
    return folder, url


def test_the_teacher_sees_the_students_batch_as_its_own_normalization_would_give_it(kept):
    folder, url = kept
    store = Store(url)
    try:
        trial = optuna.load_study(study_name="teach", storage=store.optuna).trials[0]
        _, model = load_kept(store, "teach", trial, folder)
    finally:
        store.dispose()
    images = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8)
    mean, std = 0.5, 0.25  # another normalization than the teacher's own (MNIST's)
    x = images.float() / 255 * (1 / std) - mean / std
    teacher = Teacher([model], mean, std)
    expected = F.softmax(model(images), 1)
    assert torch.allclose(teacher.soft_targets(x, 1.0), expected, atol=1e-5)


def test_a_distilled_trial_names_its_teacher_and_one_without_a_share_trains_as_without_a_teacher(kept, monkeypatch):
    folder, url = kept
    loads = []
    real = distill_module.load_teacher

    def counted(*args, **kwargs):
        loads.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr("runner.trials.trial.load_teacher", counted)
    spec = load_spec(folder / "student.toml", storage=url)
    run_grid(spec, url)
    trials = {t.params["distill_weight"]: t for t in optuna.load_study(study_name="student", storage=url).trials}
    taught, plain = trials[0.9].user_attrs, trials[0.0].user_attrs
    assert len(loads) == 1  # once per worker, before it claims anything
    assert taught["teacher"]["from"] == "teach trial 0" and taught["teacher"]["sha256"] == list(spec.train.teacher.sha256)
    assert set(taught["teacher"]["measured"]) == {"val_acc", "test_acc"} and taught["teacher"]["parameters"] > 0
    assert "teacher" not in plain and "teacher" not in plain["config"]["train"]
    # the share 0 point is the same configuration, and the same training, as the student without any teacher
    (folder / "alone.toml").write_text(STUDENT.replace('teacher = { study = "teach", trial = 0 }\n', "")
                                       .replace("distill_weight = [0.0, 0.9]", "lr = [0.01]")
                                       .replace('name = "student"', 'name = "alone"'))
    run_grid(load_spec(folder / "alone.toml"), url)
    alone = optuna.load_study(study_name="alone", storage=url).trials[0]
    assert alone.user_attrs["config_hash"] == plain["config_hash"] and alone.value == trials[0.0].value
    assert trials[0.9].value != trials[0.0].value


def test_a_teacher_of_other_classes_is_refused_before_anything_trains(kept):
    folder, url = kept
    spec = load_spec(folder / "student.toml", storage=url)
    data = load_data(DataSource("mnist"), train_limit=300, test_limit=100, val_fraction=0.2)
    with pytest.raises(TeacherError, match="gives 10 classes, this study's data has 3"):
        check_teacher(spec, type(data)(**{**vars(data), "classes": 3}), url, None, True)


def test_a_teacher_that_prepares_its_input_otherwise_is_refused_before_anything_trains(kept):
    folder, url = kept
    (folder / "padded.toml").write_text(STUDENT.replace('layers = [{ fc = 16', 'input = { pad = 2 }\nlayers = [{ fc = 16'))
    spec = load_spec(folder / "padded.toml", storage=url)
    data = load_data(DataSource("mnist"), train_limit=300, test_limit=100, val_fraction=0.2)
    with pytest.raises(TeacherError, match=r"teach trial 0 prepares its input as \{\}, the students as \{'pad': 2\}"):
        check_teacher(spec, data, url, None, True)


def test_the_teachers_accuracy_is_measured_on_the_students_held_out_splits_only(kept):
    folder, url = kept
    spec = load_spec(folder / "student.toml", storage=url)
    data = load_data(DataSource("mnist"), train_limit=300, test_limit=100, val_fraction=0.2)
    searched = check_teacher(spec, data, url, None, evaluate_test=False).train.teacher
    tested = check_teacher(spec, data, url, None, evaluate_test=True).train.teacher
    assert [k for k, _ in searched.measured] == ["val_acc"]  # a search never reads test, nor does its teacher there
    assert [k for k, _ in tested.measured] == ["val_acc", "test_acc"] and all(0 <= v <= 100 for _, v in tested.measured)


def test_a_dry_run_names_the_teacher_it_found(kept):
    from runner.trials.lifecycle import dry_run

    folder, url = kept
    lines = dry_run(load_spec(folder / "student.toml", storage=url))
    assert any(line.startswith("teacher: teach trial 0 (") and "parameters" in line for line in lines), lines


def test_a_study_keeps_the_teacher_its_first_run_bound(kept):
    """A "best" that would now resolve to another trial (or any other weights) is refused, not a new configuration
    for every taught point."""
    from dataclasses import replace

    from runner.distill import TeacherError, keep_teacher

    folder, url = kept
    spec = load_spec(folder / "student.toml", storage=url)
    study = optuna.create_study(study_name="keeps", storage=url)
    keep_teacher(study, spec)
    keep_teacher(study, spec)  # the same teacher again: nothing to say
    other = replace(spec, train=replace(spec.train, teacher=replace(spec.train.teacher, origin="teach trial 9",
                                                                    sha256=("0" * 64,))))
    with pytest.raises(TeacherError, match="study 'keeps' was taught by teach trial 0; the spec now binds teach "
                                           "trial 9, other weights"):
        keep_teacher(study, other)


def test_a_teacher_that_returns_probabilities_is_refused(kept, monkeypatch):
    from runner.weights import ExportedModel

    folder, url = kept
    spec = load_spec(folder / "student.toml", storage=url)
    data = load_data(DataSource("mnist"), train_limit=300, test_limit=100, val_fraction=0.2)
    real = ExportedModel.forward
    monkeypatch.setattr(ExportedModel, "forward", lambda self, x: F.softmax(real(self, x), 1))
    with pytest.raises(TeacherError, match=r"returns probabilities \(its forward ends in softmax\)"):
        check_teacher(spec, data, url, None, True)

"""Knowledge distillation: a kept model teaches a student through its softened outputs (Hinton, Vinyals & Dean 2015).

The loss of a distilled trial is

    (1 - w) CE(student, labels) + w T^2 KL(softmax(teacher / T) || softmax(student / T))

with w = [train].distill_weight and T = [train].distill_temperature; T^2 keeps the soft term's gradients on the
scale of the hard term's as T changes. The teacher (runner.spec.teacher: one kept trial, several, or a file) runs in
eval mode on the student's own batch, augmented as the student sees it, on the worker's device; it is loaded once
per worker (`load_teacher`), and checked before anything trains (`check_teacher`).
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import optuna
import torch
import torch.nn.functional as F
from torch import nn

from runner import record
from runner.data import Data
from runner.errors import RunnerError
from runner.spec import Spec
from runner.spec.teacher import Teacher as TeacherSpec
from runner.store import Store
from runner.weights import ExportedModel, KeptError, ModelFileError, load_kept, load_model

__all__ = ["Distillation", "Teacher", "TeacherError", "distill_loss", "load_teacher", "check_teacher", "keep_teacher"]


class TeacherError(RunnerError):
    """A teacher that cannot teach this student: not found, not loadable, another input or other classes."""


@dataclass(frozen=True)
class Distillation:
    """What a distilled training adds to its epochs: the teacher, its share of the loss and the temperature."""

    teacher: Teacher
    weight: float  # w: the teacher's share of the loss
    temperature: float  # T


class Teacher(nn.Module):
    """One or several kept models in eval mode, taking the student's normalized batch: their softened outputs, the
    mean over the members (an ensemble teaches with its mean)."""

    def __init__(self, members: list[ExportedModel], mean: float, std: float):
        super().__init__()
        self.nets = nn.ModuleList(m.net for m in members)
        s_scale, s_shift = 1 / (255 * std), mean / std  # the student's normalization: x = pixels * scale - shift
        # each member's own normalization of the same pixels, as one multiply-add on the student's x
        self.maps = [(m.scale / s_scale, s_shift * m.scale / s_scale - m.shift) for m in members]
        # convolutions run faster in channels_last on the CPU (runner.train.channels_last): the batch is converted
        self.channels_last = any(isinstance(m, nn.Conv2d) for m in self.modules())
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)

    def soft_targets(self, x: torch.Tensor, temperature: float) -> torch.Tensor:
        """The members' mean softmax at `temperature` for the student's normalized batch x (B, C, H, W) ->
        (B, classes), outside the autograd graph (no_grad, not inference_mode: the loss keeps it for backward)."""
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            return torch.stack([F.softmax(net(x * a + b).float() / temperature, 1)
                                for net, (a, b) in zip(self.nets, self.maps)]).mean(0)

    def train(self, mode: bool = True) -> Teacher:  # always in eval mode: batch norm's running statistics stay
        return super().train(False)


def distill_loss(out: torch.Tensor, y: torch.Tensor, smoothing: float, distill: Distillation | None,
                 x: torch.Tensor) -> torch.Tensor:
    """The training loss of a batch: cross-entropy with the labels (label smoothing on it), mixed with the
    teacher's term when there is one (`x`: the batch the student saw, which the teacher sees too)."""
    hard = F.cross_entropy(out, y, label_smoothing=smoothing)
    if distill is None:
        return hard
    t, w = distill.temperature, distill.weight
    soft = distill.teacher.soft_targets(x, t)  # (B, classes)
    kl = F.kl_div(F.log_softmax(out / t, 1), soft, reduction="batchmean")
    return (1 - w) * hard + w * t * t * kl


def keep_teacher(study: optuna.Study, spec: Spec) -> None:
    """A study keeps the teacher its first run bound: stored then, and other weights refused later, since each taught
    point's config hash names its teacher (a "best" that now resolves to another trial would make every taught point
    another configuration, and a second machine train them again)."""
    t = spec.train.teacher
    if t is None or not t.sha256[0]:
        return
    stored = record.study_of(study).teacher
    if stored is None:
        study.set_user_attr(record.STUDY_TEACHER, {"from": t.origin, "sha256": list(t.sha256)})
    elif stored["sha256"] != list(t.sha256):
        raise TeacherError(f"[train].teacher: study {study.study_name!r} was taught by {stored['from']}; the spec now "
                           f"binds {t.origin}, other weights: name that teacher (trial = N) to go on, or give a new "
                           "[study].name")


def _members(spec: TeacherSpec, url: str, artifacts: str | None, module_dir: str) -> list[ExportedModel]:
    """Each member's model, its weights checked against the SHA-256 the spec was bound with."""
    try:
        if spec.file:
            return [load_model(spec.file, module_dir, sha256=spec.sha256[0] or None, name=spec.origin)]
        store = Store(url, create=False)
        try:
            study = store.load_study(spec.study)
            trials = {t.number: t for t in study.get_trials(deepcopy=False)}
            out = []
            for number in spec.trials:
                with tempfile.TemporaryDirectory() as tmp:
                    out.append(load_kept(store, spec.study, trials[number], Path(tmp), artifacts, module_dir)[1])
            return out
        finally:
            store.dispose()
    except (KeptError, ModelFileError) as e:
        raise TeacherError(f"[train].teacher: {e}") from None


def load_teacher(spec: Spec, url: str, artifacts: str | None, device: torch.device, data: Data) -> Teacher | None:
    """The spec's teacher on `device` (None when no point is distilled), for one worker."""
    t = spec.train.teacher
    if t is None:
        return None
    teacher = Teacher(_members(t, url, artifacts, spec.folder), data.mean, data.std)
    return teacher.to(device, memory_format=torch.channels_last if teacher.channels_last else torch.preserve_format)


def check_teacher(spec: Spec, data: Data, url: str, artifacts: str | None, evaluate_test: bool) -> Spec:
    """Before anything trains: the teacher loads, takes the data's images (shape and input transform) and gives its
    classes; its accuracy on the student's held-out splits (validation; test only where the student is tested)
    and its size are kept in the spec, for the trials' records. A one-line TeacherError otherwise."""
    t = spec.train.teacher
    if t is None:
        return spec
    members = _members(t, url, artifacts, spec.folder)
    probe = data.train.images[:16]
    probe = probe.unsqueeze(1) if probe.dim() == 3 else probe
    for m in members:
        with torch.inference_mode():
            out = m(probe).float()
        if (out >= 0).all() and torch.allclose(out.sum(1), torch.ones(len(out)), atol=1e-3):
            raise TeacherError(f"[train].teacher: {t.origin} returns probabilities (its forward ends in softmax): a "
                               "teacher's outputs are softened as logits; return the logits from forward")
    students = {p.model.input.to_dict().__repr__() for p in spec.model_points()}
    for m in members:
        if tuple(m.input_shape) != tuple(data.shape):
            raise TeacherError(f"[train].teacher: {t.origin} takes images of shape {tuple(m.input_shape)}, this "
                               f"study's are {tuple(data.shape)}")
        mine = repr({k: v for k, v in (("pad", m.pad), ("resize", m.resize)) if v})
        if students != {mine}:
            raise TeacherError(f"[train].teacher: {t.origin} prepares its input as {mine}, the students as "
                               f"{' or '.join(sorted(students))}: a teacher sees the student's batch, so both must "
                               "pad and resize alike")
        if len(m.class_names) != data.classes:
            raise TeacherError(f"[train].teacher: {t.origin} gives {len(m.class_names)} classes, this study's data "
                               f"has {data.classes}")
    measured = [("val_acc", _accuracy(members, data.val))] if data.val is not None and len(data.val) else []
    if evaluate_test and len(data.test):
        measured.append(("test_acc", _accuracy(members, data.test)))
    parameters = t.parameters or sum(p.numel() for p in members[0].net.parameters())
    return replace(spec, train=replace(spec.train, teacher=replace(t, parameters=parameters,
                                                                     measured=tuple(measured))))


def _accuracy(members: list[ExportedModel], split: Any) -> float:
    """The teacher's accuracy in percent on a split (the argmax of its members' mean softmax), on the CPU."""
    images = split.images.unsqueeze(1) if split.images.dim() == 3 else split.images  # (N, C, H, W) uint8
    correct = 0
    with torch.inference_mode():
        for i in range(0, len(images), 2000):
            p = torch.stack([F.softmax(m(images[i:i + 2000]).float(), 1) for m in members]).mean(0)
            correct += int((p.argmax(1) == split.labels[i:i + 2000]).sum())
    return 100.0 * correct / len(images)

"""runner/spec/teacher.py: [train].teacher bound when the spec is read: found, hashed, and refused where it could leak."""
from __future__ import annotations

import shutil

import pytest

from runner.errors import SpecError
from runner.spec import load_spec
from runner.trials.grid import run_grid

TEACHERS = """
[study]
name = "{name}"
seeds = [0, 1]
{locked}
[data]
train_limit = 300
test_limit = 100
val_fraction = {val}
[train]
epochs = 1
batch_size = 100
threads = 1
[models.small]
layers = [{{ conv = 2, k = 5, name = "c1" }}, {{ pool = "max", k = 2 }}, {{ fc = 10, name = "output" }}]
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
{data}
[train]
epochs = 1
threads = 1
teacher = {teacher}
{train}
[models.mlp]
layers = [{{ fc = 16, name = "h1" }}, {{ fc = 10, name = "output" }}]
[grid]
{grid}
"""


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A storage with a teacher study trained on a validation split ("split", tested), one trained on every image
    ("refit", tested), and one never tested ("split-select": the selection of a search)."""
    folder = tmp_path_factory.mktemp("teachers")
    locked = 'metric = "val_acc"\ntest = "locked"'  # as runner tune's selection: ranked on validation, never tested
    for name, val, lock in (("split", 0.2, ""), ("refit", 0.0, ""), ("split-select", 0.2, locked)):
        (folder / f"{name}.toml").write_text(TEACHERS.format(name=name, val=val, locked=lock))
        run_grid(load_spec(folder / f"{name}.toml"), f"sqlite:///{folder}/db.sqlite")
    return folder


def student(folder, teacher: str, data: str = "val_fraction = 0.2", train: str = "distill_weight = 0.9",
            grid: str = "lr = [0.05]"):
    path = folder / "student.toml"
    path.write_text(STUDENT.format(teacher=teacher, data=data, train=train, grid=grid))
    return load_spec(path, storage=f"sqlite:///{folder}/db.sqlite")


def refused(folder, message: str, **kwargs) -> None:
    with pytest.raises(SpecError) as e:
        student(folder, **kwargs)
    assert message in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_a_trial_of_the_same_split_teaches_and_its_weights_name_it_in_the_config_hash(stored):
    spec = student(stored, '{ study = "split", trial = 1 }')
    t = spec.train.teacher
    assert (t.origin, t.trials, len(t.sha256), len(t.sha256[0])) == ("split trial 1", (1,), 1, 64)
    other = student(stored, '{ study = "split", trial = 0 }')
    assert spec.points()[0].config_hash != other.points()[0].config_hash  # another teacher, another configuration
    config = spec.points()[0].resolved()["train"]
    assert config["teacher"] == {"sha256": list(t.sha256)} and config["distill_weight"] == 0.9


def test_a_point_without_a_share_keeps_the_hash_of_a_spec_without_a_teacher(stored):
    taught = student(stored, '{ study = "split", trial = 0 }', train="", grid="distill_weight = [0.0, 0.9]")
    (stored / "plain.toml").write_text(STUDENT.format(teacher='""', data="val_fraction = 0.2", train="",
                                                      grid="lr = [0.01]").replace('teacher = ""\n', ""))
    plain = load_spec(stored / "plain.toml")
    untaught = [p for p in taught.points() if p.train.distill_weight == 0]
    assert untaught[0].resolved()["train"] == plain.points()[0].resolved()["train"]  # format 4's, unchanged


def test_trials_teach_as_their_mean_and_best_is_the_best_untested_trial(stored):
    spec = student(stored, '{ study = "split", trials = [0, 1] }')
    assert spec.train.teacher.trials == (0, 1) and spec.train.teacher.origin == "split trials 0, 1"
    best = student(stored, '{ study = "split-select", trial = "best" }')
    assert best.train.teacher.trials[0] in (0, 1)


def test_best_among_tested_trials_is_refused(stored):
    refused(stored, '"best" of split would be chosen among trials that were tested',
            teacher='{ study = "split", trial = "best" }')


@pytest.mark.parametrize("teacher, message", [
    ('{ study = "nowhere", trial = 0 }', "no study 'nowhere' in sqlite:///"),
    ('{ study = "split", trial = 7 }', "split has no trial 7"),
    ('{ study = "split" }', "give one of trial, trials or file"),
    ('{ study = "split", trial = 0, file = "x.pt" }', "give one of trial, trials or file, not trial and file"),
    ('{ trial = 0 }', "[train].teacher.study: missing"),
    ('{ study = "split", trial = "worst" }', '"worst" is not a trial number nor "best"'),
    ('{ file = "missing.pt" }', "missing.pt: no such file beside the spec"),
    ('{ study = "split", tria = 0 }', 'did you mean "trial"'),
    ('"split"', "must be a table"),
])
def test_a_teacher_that_is_not_there_is_one_line(stored, teacher, message):
    refused(stored, message, teacher=teacher)


def test_a_teacher_refit_on_every_training_image_is_refused_for_a_student_that_selects_on_validation(stored):
    refused(stored, "refit trial 0 was trained on every training image: it saw images of the validation split",
            teacher='{ study = "refit", trial = 0 }')


def test_a_teacher_of_another_split_is_refused(stored):
    refused(stored, "held out another split (val_fraction 0.2, val_seed 0, train_limit 300)",
            teacher='{ study = "split", trial = 0 }', data="val_fraction = 0.2\nval_seed = 1")


def test_a_refit_teacher_may_teach_a_student_scored_on_test_only(stored):
    spec = student(stored, '{ study = "refit", trial = 0 }', data="")
    assert spec.train.teacher.origin == "refit trial 0"


def test_a_teacher_of_other_images_is_refused(stored):
    refused(stored, "split trial 0 trained on mnist, this study reads fashion_mnist",
            teacher='{ study = "split", trial = 0 }', data='dataset = "fashion_mnist"\nval_fraction = 0.2')


def test_a_share_needs_a_teacher_and_a_teacher_needs_a_share(stored):
    path = stored / "student.toml"
    path.write_text(STUDENT.format(teacher="X", data="", train="", grid="distill_weight = [0.0, 0.5]")
                    .replace("teacher = X\n", ""))
    with pytest.raises(SpecError, match=r"\[grid\].distill_weight: 0.5 needs a teacher"):
        load_spec(path)
    refused(stored, "distill_weight is 0 everywhere: it would teach nothing", teacher='{ study = "split", trial = 0 }',
            train="")


def test_a_temperature_varied_where_nothing_is_taught_is_refused(stored):
    refused(stored, "varies where distill_weight is 0", teacher='{ study = "split", trial = 0 }', train="",
            grid="distill_weight = [0.0, 0.9]\ndistill_temperature = [2.0, 4.0]")


def test_a_file_teacher_is_named_by_its_sha256(stored, tmp_path):
    from runner.export import export_model
    from runner.store import Store

    store = Store(f"sqlite:///{stored}/db.sqlite")
    try:
        export_model(store, "split", 0, tmp_path / "teacher.pt")
    finally:
        store.dispose()
    shutil.copy(tmp_path / "teacher.pt", stored / "teacher.pt")
    spec = student(stored, '{ file = "teacher.pt" }')
    by_study = student(stored, '{ study = "split", trial = 0 }')
    assert spec.train.teacher.sha256 == by_study.train.teacher.sha256  # the same weights: one configuration
    assert spec.points()[0].config_hash == by_study.points()[0].config_hash


def test_a_file_teacher_is_checked_for_a_leak_through_the_trial_it_holds(stored, tmp_path):
    from runner.export import export_model
    from runner.store import Store

    store = Store(f"sqlite:///{stored}/db.sqlite")
    try:
        export_model(store, "refit", 0, stored / "refit.pt")  # trained on every training image
    finally:
        store.dispose()
    refused(stored, "refit.pt (refit trial 0) was trained on every training image", teacher='{ file = "refit.pt" }')
    assert student(stored, '{ file = "refit.pt" }', data="").train.teacher.origin == "refit.pt"  # test only: allowed


def test_a_file_whose_trial_no_storage_holds_teaches_a_student_scored_on_test_only(stored):
    from runner.export import export_model
    from runner.store import Store

    store = Store(f"sqlite:///{stored}/db.sqlite")
    try:
        export_model(store, "split", 0, stored / "elsewhere.pt")
    finally:
        store.dispose()
    path = stored / "student.toml"
    path.write_text(STUDENT.format(teacher='{ file = "elsewhere.pt" }', data="val_fraction = 0.2",
                                   train="distill_weight = 0.9", grid="lr = [0.05]"))
    nowhere = f"sqlite:///{stored}/empty.sqlite"
    with pytest.raises(SpecError, match="is not in the storage, so which images it saw cannot be checked, and this "
                                        "study selects on a validation split"):
        load_spec(path, storage=nowhere)
    path.write_text(STUDENT.format(teacher='{ file = "elsewhere.pt" }', data="", train="distill_weight = 0.9",
                                   grid="lr = [0.05]"))
    assert load_spec(path, storage=nowhere).train.teacher.origin == "elsewhere.pt"


def test_a_teacher_of_the_users_data_with_other_arguments_is_refused(stored):
    from runner.spec.teacher import check_leak
    from runner.spec.check import Checker
    from runner.spec.point import DataSpec
    from runner.record import TrialRecord

    seen = TrialRecord({"config": {"data": {"dataset": "user", "target": "d:load", "args": {"fold": 1},
                                            "source_sha256": "abc"}}})
    mine = DataSpec("user", target="d:load", args=(("fold", 2),), source_sha256="abc")
    with pytest.raises(SpecError, match=r"trained on d:load\(fold=1\), this study reads d:load\(fold=2\)"):
        check_leak(Checker("s.toml"), "t trial 0", seen, mine)

"""Specs that would exhaust the machine are refused in one line, before anything is touched; the memory
estimates are arithmetic (no large allocation here) and are checked against a measurement."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner

import runner.trials.devices as devices
from runner.cli import cli
from runner.spec import load_spec

TYPO = """
[study]
name = "typo"
[data]
train_limit = 300
test_limit = 100
[train]
epochs = 1
[models.big]
layers = [ { fc = 100000000 }, { fc = 10 } ]
[grid]
model = ["big"]
"""

SEARCH = """
[search]
metric = "val_acc"
trials = 2
[search.space]
lr = { low = 0.01, high = 0.1 }
"""


def _refused(result, *parts: str) -> str:
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    [line] = [x for x in result.output.splitlines() if x.startswith("Error:")]
    for part in parts:
        assert part in line, (part, line)
    assert "Traceback" not in result.output
    return line


def _untouched(folder: Path, before: set[str]) -> None:
    assert {p.name for p in folder.iterdir()} == before  # no database, no folder


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("command", [["models"], ["grid"], ["grid", "--dry-run"], ["tune", "--dry-run"], ["tune"]])
def test_a_mistyped_layer_width_is_refused_in_one_line_with_the_figures(here, command):
    text = TYPO
    if command[0] == "tune":  # a search of the same model
        text = TYPO.replace("train_limit = 300", "train_limit = 300\nval_fraction = 0.2") + SEARCH
    (here / "spec.toml").write_text(textwrap.dedent(text))
    line = _refused(CliRunner().invoke(cli, [*command, "spec.toml"]),
                    "[models.big]: 79,500,000,010 parameters would need about 1,031.7 GB to train at batch size 128",
                    "available on this machine", "most of it is layer fc1 (fc, 78,500,000,000 parameters)")
    assert line.count("GB") == 2  # the estimate and what is available
    _untouched(here, {"spec.toml"})


def test_an_input_resized_to_50000_is_refused_the_same_way(here):
    (here / "spec.toml").write_text(TYPO.replace('layers = [ { fc = 100000000 }, { fc = 10 } ]',
                                                 'arch = "lenet5"\ninput = { resize = 50000 }'))
    _refused(CliRunner().invoke(cli, ["grid", "spec.toml"]), "[models.big]: 299,904,021,386 parameters",
             "most of it is layer c1 (conv, ", "of activations at batch 128)")
    _untouched(here, {"spec.toml"})


def test_a_study_name_too_long_for_optuna_is_refused_before_the_storage_and_a_long_one_works(here):
    (here / "long.toml").write_text(TYPO.replace('name = "typo"', f'name = "{"x" * 600}"'))
    line = _refused(CliRunner().invoke(cli, ["grid", "long.toml"]), "[study].name:", "(600 characters)",
                    "at most 505 characters (Optuna stores a study's name in 512")
    assert len(line) < 400
    _untouched(here, {"long.toml"})
    name = "y" * 300  # longer than a file name may be: its folders are named by a hash
    (here / "ok.toml").write_text(TYPO.replace('name = "typo"', f'name = "{name}"').replace(
        "layers = [ { fc = 100000000 }, { fc = 10 } ]", 'arch = "mlp"\nhidden = [16]'))
    for _ in range(2):  # and again, on the study it made
        result = CliRunner().invoke(cli, ["grid", "ok.toml", "-q"])
        assert result.exit_code == 0, result.output
    assert [t.state.name for t in optuna.load_study(study_name=name, storage="sqlite:///db/runner.sqlite")
            .get_trials()] == ["COMPLETE"]
    assert [p.name for p in (here / "db" / "artifacts").iterdir()]  # its weights kept, under a hashed folder


HUGE = """
[study]
name = "huge"
seeds = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
[models.m]
arch = "mlp"
[grid]
lr = [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1]
dropout = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
weight_decay = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
label_smoothing = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
momentum = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
batch_size = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
epochs = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
"""


def test_a_grid_of_10_to_the_8_points_is_counted_not_enumerated_and_refused(here):
    (here / "spec.toml").write_text(HUGE)
    dry = CliRunner().invoke(cli, ["grid", "spec.toml", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "... and 99,999,950 more" in dry.output
    assert ("100,000,000 points: 10,000,000 settings x 10 seeds (lr 10 x dropout 10 x weight_decay 10 x "
            "label_smoothing 10 x momentum 10 x batch_size 10 x epochs 10 x 10 seeds)") in dry.output
    assert "runner grid would refuse it: more than 100,000 points" in dry.output
    _refused(CliRunner().invoke(cli, ["grid", "spec.toml"]), "100,000,000 points (lr 10 x dropout 10",
             "more than the 100,000 runner grid runs at once", "--max-points 100000000")
    _untouched(here, {"spec.toml"})


def test_max_points_sets_the_limit(here, write_spec):
    spec = write_spec(seeds="[0, 1]")  # 4 points
    _refused(CliRunner().invoke(cli, ["grid", str(spec), "--max-points", "3"]), "4 points (batch_norm 2 x 2 seeds)")
    assert CliRunner().invoke(cli, ["grid", str(spec), "--max-points", "4", "-q"]).exit_code == 0


@pytest.mark.parametrize("grid, runs", [
    ('model = ["a", "b"]\n"a.c1.conv" = [4, 6]\ndropout = [0.0, 0.5]', ""),
    ('model = ["a"]\nbatch_norm = [false, true]\nlr = [0.1, 0.2]',
     '[[runs]]\nmodel = "a"\nbatch_norm = true\nlr = 0.1\n[[runs]]\nmodel = "b"\n[[runs]]\nmodel = "b"\n'),
    ("", '[[runs]]\nmodel = "a"\n[[runs]]\nmodel = "b"\ndropout = 0.5\n'),
])
def test_the_count_is_the_number_of_points_enumeration_finds(tmp_path, grid, runs):
    spec = tmp_path / "spec.toml"
    spec.write_text(f"""
[study]
name = "c"
seeds = [0, 1, 2]
[models.a]
layers = [ {{ conv = 6, k = 5, name = "c1" }}, {{ pool = "max" }}, {{ fc = 10 }} ]
[models.b]
arch = "mlp"
{"[grid]" if grid else ""}
{grid}
{runs}""")
    s = load_spec(spec)
    assert s.setting_count() == len(s.settings()) and s.point_count() == len(s.points())


def test_the_shipped_specs_are_counted_as_enumerated():
    for path in sorted(Path(__file__).parents[2].glob("specs/*.toml")):
        s = load_spec(path)
        assert s.point_count() == len(s.points()), path.name


def test_more_workers_than_the_memory_holds_are_refused_with_the_number_that_fits(here, write_spec, monkeypatch):
    spec = write_spec()
    monkeypatch.setattr(devices, "available_bytes", lambda device="cpu": (2 * 2**30, "available on this machine"))
    monkeypatch.setattr(devices, "rss_bytes", lambda: 600 * 2**20)  # this test process's size varies: fix it
    dry = CliRunner().invoke(cli, ["grid", str(spec), "--dry-run", "--workers", "8"])
    line = _refused(dry, "--workers 8: each worker needs about", "for Python and torch", "for its copy of the data",
                    "to train lenet5 at batch 100", "8 need", "more than the 2.0 GB available on this machine",
                    "fits")
    fit = int(line.split("--workers ")[-1].split()[0])
    assert 1 <= fit < 8
    _refused(CliRunner().invoke(cli, ["grid", str(spec), "--workers", "8"]), "--workers 8: each worker needs about")
    ok = CliRunner().invoke(cli, ["grid", str(spec), "--dry-run", "--workers", str(fit)])
    assert ok.exit_code == 0, (line, ok.output)
    assert (f"{fit} workers need " if fit > 1 else "1 worker needs ") in ok.output
    assert not (here / "db").exists()


BROKEN = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        if x.shape[0] > 16:  # the checks pass; training asks for more than the machine has
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:116] DefaultCPUAllocator: can't allocate memory: "
                               "you tried to allocate 313600000000 bytes. Error code 12 (Cannot allocate memory)")
        return self.fc(x.flatten(1))
'''


def test_a_user_module_that_runs_out_of_memory_fails_its_trial_in_one_line_and_leaves_nothing_running(here):
    (here / "net.py").write_text(BROKEN)
    (here / "spec.toml").write_text(TYPO.replace('layers = [ { fc = 100000000 }, { fc = 10 } ]', 'target = "net:Net"'))
    result = CliRunner().invoke(cli, ["grid", "spec.toml", "-q"])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    [trial] = optuna.load_study(study_name="typo", storage="sqlite:///db/runner.sqlite").get_trials()
    assert trial.state.name == "FAIL"
    assert trial.user_attrs["fail_reason"].startswith("out of memory while training: [enforce fail at")
    (here / "net.py").write_text(BROKEN.replace("if x.shape[0] > 16:", "if True:"))
    _refused(CliRunner().invoke(cli, ["grid", "spec.toml"]),
             "a forward pass on 2 images of shape (1, 28, 28) ran out of memory (")


MEASURE = '''
import json, sys
import torch
from runner.spec import load_spec
from runner.data import load_data
from runner.train import train_point, set_threads


def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024


set_threads(1)
spec = load_spec(sys.argv[1])
point = spec.points()[0]
data = load_data(**spec.data.load_args())
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # the peak (VmHWM) starts again from the RSS now
before = status("VmRSS")
train_point(point, data, torch.device("cpu"), lambda m: None)
print(json.dumps({"added": status("VmHWM") - before}))
'''

WIDE = ('[ { conv = 64, k = 5, pad = 2 }, { pool = "max" }, { conv = 128, k = 5 }, { pool = "max" }, '
        '{ fc = 1024 }, { fc = 10 } ]')


@pytest.mark.slow
@pytest.mark.parametrize("model", ['arch = "lenet5"', f"layers = {WIDE}"])
@pytest.mark.parametrize("batch", [128, 512])
def test_the_estimate_is_within_a_factor_of_2_of_what_training_adds_to_the_rss(tmp_path, model, batch):
    from runner.models.memory import footprint

    spec = tmp_path / "spec.toml"
    spec.write_text(f'[study]\nname = "m"\n[data]\ntrain_limit = 2048\ntest_limit = 256\n[train]\nepochs = 1\n'
                    f'batch_size = {batch}\n[models.x]\n{model}\n[grid]\nmodel = ["x"]\n')
    script = tmp_path / "measure.py"
    script.write_text(MEASURE)
    done = subprocess.run([sys.executable, str(script), str(spec)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    measured = json.loads(done.stdout)["added"]
    point = load_spec(spec).points()[0]
    estimate = footprint(point.model_config(), batch, point.train.optimizer, point.train.momentum).total
    assert measured / 2 <= estimate <= measured * 2, (estimate, measured)


def test_user_data_that_would_not_fit_once_converted_is_refused_in_one_line(here, monkeypatch):
    import runner.data.user as user_data

    (here / "d.py").write_text("import numpy as np\n\ndef load():\n    x = np.random.default_rng(0).random((64, 28, 28))\n"
                               "    y = np.arange(64) % 10\n    return x, y, x[:16], y[:16]\n")
    (here / "spec.toml").write_text(TYPO.replace('layers = [ { fc = 100000000 }, { fc = 10 } ]', 'arch = "mlp"')
                                    .replace("train_limit = 300\ntest_limit = 100", 'target = "d:load"'))
    monkeypatch.setattr(user_data, "available_bytes", lambda device="cpu": (50_000, "available on this machine"))
    _refused(CliRunner().invoke(cli, ["grid", "spec.toml"]), "train images (64, 28, 28) (float64) would take about",
             "once converted to uint8, more than the 0 MB available on this machine")
    assert not (here / "db").exists()


def test_float_images_are_converted_in_chunks_to_the_same_pixels():
    import numpy as np

    import runner.data.user as user_data

    x = np.random.default_rng(1).random((user_data.CHUNK_BYTES // (8 * 16) + 5, 4, 4))  # one chunk and a few
    out = user_data._pixels("w", "train", x)
    assert out.dtype == np.uint8 and np.array_equal(out, np.rint(x * 255).astype(np.uint8))


def test_a_refusal_leaves_an_existing_database_byte_identical(here, write_spec):
    import hashlib

    url = f"sqlite:///{here / 'db.sqlite'}"
    assert CliRunner().invoke(cli, ["grid", str(write_spec()), "--storage", url, "-q"]).exit_code == 0
    before = hashlib.sha256((here / "db.sqlite").read_bytes()).hexdigest()
    (here / "typo.toml").write_text(TYPO)
    (here / "huge.toml").write_text(HUGE)
    for spec in ("typo.toml", "huge.toml"):
        _refused(CliRunner().invoke(cli, ["grid", spec, "--storage", url]))
    assert hashlib.sha256((here / "db.sqlite").read_bytes()).hexdigest() == before


def test_workers_placed_on_a_gpu_are_checked_against_its_memory(monkeypatch, write_spec):
    from runner.data import load_data
    from runner.errors import RunnerError

    spec = load_spec(write_spec())
    data = load_data(**spec.data.load_args())
    bound = spec.bind(data.shape, data.classes)
    free = {"cpu": 64 * 2**30, "cuda:0": 3 * 2**30, "cuda:1": 3 * 2**30}
    monkeypatch.setattr(devices, "available_bytes", lambda device="cpu": (free[device], f"free on {device} (faked)"))
    before = (600 * 2**20, free["cpu"])
    lines = devices.check_workers(bound, data, 4, [0, 1, 0, 1], before)  # 2 per GPU: fits in 3 GB
    assert [x.split(":")[0] for x in lines] == ["memory", "memory on GPU 0", "memory on GPU 1"]
    with pytest.raises(RunnerError) as e:  # 6 on one GPU: each ~0.7 GB (context, data, the model)
        devices.check_workers(bound, data, 6, [0] * 6, before)
    assert str(e.value).startswith("--workers 6: 6 workers on GPU 0 need about") and "per GPU fit" in str(e.value)

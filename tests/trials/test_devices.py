"""runner/trials/devices.py: GPUs shared out among local workers, with a faked device count (these run
on a CPU machine), and workers that would not fit in memory refused with the number that fits."""
from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from runner.cli import cli
from runner.errors import RunnerError
from runner.spec import load_spec
from runner.trials import devices
from runner.trials.devices import GPU_ENV, device_provenance, on_gpus, place_workers, worker_device, worker_envs
from runner.trials.pool import run_processes

from tests.helpers import refused as _refused
from tests.helpers import here  # noqa: F401 - fixtures


@pytest.mark.parametrize("workers, gpus, device, count, placed", [
    (4, None, "auto", 4, [0, 1, 2, 3]),
    (8, None, "auto", 4, [0, 1, 2, 3, 0, 1, 2, 3]),  # N > G: two workers on each GPU
    (3, "0,2", "auto", 4, [0, 2, 0]),
    (2, "3", "cuda", 4, [3, 3]),
    (2, None, "auto", 0, [None, None]),  # no GPU: the CPU
    (2, None, "cpu", 4, [None, None]),  # [train].device = "cpu" keeps them there
])
def test_worker_i_gets_gpu_i_mod_g(workers, gpus, device, count, placed):
    assert place_workers(workers, gpus, device, count) == placed


@pytest.mark.parametrize("gpus, device, count, message", [
    ("0,5", "auto", 2, "--gpus 0,5: this machine has 2 visible CUDA devices (0..1)"),
    ("0", "auto", 0, "--gpus 0: this machine has 0 visible CUDA devices"),
    ("0,0", "auto", 2, "--gpus 0,0: each GPU once"),
    ("a,b", "auto", 2, "--gpus a,b: not a list of GPU indices"),
    ("0", "cpu", 2, '--gpus 0 with [train].device = "cpu"'),
    (None, "cuda", 0, '[train].device = "cuda" but no CUDA GPU is available'),
])
def test_a_wrong_gpu_list_is_one_line(gpus, device, count, message):
    with pytest.raises(RunnerError) as e:
        place_workers(2, gpus, device, count)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_each_worker_sees_its_gpu_alone_through_the_parents_own_list(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")  # the parent was given the machine's GPUs 3 and 5
    envs = worker_envs(place_workers(3, None, "auto", 2))
    assert envs == [{"CUDA_VISIBLE_DEVICES": "3", GPU_ENV: "0"}, {"CUDA_VISIBLE_DEVICES": "5", GPU_ENV: "1"},
                    {"CUDA_VISIBLE_DEVICES": "3", GPU_ENV: "0"}]
    assert worker_envs([None]) == [{}]


def _probe(index: int, queue) -> None:
    """A spawned worker that says what it sees."""
    queue.put(("log", f"{index} {os.environ.get('CUDA_VISIBLE_DEVICES', '-')} {os.environ.get(GPU_ENV, '-')}"))
    queue.put(("done", (index, (0, 0))))


def test_spawned_workers_start_with_their_own_gpu_and_the_parent_keeps_its_environment(monkeypatch):
    monkeypatch.setattr(devices, "cuda_count", lambda: 2)  # a faked 2-GPU machine
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    placed = place_workers(3, None, "auto")
    lines: list[str] = []
    run_processes(_probe, [(i,) for i in range(3)], lines.append, lambda n: None, worker_envs(placed))
    assert sorted(lines) == ["0 0 0", "1 1 1", "2 0 0"]
    assert "CUDA_VISIBLE_DEVICES" not in os.environ and GPU_ENV not in os.environ


def test_without_cuda_a_worker_trains_on_the_cpu_and_says_so(monkeypatch):
    monkeypatch.setenv(GPU_ENV, "1")  # placed on a GPU this machine does not have: the CPU, not a crash
    device, index = worker_device("auto")
    assert (device.type, index) == ("cpu", None)
    assert device_provenance(device, index) == {"device": "cpu"}


def test_the_start_line_says_which_gpus():
    assert on_gpus([None, None]) == ""
    assert on_gpus([0]) == " on GPU 0"
    assert on_gpus([0, 0]) == " on GPU 0 (2 workers)"
    assert on_gpus([0, 1, 0, 1]) == " on GPUs 0, 1 (2 workers each)"


@pytest.mark.cuda
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU")
def test_on_cuda_each_trial_stores_its_gpus_index_and_name(tmp_path):
    import optuna
    import torch

    from runner.spec import load_spec
    from runner.trials.grid import run_grid
    from runner.trials.settings import RunSettings

    spec = tmp_path / "spec.toml"
    spec.write_text('[study]\nname = "gpu"\nseeds = [0, 1, 2]\n[data]\ntrain_limit = 512\ntest_limit = 256\n'
                    '[train]\nepochs = 1\ndevice = "cuda"\n[models.lenet5]\narch = "lenet5"\n')
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    result = run_grid(load_spec(spec), url, RunSettings(workers=2))
    assert result.ran == 3 and result.failed == 0
    trials = optuna.load_study(study_name="gpu", storage=url).get_trials()
    count = torch.cuda.device_count()
    assert {t.user_attrs["device_index"] for t in trials} == set(range(min(2, count)))
    assert all(t.user_attrs["device"] == "cuda" and t.user_attrs["device_name"] for t in trials)


# ---------------------------------------------------------------- workers that do not fit in memory


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

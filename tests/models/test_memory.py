"""runner/models/memory.py: what training a model will take, known before anything is
allocated: a model that would exhaust the machine is refused in one line, before anything is touched;
the estimates are arithmetic (no large allocation here) and are checked against a measurement."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from runner.cli import cli
from runner.models import build_model
from runner.models.memory import footprint
from runner.models.presets import preset_config
from runner.spec import load_spec

from tests.helpers import TYPO, one_model_spec as spec, refused as _refused, untouched as _untouched
from tests.helpers import here  # noqa: F401 - fixtures

SEARCH = """
[search]
metric = "val_acc"
trials = 2
[search.space]
lr = { low = 0.01, high = 0.1 }
"""


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


# ---------------------------------------------------------------- the estimate's arithmetic


def test_the_memory_estimate_takes_a_batch_of_one_with_batch_norm():
    from runner.models.memory import footprint

    cfg = preset_config("lenet5", batch_norm=True, dropout=0.5)
    assert footprint(cfg, 1).params == sum(p.numel() for p in build_model(cfg).parameters())


def test_the_memory_estimate_counts_the_average_copy():
    s = spec({"ema": [0.0, 0.999]})
    point = s.points()[0]
    cfg = point.model_config()
    plain, averaged = footprint(cfg, 100), footprint(cfg, 100, averaged=True)
    assert averaged.weights_bytes - plain.weights_bytes == 4 * plain.params

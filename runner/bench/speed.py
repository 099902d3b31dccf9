"""Speed and memory of the runner, measured against the floor and against the usual pipeline.

One run, one process, the real data, in this order:
1. the runner's epoch: `run_grid` on a one-point LeNet-5 spec in a temporary storage, with all its
   bookkeeping (trial creation, metrics, database writes, whatever it saves per epoch);
2. a bare loop of the same model and batch over the same in-memory uint8 tensors (the floor);
3. the same spec with `augment = "affine"`, `augment = "elastic"` and `ema = 0.999`, each against the
   runner's epoch without it;
4. grid throughput: 4 points with `workers=1`, then with `workers=2`, each in a fresh storage;
5. the course template's pipeline (runner/bench/course_template.py: PNG files opened with PIL per item,
   Grayscale, ToTensor, Normalize, a DataLoader at batch 64, a plain LeNet-5), as a whole process
   against `runner grid` as a whole process on the same one-epoch spec, then training epoch
   against training epoch in this process;
6. time to 99% test accuracy (evaluation in the clock), the median over seeds, for the runner's
   default recipe and the fastest recipe found among the spec's axes.
Peak RSS is read from getrusage: the spawned workers' after step 4, before step 5 forks any
DataLoader worker. This is a benchmark, not a test: it reports, it never fails on a figure.
"""
from __future__ import annotations

import contextlib
import math
import os
import resource
import statistics
import tempfile
import textwrap
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from runner import record
from runner.bench import course_template
from runner.bench.accuracy import time_to_accuracy
from runner.bench.common import (MEAN, STD, BenchConfig, Log, bench_mlp_spec, bench_spec, lenet5, normalized, sgd, sync, warn_if_busy,
                                 write_json)
from runner.data import MNIST, load_mnist
from runner.errors import RunnerError
from runner.export import export_model
from runner.spec import load_spec
from runner.store import EpochRow, Store
from runner.train import EVAL_BATCH, Batches, EpochSettings, resolve_device, train_one_epoch
from runner.trials.grid import run_grid
from runner.trials.settings import RunSettings
from runner.machine.provenance import machine_info

__all__ = ["BenchConfig", "Measurement", "BenchResult", "BenchError", "MEASUREMENTS", "run_bench",
           "bare_epoch", "write_pngs", "table_rows", "time_course_pipeline", "course_spec",
           "time_runner", "time_grid_throughput", "runner_train_epoch"]


class BenchError(RunnerError):
    """A benchmark that could not measure what it set out to (a timed trial failed)."""


@dataclass(frozen=True)
class Measurement:
    key: str
    label: str
    unit: str  # s | x | trial-epochs/min | MB
    goal: str = ""  # e.g. "<= 1.15"; empty = reported, no goal


BENCH_EMA = 0.999  # the weight average's decay the bench times (its cost does not depend on it)

# Every figure the bench reports, in the order of its table; goals are the issue's.
MEASUREMENTS = (
    Measurement("runner_epoch_s", "runner epoch, train + test, as the runner times it", "s"),
    Measurement("runner_trial_epoch_s", "+ its database writes and checkpoint: trial wall / epochs", "s"),
    Measurement("runner_bookkept_epoch_s", "+ the trial's setup: (run_grid - data load) / epochs", "s"),
    Measurement("runner_trial_setup_s", "trial setup (study, trial, provenance): once per trial", "s"),
    Measurement("bare_epoch_s", "bare loop epoch, channels_last (as train.py)", "s"),
    Measurement("bare_contiguous_epoch_s", "bare loop epoch, contiguous", "s"),
    Measurement("runner_vs_bare", "runner (with bookkeeping) / bare loop", "x", "<= 1.15"),
    Measurement("runner_epoch_vs_bare", "runner epoch alone / bare loop", "x"),
    Measurement("course_process_s", "course template as a process: PNGs, batch 64, 1 epoch + test", "s"),
    Measurement("runner_process_s", "`runner grid` as a process on the same one-epoch, batch-64 spec", "s"),
    Measurement("course_whole_process_ratio", "course template process / runner process", "x"),
    Measurement("course_train_epoch_s", "course template training epoch, in-process (PNG DataLoader)", "s"),
    Measurement("runner_train_epoch_s", "runner training epoch at batch 64, in-process", "s"),
    Measurement("course_epoch_ratio", "course training epoch / runner training epoch", "x"),
    Measurement("time_to_99_s", "time to 99% test accuracy, the runner's default recipe (median)", "s"),
    Measurement("time_to_99_missed", "  seeds of the default recipe that never reached it", "seeds"),
    Measurement("time_to_99_final_acc", "  final test accuracy of the default recipe (mean)", "%"),
    Measurement("time_to_99_fast_s", "time to 99% test accuracy, the fastest recipe found (median)", "s"),
    Measurement("time_to_99_fast_missed", "  seeds of the fastest recipe that never reached it", "seeds"),
    Measurement("time_to_99_fast_final_acc", "  final test accuracy of the fastest recipe (mean)", "%"),
    Measurement("declared_epoch_s", "runner epoch, LeNet-5 declared as a layer list in the spec", "s"),
    Measurement("declared_vs_preset", 'declared LeNet-5 / arch = "lenet5", runner epochs', "x", "<= 1.10"),
    Measurement("affine_epoch_s", 'runner epoch with augment = "affine"', "s"),
    Measurement("affine_vs_none", 'augment "affine" / "none", runner epochs', "x", "<= 1.30"),
    Measurement("elastic_epoch_s", 'runner epoch with augment = "elastic"', "s"),
    Measurement("elastic_vs_none", 'augment "elastic" / "none", runner epochs', "x"),
    Measurement("ema_epoch_s", f"runner epoch with ema = {BENCH_EMA}", "s"),
    Measurement("ema_vs_none", f"ema = {BENCH_EMA} / ema = 0, runner epochs", "x"),
    Measurement("mlp_epoch_s", 'runner epoch, the MLP (arch = "mlp"), untaught', "s"),
    Measurement("distill_epoch_s", "runner epoch, the MLP taught by the LeNet-5 above (its weights file)", "s"),
    Measurement("distill_vs_none", "taught MLP / untaught MLP, runner epochs: the teacher's cost", "x"),
    Measurement("throughput_workers1", "grid throughput, --workers 1", "trial-epochs/min"),
    Measurement("throughput_workers2", "grid throughput, --workers 2", "trial-epochs/min"),
    Measurement("workers2_vs_workers1", "throughput --workers 2 / --workers 1", "x", ">= 1.05"),
    Measurement("worker_peak_rss_mb", "peak RSS of a spawned worker (--workers 2)", "MB", "< 1500"),
    Measurement("process_peak_rss_mb", "peak RSS of this process, which ran the --workers 1 grid", "MB"),
)


@dataclass
class BenchResult:
    config: BenchConfig
    machine: dict[str, Any]
    values: dict[str, float] = field(default_factory=dict)  # Measurement.key -> value
    notes: list[str] = field(default_factory=list)

    def passed(self, m: Measurement) -> bool | None:
        """Whether the value meets its goal (None when it has no goal)."""
        if not m.goal:
            return None
        op, bound = m.goal.split()
        v, b = self.values[m.key], float(bound)
        return {"<=": v <= b, ">=": v >= b, "<": v < b}[op]

    def to_json(self) -> dict[str, Any]:
        """The table as JSON, with the settings and the machine."""
        rows = [{**asdict(m), "value": _finite(self.values[m.key]), "pass": self.passed(m)} for m in MEASUREMENTS]
        c = self.config
        options = "--quick" if c.quick else f"--epochs {c.epochs}" + (f" --png-images {c.png_images}" if c.png_images else "")
        return {"command": f"runner bench {options}",
                "quick": self.config.quick, "config": asdict(self.config), "machine": self.machine,
                "measurements": rows, "notes": self.notes}


def _finite(v: float) -> float | None:
    """A value for JSON: None where there is no finite one (a target never reached)."""
    return v if math.isfinite(v) else None


def table_rows(result: BenchResult) -> tuple[list[str], list[list[str]]]:
    """(column names, rows) of the printed table."""
    rows = []
    for m in MEASUREMENTS:
        ok = result.passed(m)
        v = result.values[m.key]
        if math.isinf(v):
            value = "never reached"
        elif m.unit == "x":
            value = f"{v:.2f}x"
        elif m.unit in ("MB", "seeds"):
            value = f"{v:,.0f} {m.unit}"
        elif m.unit == "%":
            value = f"{v:.2f}%"
        else:
            value = f"{v:.2f} {m.unit}"
        rows.append([m.label, value, m.goal, "" if ok is None else "pass" if ok else "FAIL"])
    return ["measurement", "value", "goal", "result"], rows


# ---------------------------------------------------------------- the whole run


def run_bench(config: BenchConfig, out: str | Path, log: Log = lambda s: None) -> BenchResult:
    """Run every measurement, write the JSON to `out`, return the result."""
    device = resolve_device("auto")
    threads = len(os.sched_getaffinity(0))
    result = BenchResult(config, machine_info(str(device), threads))
    warn_if_busy(threads, log)
    data = load_mnist("", config.train_limit, config.test_limit)
    v = result.values
    with tempfile.TemporaryDirectory(prefix="runner-bench-") as tmp, contextlib.chdir(tmp):
        folder = Path(tmp)  # chdir: anything the runner writes relative to the cwd stays in here
        v.update(_epoch_figures(folder, data, config, device, threads, log, result.notes))
        v.update(_throughput_figures(folder, config, log))
        torch.set_num_threads(threads)
        v.update(time_course_pipeline(folder, data, config, device, log, result.notes))
        v.update(time_to_accuracy(data, config, device, log, result.notes))
    if config.quick:
        result.notes.insert(0, "quick: tiny subsets, the figures are not meaningful")
    result.machine["load_average_end"] = os.getloadavg()
    write_json(result.to_json(), out)
    return result


def _epoch_figures(folder: Path, data: MNIST, config: BenchConfig, device: torch.device, threads: int,
                   log: Log, notes: list[str]) -> dict[str, float]:
    """The runner's epoch (with and without augmentation, with the weight average) against the bare loop's."""
    torch.set_num_threads(threads)
    _warm_up(data, device, config.batch_size)
    log(f"runner: 1 trial x {config.epochs} epochs, {len(data.train):,} images, batch {config.batch_size}")
    none = time_runner(folder, config, "none")
    torch.set_num_threads(threads)  # the runner set its own; the bare loop gets the same
    log("bare loop: channels_last, then contiguous")
    bare = bare_epoch(data, config.batch_size, device, True, config.epochs)
    bare_contiguous = bare_epoch(data, config.batch_size, device, False, config.epochs)
    log("runner: LeNet-5 declared as a layer list")
    declared = time_runner(folder, config, "none", declared=True)
    log('runner: augment = "affine"')
    affine = time_runner(folder, config, "affine")
    log('runner: augment = "elastic"')
    elastic = time_runner(folder, config, "elastic")
    log(f"runner: ema = {BENCH_EMA}")
    ema = time_runner(folder, config, "none", ema=BENCH_EMA)
    log("runner: the MLP, untaught and taught by that LeNet-5")
    mlp, taught = _distill_figures(folder, config)
    notes += [f"runner epochs as it timed them: {none['epochs_s']} s (affine: {affine['epochs_s']} s, "
              f"elastic: {elastic['epochs_s']} s, ema: {ema['epochs_s']} s); "
              f"run_grid took {none['run_grid_s']:.2f} s, of which {none['load_s']:.2f} s loading data",
              f"bare loop: {bare['train_s']:.2f} s train + {bare['test_s']:.2f} s test per epoch "
              f"(test at batch {EVAL_BATCH}, as the runner evaluates)",
              f"{config.epochs} epochs per trial: the trial setup is divided by {config.epochs}; "
              "a 15-epoch trial spreads it over 15"]
    return {"runner_epoch_s": none["epoch_s"], "runner_trial_epoch_s": none["trial_epoch_s"],
            "runner_bookkept_epoch_s": none["bookkept_epoch_s"], "runner_trial_setup_s": none["setup_s"],
            "bare_epoch_s": bare["epoch_s"], "bare_contiguous_epoch_s": bare_contiguous["epoch_s"],
            "runner_vs_bare": none["bookkept_epoch_s"] / bare["epoch_s"],
            "runner_epoch_vs_bare": none["epoch_s"] / bare["epoch_s"],
            "declared_epoch_s": declared["epoch_s"], "declared_vs_preset": declared["epoch_s"] / none["epoch_s"],
            "affine_epoch_s": affine["epoch_s"], "affine_vs_none": affine["epoch_s"] / none["epoch_s"],
            "elastic_epoch_s": elastic["epoch_s"], "elastic_vs_none": elastic["epoch_s"] / none["epoch_s"],
            "ema_epoch_s": ema["epoch_s"], "ema_vs_none": ema["epoch_s"] / none["epoch_s"],
            "mlp_epoch_s": mlp["epoch_s"], "distill_epoch_s": taught["epoch_s"],
            "distill_vs_none": taught["epoch_s"] / mlp["epoch_s"]}


def _distill_figures(folder: Path, config: BenchConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """The MLP's runner epoch without a teacher and taught by the LeNet-5 trial bench-none kept (exported to a
    weights file): what a teacher's forward pass on every batch costs."""
    store = Store(f"sqlite:///{folder / 'bench-none'}.sqlite", create=False)
    try:
        export_model(store, "bench-none", 0, folder / "lenet5.pt")
    finally:
        store.dispose()
    return (time_spec(folder, config, "bench-mlp", bench_mlp_spec("bench-mlp", config)),
            time_spec(folder, config, "bench-taught", bench_mlp_spec("bench-taught", config, "lenet5.pt")))


def _throughput_figures(folder: Path, config: BenchConfig, log: Log) -> dict[str, float]:
    """Grid throughput with 1 and 2 workers, and peak memory of the processes that ran them."""
    out = {}
    for workers in (1, 2):
        log(f"grid: {config.workers_points} points x {config.epochs} epochs, --workers {workers}")
        out[f"throughput_workers{workers}"] = time_grid_throughput(folder, config, workers)
        if workers == 1:  # in this process
            out["process_peak_rss_mb"] = _peak_rss_mb(resource.RUSAGE_SELF)
    out["workers2_vs_workers1"] = out["throughput_workers2"] / out["throughput_workers1"]
    out["worker_peak_rss_mb"] = _peak_rss_mb(resource.RUSAGE_CHILDREN)  # before any DataLoader fork
    return out


def _peak_rss_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # Linux reports KiB


# ---------------------------------------------------------------- the runner


def _run_spec(folder: Path, name: str, text: str, workers: int) -> tuple[Any, str, float]:
    """Write a spec, run it in a fresh storage; (spec, url, wall seconds)."""
    spec_path = folder / f"{name}.toml"
    spec_path.write_text(text)
    spec = load_spec(spec_path)
    url = f"sqlite:///{folder / name}.sqlite"
    start = time.perf_counter()
    result = run_grid(spec, url, RunSettings(workers=workers))
    wall = time.perf_counter() - start
    if result.failed or result.ran != len(spec.points()):
        raise BenchError(f"bench grid {name}: {result.ran} of {len(spec.points())} trials ran, "
                         f"{result.failed} failed")
    return spec, url, wall


def time_runner(folder: Path, config: BenchConfig, augment: str, declared: bool = False,
                ema: float = 0.0) -> dict[str, Any]:
    """Time one in-process trial of `run_grid` of LeNet-5 (see time_spec)."""
    name = f"bench-{augment}{'-declared' if declared else ''}{'-ema' if ema else ''}"
    return time_spec(folder, config, name, bench_spec(name, config, [0], augment, declared, ema))


def time_spec(folder: Path, config: BenchConfig, name: str, text: str) -> dict[str, Any]:
    """Time one in-process trial of `run_grid` of the spec `text`: its epochs as stored, and its whole wall time."""
    import sqlalchemy as sa

    start = time.perf_counter()
    load_mnist("", config.train_limit, config.test_limit)  # what run_grid spends before training
    load_s = time.perf_counter() - start
    _, url, wall = _run_spec(folder, name, text, workers=1)
    store = Store(url, create=False)
    with store.session() as s:
        seconds = list(s.scalars(sa.select(EpochRow.seconds).where(EpochRow.study_name == name)
                                 .order_by(EpochRow.epoch)))
    trial_s = record.of(store.open_study(name, "maximize", create=False).trials[0]).wall_seconds
    store.dispose()
    e = config.epochs
    return {"epoch_s": statistics.mean(seconds), "epochs_s": [round(x, 2) for x in seconds],
            "trial_epoch_s": trial_s / e, "bookkept_epoch_s": (wall - load_s) / e,
            "setup_s": wall - load_s - trial_s, "run_grid_s": wall, "load_s": load_s}


def time_grid_throughput(folder: Path, config: BenchConfig, workers: int) -> float:
    """Trial-epochs per minute of a fresh grid run with `workers` processes (wall of run_grid)."""
    name = f"bench-workers{workers}"
    seeds = list(range(config.workers_points))
    _, _, wall = _run_spec(folder, name, bench_spec(name, config, seeds, "none"), workers)
    return config.workers_points * config.epochs / (wall / 60)


# ---------------------------------------------------------------- the bare loop


def _timed_epoch(model: nn.Module, opt: torch.optim.Optimizer, train_batches: Iterable, test_batches: Iterable,
                 device: torch.device, learn: bool = True) -> tuple[float, float]:
    """(train, test) seconds of one pass: an SGD step per training batch, then test predictions.

    The batches are produced inside the timing, moved to `device` if they are not there yet;
    with `learn=False` they are only produced (what loading them costs).
    """
    start = time.perf_counter()
    model.train()
    for x, y in train_batches:
        if learn:
            loss = F.cross_entropy(model(x.to(device)), y.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    sync(device)
    middle = time.perf_counter()
    model.eval()
    with torch.inference_mode():
        for x, _y in test_batches:
            if learn:
                model(x.to(device)).argmax(1)
    sync(device)
    return middle - start, time.perf_counter() - middle


def bare_epoch(data: MNIST, batch: int, device: torch.device, channels_last: bool,
               epochs: int = 1, seed: int = 0) -> dict[str, float]:
    """Mean seconds per epoch of the simplest loop: index-sliced batches, SGD, then a test pass."""
    torch.manual_seed(seed)
    model, fmt = lenet5(device, channels_last)
    opt = sgd(model)
    x_train, y_train = data.train.images.to(device), data.train.labels.to(device)
    x_test, y_test = data.test.images.to(device), data.test.labels.to(device)

    def train_batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for idx in torch.randperm(len(y_train), device=device).split(batch):
            yield normalized(x_train[idx], fmt), y_train[idx]

    def test_batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for i in range(0, len(y_test), EVAL_BATCH):
            yield normalized(x_test[i:i + EVAL_BATCH], fmt), y_test[i:i + EVAL_BATCH]

    train_s, test_s = [], []
    for _ in range(epochs):
        train, test = _timed_epoch(model, opt, train_batches(), test_batches(), device)
        train_s.append(train)
        test_s.append(test)
    train, test = statistics.mean(train_s), statistics.mean(test_s)
    return {"epoch_s": train + test, "train_s": train, "test_s": test}


def _warm_up(data: MNIST, device: torch.device, batch: int) -> None:
    """A few steps in both memory formats, so that no timed run pays for first calls."""
    small = MNIST(data.train.head(batch * 8), data.test.head(EVAL_BATCH), "warm-up", "", False)
    for channels_last in (True, False):
        bare_epoch(small, batch, device, channels_last)


# ---------------------------------------------------------------- the course template's pipeline


def write_pngs(images: torch.Tensor, labels: torch.Tensor, folder: Path) -> None:
    """Write each image as folder/{index}_{label}.png, as the course's archives hold them."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, (image, label) in enumerate(zip(images.numpy(), labels.tolist())):
        Image.fromarray(image).save(folder / f"{i}_{label}.png")


def time_course_pipeline(folder: Path, data: MNIST, config: BenchConfig, device: torch.device, log: Log,
                         notes: list[str]) -> dict[str, float]:
    """The course template (runner/bench/course_template.py) against the runner: whole processes, then epochs."""
    import subprocess
    import sys

    n = config.png_images or len(data.train)
    log(f"course pipeline: writing {n:,} training and {len(data.test):,} test PNGs (an extracted train.tar)")
    root = folder / "course"
    write_pngs(data.train.images[:n], data.train.labels[:n], root / "train")
    write_pngs(data.test.images, data.test.labels, root / "test")
    log("course pipeline: the template as a process, then `runner grid` as a process")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "runner.bench.course_template", str(root)], check=True, capture_output=True)
    course_process = time.perf_counter() - start
    spec = folder / "one-epoch.toml"
    spec.write_text(course_spec(n, len(data.test)))
    runner_cmd = [sys.executable, "-c", "from runner.cli import main; main()", "grid", str(spec), "-q",
                  "--storage", f"sqlite:///{folder / 'one-epoch.sqlite'}"]
    start = time.perf_counter()
    subprocess.run(runner_cmd, check=True, capture_output=True)
    runner_process = time.perf_counter() - start
    log("course pipeline: training epochs in this process")
    torch.manual_seed(0)
    model = course_template.LeNet5()
    train_loader, _ = course_template.loaders(root)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    start = time.perf_counter()
    course_template.train_epoch(model, train_loader, opt)
    course_epoch = time.perf_counter() - start
    runner_epoch = runner_train_epoch(data.train.head(n), course_template.BATCH, device)
    notes.append(f"course pipeline: {n:,} training PNGs; the runner process reads its uint8 cache of the same "
                 "images, as it always does; both train LeNet-5 at batch 64 for one epoch, then test")
    return {"course_process_s": course_process, "runner_process_s": runner_process,
            "course_whole_process_ratio": course_process / runner_process,
            "course_train_epoch_s": course_epoch, "runner_train_epoch_s": runner_epoch,
            "course_epoch_ratio": course_epoch / runner_epoch}


def course_spec(train_images: int, test_images: int) -> str:
    """The course template's protocol as a one-epoch spec (batch 64, SGD lr 0.01, momentum 0.9)."""
    limit = lambda n, full: 0 if n >= full else n  # noqa: E731
    return textwrap.dedent(f"""\
        [study]
        name = "course-one-epoch"
        [data]
        train_limit = {limit(train_images, 60_000)}
        test_limit = {limit(test_images, 10_000)}
        [train]
        epochs = 1
        batch_size = 64
        lr = 0.01
        momentum = 0.9
        [models.lenet5]
        arch = "lenet5"
        [grid]
        model = ["lenet5"]
        """)


def runner_train_epoch(split: Any, batch: int, device: torch.device) -> float:
    """Seconds of one training epoch through train.py's own loop (channels_last LeNet-5, SGD)."""
    torch.manual_seed(0)
    model, _ = lenet5(device, channels_last=True)
    batches = Batches(split, device, MEAN, STD, channels_last=True)
    g = torch.Generator(device=device).manual_seed(0)
    n = len(batches)
    steps = n // batch + (1 if n % batch > 1 else 0)
    start = time.perf_counter()
    train_one_epoch(model, batches, sgd(model), None, g, EpochSettings(batch, steps))
    sync(device)
    return time.perf_counter() - start

"""`runner bench`, `runner bench floor`, `runner bench profile`: the benchmarks' commands."""
from __future__ import annotations

import click

from runner.cli.base import cli, user_errors
from runner.text import text_table

__all__ = ["bench", "floor", "profile"]


@cli.group(invoke_without_command=True)
@click.option("--out", metavar="FILE", type=click.Path(dir_okay=False), default="reports/bench/bench.json",
              show_default=True, help="Where to write the table as JSON.")
@click.option("--epochs", type=click.IntRange(1), default=2, show_default=True,
              help="Epochs of each timed trial and bare-loop run.")
@click.option("--png-images", type=click.IntRange(0), default=0, show_default=True,
              help="Training PNGs of the course template's pipeline (0 = all 60,000, as students have them).")
@click.option("--quick", is_flag=True, help="Tiny subsets, one epoch: checks that the bench runs (marked quick).")
@click.pass_context
@user_errors
def bench(ctx: click.Context, out: str, epochs: int, png_images: int, quick: bool) -> None:
    """Time the runner against a bare loop, the course template's pipeline, and the clock to 99%.

    On the real data: the runner's LeNet-5 epoch (run_grid, with its database writes) against a bare
    in-memory loop of the same model and batch; a LeNet-5 declared as a layer list against the
    preset; the cost of augment = "affine", of augment = "elastic" and of ema = 0.999; grid
    throughput with 1 and 2 workers; a worker's peak memory. Then the course template's pipeline
    (runner/bench/course_template.py: each PNG opened with PIL, Grayscale, ToTensor, Normalize, a
    DataLoader at batch 64, a plain LeNet-5), as a whole process against `runner grid` as a whole
    process on the same one-epoch spec (start-up included), and training epoch against training
    epoch in one process. Last, time to 99% test accuracy as DAWNBench and MLPerf time training:
    wall seconds until the first epoch whose test accuracy reaches 99%, evaluation included, the
    median over 5 seeds, for the runner's default recipe and the fastest one found. Prints a table
    and writes it as JSON. Takes about five minutes; run it on an otherwise idle machine.

    `runner bench floor` and `runner bench profile` go after the training step itself.

    \b
    Examples:
      runner bench
      runner bench --epochs 3 --out /tmp/bench.json
      runner bench --quick --out /tmp/quick.json
      runner bench floor
      runner bench profile
    """
    if ctx.invoked_subcommand is not None:
        given = [p.opts[0] for p in ctx.command.params
                 if ctx.get_parameter_source(p.name) is not click.core.ParameterSource.DEFAULT]
        if given:
            raise click.UsageError(f"{', '.join(given)} belongs to `runner bench` itself; options of "
                                   f"`runner bench {ctx.invoked_subcommand}` go after it "
                                   f"(see runner bench {ctx.invoked_subcommand} --help)")
        return
    from runner.bench.speed import BenchConfig, run_bench, table_rows

    config = BenchConfig.quick_check() if quick else BenchConfig(epochs=epochs, png_images=png_images)
    result = run_bench(config, out, log=lambda s: click.echo(s, err=True))
    click.echo(text_table(*table_rows(result)))
    click.echo("\n".join(result.notes))
    click.echo(f"wrote {out}")


@bench.command()
@click.option("--out", metavar="FILE", type=click.Path(dir_okay=False), default="reports/bench/floor.json",
              show_default=True, help="Where to write the figures as JSON.")
@click.option("--images", type=click.IntRange(256, 60_000), default=20_000, show_default=True,
              help="Training images each variant is timed on (figures are scaled to 60,000).")
@click.option("--rounds", type=click.IntRange(1), default=5, show_default=True,
              help="Times each variant runs; the fastest round is reported.")
@user_errors
def floor(out: str, images: int, rounds: int) -> None:
    """Time the training step and the evaluation against one change at a time.

    The runner's LeNet-5 step (batch 128, channels_last, all cores, normalization as one
    multiply-subtract) against batch 64/256/512, contiguous memory, one thread, the normalization
    folded into conv1, max pooling before ReLU, and bfloat16 autocast; its evaluation
    (inference_mode, batch 2000) against batch 128, the whole split at once, contiguous memory,
    pooling first, no_grad and autograd on. Each round runs the variants in a new order; the
    fastest round of each is reported, with the median beside it. Seconds per full epoch (60,000
    training, 10,000 test images) and the ratio to the runner's. Batch size changes what is
    learned too: specs/batch_size.toml measures its effect on accuracy.

    \b
    Examples:
      runner bench floor
      runner bench floor --images 60000 --rounds 10 --out /tmp/floor.json
    """
    from runner.bench.floor import run_floor

    result = run_floor(images, rounds, out, log=lambda s: click.echo(s, err=True))
    rows = [[r["part"], r["label"], f"{r['best_s']:.2f} s", f"{r['median_s']:.2f} s", f"{r['vs_runner']:.2f}x"]
            for r in result.rows()]
    click.echo(text_table(["part", "variant", "best", "median", "best / runner"], rows))
    click.echo(f"train: seconds per 60,000 images, timed on {result.images:,}; eval: per 10,000; "
               f"{result.rounds} rounds\nwrote {out}")


@bench.command()
@click.option("--out", metavar="FILE", type=click.Path(dir_okay=False), default="reports/bench/profile.json",
              show_default=True, help="Where to write the profile as JSON.")
@click.option("--images", type=click.IntRange(256, 60_000), default=12_800, show_default=True,
              help="Training images of the profiled epoch (the test split is whole).")
@click.option("--top", type=click.IntRange(1), default=12, show_default=True, help="Operators to list.")
@user_errors
def profile(out: str, images: int, top: int) -> None:
    """Profile one epoch of the runner's training with the PyTorch profiler.

    Runs train_point (LeNet-5, batch 128) once for one epoch on IMAGES training images plus the
    whole test split, without the profiler and then with it, and prints the time of each stage
    of the step (batch, forward, backward, optimizer, metrics, evaluate), of each operator
    family (convolutions, pooling, ...) and of the busiest operators.

    \b
    Examples:
      runner bench profile
      runner bench profile --images 60000 --top 20
    """
    from runner.bench.profile import run_profile

    r = run_profile(images, out, top, log=lambda s: click.echo(s, err=True))
    stages = sum(r.stages.values())
    click.echo(f"one epoch on {r.images:,} training + 10,000 test images, batch {r.batch}: {r.wall_s:.2f} s "
               f"profiled, {r.plain_wall_s:.2f} s without the profiler\n")
    click.echo(text_table(["stage", "seconds", "share"],
                            [[k, f"{v:.3f}", f"{v / stages:.1%}"] for k, v in r.stages.items()]))
    total = sum(r.families.values())
    click.echo("\n" + text_table(["operator family (self time)", "seconds", "share"],
                                    [[k, f"{v:.3f}", f"{v / total:.1%}"] for k, v in r.families.items()]))
    click.echo("\n" + text_table(["operator", "calls", "self seconds", "share"],
                                    [[o["name"], str(o["calls"]), f"{o['self_s']:.3f}", f"{o['self_s'] / total:.1%}"]
                                     for o in r.top_ops]))
    click.echo(f"wrote {out}")

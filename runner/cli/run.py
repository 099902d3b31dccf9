"""`runner grid`, `runner tune`, `runner models`, `runner schema`: what reads a spec and trains or checks it."""
from __future__ import annotations

import contextlib
import signal
import sys
from typing import Any, Iterator

import click

from runner.cli.base import as_typed, cli, run_options, run_settings, storage_option, user_errors
from runner.text import plural, text_table, toml_value

__all__ = ["grid", "tune", "models", "schema", "points_table"]


@cli.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@storage_option
@run_options(workers="Local worker processes; the cores are split between them.",
             dry_run="Print the points and their count, and do every check that needs no training (the data, your "
                     "modules, every model's forward pass); train nothing.",
             stale_after="Take over a running trial whose worker sent no heartbeat for this long (another machine "
                         "died); a dead worker on this machine is noticed at once.",
             own=(click.option("--retry-failed", is_flag=True, help="Run again the points whose trial failed."),
                  click.option("--max-points", type=click.IntRange(1), default=100_000, show_default=True,
                               metavar="N", help="Refuse a grid of more points than this (a mistyped axis can "
                               "multiply it by thousands).")))
@user_errors
def grid(spec_path: str, storage: str | None, dry_run: bool, quiet: bool, **options: Any) -> None:
    """Train every point of SPEC's grid once per seed, as Optuna trials.

    A point already complete in the storage is skipped, so running the same command again
    continues where it stopped, and adding a seed or a grid value runs only the new points.

    With [study].seeds = { first, max, until } the seeds come in rounds: after each round the
    stored trials are tested (a group-sequential rule, so that looking often does not inflate
    false verdicts) and another round runs only while it can still decide something. Every
    worker, machine or Slurm task runs the same rounds; run again, it continues the round it
    stopped in.

    Progress goes to stderr: on a terminal, a bar over the study's trial-epochs (all workers
    together) with elapsed and remaining time, the remaining time estimated from the epochs
    measured so far, and each trial's epochs printed above it; piped or redirected, one plain
    line per epoch.

    \b
    Examples:
      runner grid specs/smoke.toml
      runner grid specs/regularization.toml --dry-run
      runner grid specs/regularization.toml --workers 2
      runner grid specs/regularization.toml --storage sqlite:///elsewhere.sqlite
    """
    from runner.spec import load_spec
    from runner.trials.grid import end_lines, plan_lines, run_grid, stored_lines

    spec, run = load_spec(spec_path, storage=storage), run_settings(options)
    if dry_run:
        from runner.trials.lifecycle import dry_run as checks

        click.echo(points_table(spec))
        most = spec.point_count()
        if spec.study.rounds is not None:
            from runner.rounds import cost_lines, most_points

            click.echo("\n".join(cost_lines(spec)))
            most = most_points(spec).point_count()
        if most > run.max_points:
            click.echo(f"runner grid would refuse it: more than {run.max_points:,} points (--max-points raises the "
                       "limit)")
            return
        lines = checks(spec, run.workers, run.gpus)  # its last line: nothing trained, the storage not touched
        stored = stored_lines(spec, storage, run.retry_failed)
        click.echo("\n".join([*lines[:-1], *stored, *plan_lines(spec, storage), lines[-1]]))
        return
    with stopping_cleanly(quiet, "nothing incomplete was marked complete") as progress:
        if spec.study.rounds is None:
            result = run_grid(spec, storage, run, progress)
        else:
            from runner.rounds import run_rounds

            result, looked = run_rounds(spec, storage, run, progress)
            spec = looked.spec(spec)  # the points of the round it ended in
    # the storage's count, every process's trials: not this process's alone
    click.echo("\n".join(end_lines(spec, storage)))
    for line in result.deaths:
        click.echo(line, err=True)
    if result.failed:
        sys.exit(1)


@contextlib.contextmanager
def stopping_cleanly(quiet: bool, kept: str) -> Iterator[Any]:
    """Progress on stderr while a command trains; SIGTERM stops it as Ctrl-C does, and an interrupt ends in
    one line saying what was `kept` and the command, as typed, that continues (exit 130)."""
    from runner.progress import Progress
    from runner.trials.pool import interrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        with Progress(sys.stderr, quiet=quiet) as progress:
            yield progress
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted: {kept}; run the same command again to continue: "
                   f"{as_typed(click.get_current_context())}", err=True)
        sys.exit(130)
    finally:
        signal.signal(signal.SIGTERM, previous)


def axis_cell(point: Any, axis: str) -> str:
    """A point's value of an axis; "the module's own" for a regularizer its module's constructor does not
    take, "–" for another model's layer field."""
    values = dict(point.axes)
    if axis in values:
        return toml_value(values[axis])
    return "the module's own" if point.model.own(axis) else "–"


SCREENFUL = 50  # points a dry run lists before "... and N more"


def points_table(spec: Any) -> str:
    """The spec's first points as a text table, with their count (computed, not enumerated)."""
    import itertools

    settings = spec.setting_count()
    total = settings * len(spec.study.seeds)
    first = itertools.islice((spec.point(s, seed) for seed in spec.study.seeds for s in spec.iter_settings()),
                             SCREENFUL)
    names = ["#", "model", *spec.axis_names, "seed", "config"]
    rows = [[str(i), p.model.name, *(axis_cell(p, a) for a in spec.axis_names), str(p.seed), p.config_hash]
            for i, p in enumerate(first, 1)]
    more = f"... and {total - len(rows):,} more\n" if total > len(rows) else ""
    seeds = len(spec.study.seeds)
    footer = f"{plural(total, 'point')}: {plural(settings, 'setting')} x {plural(seeds, 'seed')}"
    footer += f" ({spec.grid_factors()})" if spec.grid_factors() != plural(seeds, "seed") else ""
    footer += "".join(f"\n{line}" for line in spec.design_lines())  # a fraction: what it runs, what it aliases
    return text_table(names, rows) + "\n" + more + footer


@cli.command()
@click.argument("spec_path", metavar="EXPLORATION", type=click.Path(dir_okay=False))
@storage_option
@click.option("--out", "-o", metavar="FILE", type=click.Path(dir_okay=False), default=None,
              help="Where to write the confirmatory spec [default: print it].")
@click.option("--name", metavar="NAME", default=None,
              help="The confirmation's [study].name [default: the exploration's without -explore].")
@click.option("--seeds", metavar="FIRST:MAX", default="3:5", show_default=True,
              help="Its seeds in rounds: FIRST in the first round, at most MAX (until the comparisons are decided).")
@user_errors
def confirmation(spec_path: str, storage: str | None, out: str | None, name: str | None, seeds: str) -> None:
    """Write the confirmatory spec that an exploration's stored results choose.

    EXPLORATION is a one-at-a-time spec run across budgets ([grid].across), usually with its test set
    locked. From its stored trials, by the rule its report states ("The budget and strengths this
    exploration chooses"), this writes a spec that compares each regularizer alone with the baseline
    at the chosen budget, the baseline at its own best budget (the tuned baseline), the stack of the
    regularizers that improved on validation and each other model at its own best budget; trained on
    every training image, tested, with seeds in rounds. Run on the same database, it writes the same
    spec: the step from exploring to confirming is one a reader can repeat.

    \b
    Examples:
      runner confirmation specs/regularization_explore.toml -o specs/regularization.toml
      runner grid specs/regularization.toml --dry-run
    """
    from pathlib import Path

    from runner.errors import RunnerError
    from runner.report.build import build_report
    from runner.spec import load_spec
    from runner.report.confirmation import confirmation_spec

    first, _, most = seeds.partition(":")
    if not (first.isdigit() and most.isdigit() and 2 <= int(first) < int(most)):
        raise click.BadParameter(f"{seeds!r} is not FIRST:MAX with 2 <= FIRST < MAX, e.g. 3:5", param_hint="--seeds")
    spec = load_spec(spec_path, missing_code_ok=True, storage=storage)
    choice = build_report(spec, storage).choice
    if choice is None:
        raise RunnerError(f"{spec_path}: nothing to choose from: a confirmation is written from a one-at-a-time "
                          "exploration across two budgets or more ([grid].across) whose baseline and every "
                          "compared setting have a complete trial at each budget")
    command = (f"runner confirmation {spec_path}" + (f" --name {name}" if name else "")
               + (f" --seeds {seeds}" if seeds != "3:5" else ""))
    text = confirmation_spec(spec, choice, command, name, {"first": int(first), "max": int(most), "until": "effects"})
    if out is None:
        click.echo(text, nl=False)
        return
    Path(out).write_text(text, encoding="utf-8")
    click.echo(f"wrote {out}: {load_spec(out, storage=storage).point_count()} points in the first round "
               f"({load_spec(out, storage=storage).grid_factors()})")


@cli.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--diagram", metavar="DIR", type=click.Path(file_okay=False), default=None,
              help="Also draw one PNG per table into DIR: the layers in order with shapes and counts.")
@user_errors
def models(spec_path: str, diagram: str | None) -> None:
    """Every model of SPEC, layer by layer: output shape (C, H, W), formula of the count, count.

    Every model in the spec is shown (a preset, a declared layer list or your own module), and
    each variant of it that the grid or the runs make with a different count (batch_norm adds a
    scale and a shift per channel; a varied layer field changes the layers). Shapes come from a
    forward pass on two images of the data's shape, so a layer that does not fit fails here as it
    would in a grid. A model with `target` is imported and run, and so is a [data] target (to
    learn the images' shape): this runs your code.

    \b
    Examples:
      runner models specs/regularization.toml
      runner models specs/course.toml --diagram reports/course
    """
    from pathlib import Path

    from runner.models.counts import COLUMNS
    from runner.spec import dataset_shape, load_spec
    from runner.spec.tables import check_models, parameter_tables

    spec = load_spec(spec_path)
    if dataset_shape(spec.data) is None:  # the user's data: its shape is known once it is loaded
        from runner.data import load_data

        data = load_data(**spec.data.load_args())
        spec = spec.bind(data.shape, data.classes)
    check_models(spec)
    tables = parameter_tables(spec)
    for t in tables:
        unused = f"{t.unused_line()}\n" if t.unused_line() else ""
        click.echo(f"{t.title}\n{text_table(COLUMNS, t.cells())}\n{unused}total: {t.total:,} parameters\n")
    if diagram:
        from runner.models.diagram import diagram_file, diagram_png

        folder = Path(diagram)
        folder.mkdir(parents=True, exist_ok=True)
        shape, _ = dataset_shape(spec.data)  # type: ignore[misc]
        for t in tables:
            path = folder / diagram_file(t)
            path.write_bytes(diagram_png(t, shape))
            click.echo(f"wrote {path}")


@cli.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@storage_option
@run_options(workers="Local worker processes sharing the search; the cores are split between them.",
             dry_run="Do every check that needs no training (the data, your modules, each model's forward pass); "
                     "search nothing.",
             stale_after="Take over a trial whose worker sent no heartbeat for this long.",
             own=(click.option("--no-confirm", is_flag=True,
                               help="Search only: no selection over seeds, nothing trained on test."),),
             dry_run_after_own=True)
@user_errors
def tune(spec_path: str, storage: str | None, dry_run: bool, quiet: bool, no_confirm: bool, **options: Any) -> None:
    """Search SPEC's [search.space] with Optuna on the validation split, then confirm on test.

    The search is the Optuna study <name>-search: each trial trains on the training images
    without the validation split ([data].val_fraction), reports the validation metric after each
    epoch (the pruner may stop it), and never sees the test split. [search].trials counts finished
    trials (complete or pruned) over every worker and machine on the storage; a failed or killed
    trial does not use up the budget; [search].enqueue and [search].start_from give its first
    trials. Then the [search].top configurations by validation metric are trained again with every
    seed of [study].seeds on the same split (the grid study <name>-select, never tested); the best
    mean validation metric wins, and only it is trained with every seed on all the training images
    ([search].refit = true; false keeps the validation split out) and tested, as the ordinary grid
    study <name>: `runner report SPEC` and `runner trials --study NAME` read it. Running the same
    command again continues the search, or only confirms what is missing.

    \b
    Examples:
      runner tune specs/tune_mlp.toml --workers 2
      runner tune specs/tune_lenet.toml --no-confirm
      runner report specs/tune_mlp.toml
    """
    from runner.spec import load_spec
    from runner.trials.tune import run_tune, search_name

    spec, run = load_spec(spec_path, storage=storage), run_settings(options)
    if dry_run:
        from runner.trials.lifecycle import dry_run as checks

        if spec.search is None:
            raise click.ClickException(f"{spec_path}: no [search] section: `runner tune` needs one")
        click.echo(f"{search_name(spec)}: {spec.search.trials} trials over {len(spec.search.space)} searched axes "
                   f"({', '.join(d.axis for d in spec.search.space)}); then the top {spec.search.top} trained again "
                   f"with seeds {', '.join(map(str, spec.study.seeds))} on the validation split, and the best mean "
                   f"{'refit on train + validation and ' if spec.search.refit else ''}tested")
        click.echo("\n".join(checks(spec, run.workers, run.gpus)))
        return
    with stopping_cleanly(quiet, "the trial in progress was marked failed and its budget slot given back") as progress:
        result = run_tune(spec, storage, run, not no_confirm, progress)
    click.echo(f"{search_name(spec)}: {result.finished} of {result.trials} trials finished"
               + (f", {result.failed} failed" if result.failed else "")
               + (f", {result.refused} refused (over the cap)" if result.refused else ""))
    if result.confirm is not None:
        c = result.confirm
        click.echo(f"{spec.study.name}: {c.done_before + c.ran} of {c.total} confirmation trials complete")
    stages = [s for s in (result.select, result.confirm) if s is not None]
    deaths = [*result.deaths, *(line for s in stages for line in s.deaths)]
    for line in deaths:
        click.echo(line, err=True)
    if deaths:
        sys.exit(1)


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["json", "markdown"]), default="json", show_default=True,
              help="json: the JSON Schema of a spec; markdown: the tables of every key, as docs/spec.md has them.")
def schema(fmt: str) -> None:
    """Print the spec's grammar: every section, key, type, bound and default.

    The JSON Schema is what editors read to complete and check a spec as you type: Even Better
    TOML (taplo) reads it from a spec's first line, `#:schema ./runner.schema.json`; the shipped
    specs begin so, and specs/runner.schema.json is this command's output. The same definitions
    make `runner grid`'s error messages, so the schema and the checks never disagree.

    \b
    Examples:
      runner schema > my_specs/runner.schema.json
      runner schema --format markdown
    """
    from runner.schema import key_tables, schema_text

    click.echo(schema_text() if fmt == "json" else key_tables(), nl=False)

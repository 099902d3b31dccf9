"""The `runner` command line: each command parses, calls one library function, prints."""
from __future__ import annotations

import functools
import shlex
import signal
import sys
import warnings
from typing import Any, Callable

import click

from runner.errors import RunnerError
from runner.store import DEFAULT_STORAGE
from runner.text import plural, text_table

__all__ = ["cli", "main"]


def artifacts_option(f: Callable) -> Callable:
    """--artifacts, where the trials' weights go (grid and tune)."""
    return click.option("--artifacts", metavar="DIR", type=click.Path(file_okay=False), default=None,
                        help="Folder of the trials' weights (Optuna artifacts) [default: artifacts/ beside the "
                             "SQLite file; for a server storage give every worker the same shared folder]")(f)


def storage_option(f: Callable) -> Callable:
    """--storage, shared by every command that reads or writes results."""
    return click.option("--storage", metavar="URL", default=None,
                        help="The results database: a SQLAlchemy URL, or a SQLite file path (db/runner.sqlite) "
                             f"[default: {DEFAULT_STORAGE}]")(f)


def user_errors(f: Callable) -> Callable:
    """Turn RunnerErrors and warnings into one line each, without a traceback."""
    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
            click.echo(f"warning: {message}", err=True)
        old = warnings.showwarning
        warnings.showwarning = show
        try:
            return f(*args, **kwargs)
        except RunnerError as e:
            raise click.ClickException(str(e)) from None
        finally:
            warnings.showwarning = old
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="runner")
def cli() -> None:
    """Declarative ablation grids for PyTorch image classifiers, stored as Optuna studies.

    A TOML spec names the data (the MNIST family, or your own arrays), the models (presets,
    layer lists, or your own nn.Module) and the grid; results go to SQLite or PostgreSQL.

    \b
    runner grid specs/smoke.toml            train every point of a spec (skips what is done)
    runner tune specs/tune_mlp.toml         search on a validation split, confirm the best on test
    runner models specs/course.toml         every layer: output shape, formula, count (--diagram DIR)
    runner schema                           the spec grammar as JSON Schema, for editors
    runner report specs/regularization.toml the study's answer: Markdown, figures, summary.json
    runner studies                          every study in the storage
    runner trials --study regularization    its trials: --where, --sort, --group-by, --format
    runner show --study regularization 17   one trial: config, provenance, epochs
    runner export --study regularization --best --out lenet5.pt   a trial's model, on its own
    runner predict --study regularization --best my_digit.png    a trial's model on your images
    runner bench                            speed: bare loop, the course's pipeline, time to 99%
    runner bench floor | profile            what makes the step faster; where its time goes
    """


@cli.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@storage_option
@click.option("--dry-run", is_flag=True, help="Print the points and their count, and do every check that needs no "
                                            "training (the data, your modules, every model's forward pass); train "
                                            "nothing.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Local worker processes; the cores are split between them.")
@click.option("--retry-failed", is_flag=True, help="Run again the points whose trial failed.")
@click.option("--stale-after", type=click.FloatRange(0), default=300, show_default=True, metavar="SECONDS",
              help="Take over a running trial whose worker sent no heartbeat for this long (another "
                   "machine died); a dead worker on this machine is noticed at once.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or lines; only the final summary.")
@artifacts_option
@user_errors
def grid(spec_path: str, storage: str | None, dry_run: bool, workers: int, retry_failed: bool,
         stale_after: float, quiet: bool, artifacts: str | None) -> None:
    """Train every point of SPEC's grid once per seed, as Optuna trials.

    A point already complete in the storage is skipped, so running the same command again
    continues where it stopped, and adding a seed or a grid value runs only the new points.

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
    from runner.trials.grid import run_grid
    from runner.trials.pool import interrupt
    from runner.spec import load_spec

    spec = load_spec(spec_path)
    if dry_run:
        from runner.trials.lifecycle import dry_run as checks

        click.echo(points_table(spec))
        click.echo("\n".join(checks(spec)))
        return
    from runner.progress import Progress

    signal.signal(signal.SIGTERM, interrupt)  # SIGTERM stops as cleanly as Ctrl-C
    try:
        with Progress(sys.stderr, quiet=quiet) as progress:
            result = run_grid(spec, storage, workers=workers, retry_failed=retry_failed,
                              stale_after=stale_after, progress=progress, artifacts=artifacts)
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted: nothing incomplete was marked complete; run the same command "
                   f"again to continue: {as_typed(click.get_current_context())}", err=True)
        sys.exit(130)
    complete = result.done_before + result.ran
    failed = f", {result.failed} failed (see `runner trials`; --retry-failed runs them again)" if result.failed else ""
    click.echo(f"{spec.study.name}: {complete} of {result.total} trials complete{failed}")
    if result.failed:
        sys.exit(1)


def as_typed(ctx: click.Context) -> str:
    """The command as the user typed it: its arguments, then every option given on the command line."""
    words, options = ["runner", ctx.info_name or ""], []
    for p in ctx.command.params:
        if ctx.get_parameter_source(p.name) is not click.core.ParameterSource.COMMANDLINE:
            continue
        value = ctx.params[p.name]
        if isinstance(p, click.Argument):
            words += [str(v) for v in (value if isinstance(value, tuple) else (value,))]
        elif p.is_flag:
            options.append(p.opts[-1] if value else (p.secondary_opts or p.opts)[-1])
        else:
            options += [p.opts[-1], str(value)]
    return " ".join(shlex.quote(w) for w in [*words, *options])


def points_table(spec: Any) -> str:
    """The spec's points as a text table, with their count."""
    points = spec.points()
    names = ["#", "model", *spec.axis_names, "seed", "config"]
    rows = [[str(i), p.model.name, *(_cell(v) for _, v in p.axes), str(p.seed), p.config_hash]
            for i, p in enumerate(points, 1)]
    settings = len(spec.settings())
    footer = f"{len(points)} points: {settings} settings x {len(spec.study.seeds)} seeds"
    return text_table(names, rows) + "\n" + footer


def _cell(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    return str(v)


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
        click.echo(f"{t.title}\n{text_table(COLUMNS, t.cells())}\ntotal: {t.total:,} parameters\n")
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
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Local worker processes sharing the search; the cores are split between them.")
@click.option("--no-confirm", is_flag=True, help="Search only: do not train the top configurations on test.")
@click.option("--dry-run", is_flag=True, help="Do every check that needs no training (the data, your modules, "
                                            "each model's forward pass); search nothing.")
@click.option("--stale-after", type=click.FloatRange(0), default=300, show_default=True, metavar="SECONDS",
              help="Take over a trial whose worker sent no heartbeat for this long.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or lines; only the final summary.")
@artifacts_option
@user_errors
def tune(spec_path: str, storage: str | None, workers: int, no_confirm: bool, dry_run: bool, stale_after: float,
         quiet: bool, artifacts: str | None) -> None:
    """Search SPEC's [search.space] with Optuna on the validation split, then confirm on test.

    The search is the Optuna study <name>-search: each trial trains on the training images
    without the validation split ([data].val_fraction), reports the validation metric after each
    epoch (the pruner may stop it), and never sees the test split. [search].trials counts finished
    trials (complete or pruned) over every worker and machine on the storage; a failed or killed
    trial does not use up the budget. Then the [search].top configurations by validation metric
    are trained with every seed of [study].seeds and evaluated on test, as the ordinary grid
    study <name>: `runner report SPEC` and `runner trials --study NAME` read it. Running the same
    command again continues the search, or only confirms what is missing.

    \b
    Examples:
      runner tune specs/tune_mlp.toml --workers 2
      runner tune specs/tune_lenet.toml --no-confirm
      runner report specs/tune_mlp.toml
    """
    from runner.progress import Progress
    from runner.spec import load_spec
    from runner.trials.pool import interrupt
    from runner.trials.tune import run_tune, search_name

    spec = load_spec(spec_path)
    if dry_run:
        from runner.trials.lifecycle import dry_run as checks

        if spec.search is None:
            raise click.ClickException(f"{spec_path}: no [search] section: `runner tune` needs one")
        click.echo(f"{search_name(spec)}: {spec.search.trials} trials over {len(spec.search.space)} searched axes "
                   f"({', '.join(d.axis for d in spec.search.space)}), then the top {spec.search.top} on test")
        click.echo("\n".join(checks(spec)))
        return
    signal.signal(signal.SIGTERM, interrupt)
    try:
        with Progress(sys.stderr, quiet=quiet) as progress:
            result = run_tune(spec, storage, workers, not no_confirm, progress, stale_after, artifacts)
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted: the trial in progress was marked failed and its budget slot given back; "
                   f"run the same command again to continue: {as_typed(click.get_current_context())}", err=True)
        sys.exit(130)
    click.echo(f"{search_name(spec)}: {result.finished} of {result.trials} trials finished"
               + (f", {result.failed} failed" if result.failed else ""))
    if result.confirm is not None:
        c = result.confirm
        click.echo(f"{spec.study.name}: {c.done_before + c.ran} of {c.total} confirmation trials complete")


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["json", "markdown"]), default="json", show_default=True,
              help="json: the JSON Schema of a spec; markdown: the tables of every key, as the README has them.")
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


@cli.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@storage_option
@click.option("--out", metavar="DIR", type=click.Path(file_okay=False), default=None,
              help="Folder of the report [default: reports/<study name>/]")
@click.option("--readme", metavar="FILE", type=click.Path(dir_okay=False), default=None,
              help="Also refresh the results between this README's <!-- runner:report:start --> "
                   "and <!-- runner:report:end --> lines.")
@user_errors
def report(spec_path: str, storage: str | None, out: str | None, readme: str | None) -> None:
    """Write SPEC's study as a Markdown report, with figures and summary.json.

    The report holds the setup, parameter counts, learning curves, a comparison of every
    configuration, LeNet-5 against LeCun et al. 1998, and whether each regularizer helps.
    It reads only the stored trials (it never trains): failed and running trials are listed and
    left out of the statistics. The same trials give byte-identical files. Every input is checked
    before any file is written.

    \b
    Examples:
      runner report specs/regularization.toml                    # writes reports/regularization/
      runner report specs/regularization.toml --readme README.md # also refreshes the README
      runner report specs/smoke.toml --storage sqlite:///elsewhere.sqlite --out /tmp/smoke
    """
    from runner.report import make_report
    from runner.spec import load_spec

    result, written = make_report(load_spec(spec_path, missing_code_ok=True), storage, out, readme)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    trials = sum(len(c.seeds) for c in result.configs)
    left_out = f"; {plural(len(result.excluded), 'trial')} left out (see the report)" if result.excluded else ""
    click.echo(f"{result.study}: {plural(trials, 'trial')} in {plural(len(result.configs), 'configuration')}"
               f"{left_out}")
    for path in written:
        click.echo(f"wrote {path}")


def _reader(storage: str | None) -> Any:
    from runner.store import Store
    return Store(storage, create=False)


def format_option(f: Callable) -> Callable:
    """--format, shared by the query commands."""
    return click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "markdown"]),
                        default="table", show_default=True, help="Output format.")(f)


@cli.command()
@storage_option
@format_option
@user_errors
def studies(storage: str | None, fmt: str) -> None:
    """Every study in the storage: its trials by state and its best value.

    \b
    Example:
      runner studies
      runner studies --storage sqlite:///db/other.sqlite --format json
    """
    from runner.query import render, study_rows

    rows = study_rows(_reader(storage))
    columns = ["study", "direction", "trials", "complete", "running", "fail", "best_value"]
    click.echo(render(rows, columns, fmt) if rows else "no studies in this storage")


@cli.command()
@click.option("--study", "study_name", required=True, help="The study's name ([study].name of its spec).")
@storage_option
@click.option("--where", metavar="FILTER", help='e.g. "model = lenet5 and dropout > 0 and augment = affine"')
@click.option("--sort", metavar="KEY", help="Sort by KEY ascending, -KEY descending (e.g. -test_acc).")
@click.option("--limit", type=click.IntRange(0), help="Show at most N trials (after sorting).")
@click.option("--columns", metavar="A,B,C", help="Columns to show, comma-separated.")
@click.option("--group-by", metavar="A,B", help="Group complete trials by these keys: mean ± std and n over seeds.")
@format_option
@user_errors
def trials(study_name: str, storage: str | None, where: str | None, sort: str | None, limit: int | None,
           columns: str | None, group_by: str | None, fmt: str) -> None:
    """A table of a study's trials: number, state, model, axes, seed, final metrics, seconds.

    Accuracies are in percent, of the last stored epoch; best_test_acc is the best epoch's;
    seconds is the training time summed over epochs. A filter is KEY OP VALUE clauses joined
    by "and" / "or"; KEY is model, seed, state, number, an axis or a metric; OP is one of
    = != < <= > >=. Reading never writes to the storage.

    \b
    Examples:
      runner trials --study regularization
      runner trials --study regularization --where "model = lenet5 and dropout > 0 and augment = affine" --sort -test_acc --limit 5
      runner trials --study regularization --where "state != complete"
      runner trials --study regularization --group-by batch_norm,augment
      runner trials --study regularization --format csv > trials.csv
    """
    from runner.query import QueryError, group, render, select, trial_records

    records, axes = trial_records(_reader(storage), study_name)
    rows = select(records, axes, where, sort if not group_by else None, None if group_by else limit)
    if group_by:
        by = [k.strip() for k in group_by.split(",") if k.strip()]
        rows = group(rows, axes, by)
        if sort:
            key = sort.lstrip("-")
            rows = select([{**r, key: r.get(f"{key}_mean", r.get(key))} for r in rows], axes + ["n"], None, sort)
        rows = rows[:limit] if limit is not None else rows
        default = [*by, "n", *_shown_metrics(records)]
    else:
        varied = [a for a in axes if len({r[a] for r in records}) > 1]
        default = ["number", "state", "model", *varied, "seed", "epochs", *_shown_metrics(records)]
        default += ["fail_reason"] if any(r["fail_reason"] for r in rows) else []
    if columns:
        shown = [c.strip() for c in columns.split(",")]
    elif fmt in ("json", "csv") and rows:  # for machines: every field
        shown = [k.removesuffix("_mean") for k in rows[0] if not k.endswith("_std")]
    else:
        shown = default
    known = set(default) | set(records[0] if records else ()) | {"n"}
    unknown = [c for c in shown if c not in known]
    if unknown:
        raise QueryError(f"--columns: unknown column {unknown[0]!r}; columns: {', '.join(sorted(known))}")
    click.echo(render(rows, shown, fmt, grouped=bool(group_by)) if rows else "no trials match")


def _shown_metrics(records: list[dict[str, Any]]) -> list[str]:
    from runner.query import METRICS, VAL_METRICS

    has_val = any(r.get("val_acc") is not None for r in records)
    return [m for m in METRICS if has_val or m not in VAL_METRICS]


@cli.command()
@click.option("--study", "study_name", required=True, help="The study's name.")
@click.argument("number", type=int)
@storage_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@user_errors
def show(study_name: str, number: int, storage: str | None, fmt: str) -> None:
    """One trial NUMBER: its resolved config, provenance and per-epoch metrics.

    \b
    Example:
      runner show --study regularization 17
      runner show --study regularization 17 --format json
    """
    import json

    from runner.query import render, trial_detail

    d = trial_detail(_reader(storage), study_name, number)
    if fmt == "json":
        click.echo(json.dumps(d, indent=2))
        return
    value = "" if d["value"] is None else f", value {d['value']:g}"
    click.echo(f"trial {d['number']} of {d['study']}: {d['state']}{value}")
    click.echo(f"started {d['started']}, completed {d['completed'] or '-'}\n")
    click.echo("params:\n" + "\n".join(f"  {k} = {_cell(v)}" for k, v in d["params"].items()))
    click.echo("\nconfig:\n" + json.dumps(d["config"], indent=2))
    click.echo("\nprovenance:\n" + "\n".join(f"  {k}: {v}" for k, v in sorted(d["provenance"].items())))
    if d["weights"]:
        click.echo(f"\nweights: {d['weights']}" + (f" (runner export --study {study_name} {number} --out FILE)"
                                                    if d["weights"].startswith("kept") else ""))
    columns = ["epoch", "train_loss", "train_acc", *(["val_loss", "val_acc"] if any(e["val_acc"] is not None
                                                                                   for e in d["epochs"]) else []),
               "test_loss", "test_acc", "lr", "seconds"]
    click.echo("\nepochs:\n" + (render(d["epochs"], columns, "table") if d["epochs"] else "  none stored"))


def _trial_choice(number: int | None, best: bool) -> int | None:
    if (number is None) == (not best):
        raise click.UsageError("give a trial NUMBER or --best (the study's best trial by its metric), not both")
    return number


@cli.command(name="export")
@click.option("--study", "study_name", required=True, help="The study's name.")
@click.argument("number", type=int, required=False)
@click.option("--best", is_flag=True, help="The study's best trial by its metric, instead of NUMBER.")
@click.option("--out", metavar="FILE", type=click.Path(dir_okay=False), required=True, help="The file to write.")
@click.option("--format", "fmt", type=click.Choice(["runner", "torchscript"]), default="runner", show_default=True,
              help="runner: weights and what rebuilds the model (runner.load_model); torchscript: torch.jit.load.")
@storage_option
@artifacts_option
@click.option("--module-dir", metavar="DIR", default=".", show_default=True,
              help="For a trial of your own module: the folder that holds its file (checked against its SHA-256).")
@user_errors
def export(study_name: str, number: int | None, best: bool, out: str, fmt: str, storage: str | None,
           artifacts: str | None, module_dir: str) -> None:
    """Write a trial's trained model to one self-contained file.

    The file holds the weights (a state_dict), the model's config, the normalization, the input
    transform and the class count and names: `runner.load_model(FILE)` turns it back into an
    nn.Module in eval mode, without the spec, that takes the dataset's images as uint8
    (N, C, H, W) and returns logits. --format torchscript writes the same model, traced, for
    `torch.jit.load` without runner. The weights are checked against the SHA-256 stored with the
    trial; a trial of your own module needs that module's file, unchanged.

    \b
    Examples:
      runner export --study regularization --best --out lenet5.pt
      runner export --study regularization 17 --out t17.pt --format torchscript
      python -c "import runner; print(runner.load_model('lenet5.pt'))"
    """
    from runner.kept import export_model

    trial, path = export_model(_reader(storage), study_name, _trial_choice(number, best), out, fmt, artifacts,
                               module_dir)
    click.echo(f"wrote {path}: trial {trial.number} of {study_name} ({trial.user_attrs.get('label', '')}, "
               f"seed {trial.params.get('seed')}, {trial.user_attrs.get('param_count', 0):,} parameters)")


@cli.command()
@click.option("--study", "study_name", required=True, help="The study's name.")
@click.argument("args", nargs=-1, required=True, metavar="(NUMBER | --best) INPUT...")
@click.option("--best", is_flag=True, help="The study's best trial by its metric, instead of NUMBER.")
@storage_option
@artifacts_option
@click.option("--module-dir", metavar="DIR", default=".", show_default=True,
              help="For a trial of your own module: the folder that holds its file.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@user_errors
def predict(study_name: str, args: tuple[str, ...], best: bool, storage: str | None, artifacts: str | None,
            module_dir: str, fmt: str) -> None:
    """What a trial's model predicts for your own images.

    INPUT is a PNG or JPEG file, a folder of them, or a .npy array ((H, W), (N, H, W) or
    (N, C, H, W), uint8 or floats in [0, 1]). Each image is prepared as the trial's data was:
    greyscale, the dataset's size (another size is resized, with a note), a light digit on a dark
    background (a light page is inverted, with a note), then the stored normalization and input
    transform. One line per image: the input, the predicted class (with the dataset's class names,
    Fashion-MNIST's "Sneaker") and its probability. An input that cannot be read is one line
    saying so, and the others go on (the exit code is then 1).

    \b
    Examples:
      runner predict --study regularization --best my_digit.png
      runner predict --study regularization 17 digits/ --format csv
      runner predict --study fashion_mnist --best shoes.npy --format json
    """
    import json

    from runner.kept import predict_images, prediction_rows

    if not best:
        if not args or not args[0].isdigit():
            raise click.UsageError("give a trial NUMBER first, or --best (the study's best trial), then INPUT...")
        number, inputs = int(args[0]), list(args[1:])
    else:
        number, inputs = None, list(args)
    if not inputs:
        raise click.UsageError("give at least one INPUT: an image, a folder of images or a .npy array")
    trial, predictions = predict_images(_reader(storage), study_name, number, inputs, artifacts, module_dir)
    rows = prediction_rows(predictions)
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
    elif fmt == "csv":
        from runner.query import render

        click.echo(render(rows, list(rows[0]), "csv"))
    else:
        click.echo(f"trial {trial.number} of {study_name}: {trial.user_attrs.get('label', '')} seed "
                   f"{trial.params.get('seed')}", err=True)
        click.echo(text_table(["input", "class", "probability", "note"],
                              [[r["input"], r["class"] or "-", "-" if r["probability"] is None else
                                f"{r['probability']:.3f}", r["note"]] for r in rows]))
    if any(p.predicted is None for p in predictions):
        sys.exit(1)


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

    On the real data: the runner's LeNet-5 epoch (run_grid, with its database writes) against a
    bare in-memory loop of the same model and batch; a LeNet-5 declared as a layer list against
    the preset; the cost of augment = "affine"; grid throughput with 1 and 2 workers; a worker's
    peak memory. Then the course template's pipeline (runner/bench/course_template.py: each PNG opened
    with PIL, Grayscale, ToTensor, Normalize, a DataLoader at batch 64, a plain LeNet-5), as a
    whole process against `runner grid` as a whole process on the same one-epoch spec (start-up
    included), and training epoch against training epoch in one process. Last, time to 99% test
    accuracy as DAWNBench and MLPerf time training: wall seconds until the first epoch whose test
    accuracy reaches 99%, evaluation included, the median over 5 seeds, for the runner's default
    recipe and the fastest one found. Prints a table and writes it as JSON. Takes about five
    minutes; run it on an otherwise idle machine.

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


def main() -> None:
    """Entry point of the `runner` script."""
    cli()

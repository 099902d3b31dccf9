"""The `runner` command line: each command parses, calls one library function, prints."""
from __future__ import annotations

import functools
import signal
import sys
import warnings
from typing import Any, Callable

import click

from runner.errors import RunnerError
from runner.store import DEFAULT_STORAGE

__all__ = ["cli", "main"]


def storage_option(f: Callable) -> Callable:
    """--storage, shared by every command that reads or writes results."""
    return click.option("--storage", metavar="URL", default=None,
                        help=f"SQLAlchemy URL of the results database [default: {DEFAULT_STORAGE}]")(f)


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
    """Declarative ablation grids for PyTorch on MNIST, stored as Optuna studies.

    \b
    runner grid specs/smoke.toml            train every point of a spec (skips what is done)
    runner models specs/regularization.toml parameter counts, layer by layer
    runner report specs/regularization.toml the study's answer: Markdown, figures, summary.json
    """


@cli.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@storage_option
@click.option("--dry-run", is_flag=True, help="Print the points and their count; train nothing.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Local worker processes; the cores are split between them.")
@click.option("--retry-failed", is_flag=True, help="Run again the points whose trial failed.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines; only the final summary.")
@user_errors
def grid(spec_path: str, storage: str | None, dry_run: bool, workers: int, retry_failed: bool,
         quiet: bool) -> None:
    """Train every point of SPEC's grid once per seed, as Optuna trials.

    A point already complete in the storage is skipped, so running the same command again
    continues where it stopped, and adding a seed or a grid value runs only the new points.

    \b
    Examples:
      runner grid specs/smoke.toml
      runner grid specs/regularization.toml --dry-run
      runner grid specs/regularization.toml --workers 2
      runner grid specs/regularization.toml --storage sqlite:///elsewhere.sqlite
    """
    from runner.grid import interrupt, run_grid
    from runner.spec import load_spec

    spec = load_spec(spec_path)
    if dry_run:
        click.echo(points_table(spec))
        return
    log = (lambda s: None) if quiet else (lambda s: click.echo(s, err=True))
    signal.signal(signal.SIGTERM, interrupt)  # SIGTERM stops as cleanly as Ctrl-C
    try:
        result = run_grid(spec, storage, workers=workers, log=log, retry_failed=retry_failed)
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted: nothing incomplete was marked complete; run the same command "
                   f"again to continue: runner grid {spec_path}", err=True)
        sys.exit(130)
    complete = result.done_before + result.ran
    failed = f", {result.failed} failed (see `runner trials`; --retry-failed runs them again)" if result.failed else ""
    click.echo(f"{spec.study.name}: {complete} of {result.total} trials complete{failed}")
    if result.failed:
        sys.exit(1)


def points_table(spec: Any) -> str:
    """The spec's points as a text table, with their count."""
    points = spec.points()
    names = ["#", "model", *spec.axis_names, "seed", "config"]
    rows = [[str(i), p.model.name, *(_cell(v) for _, v in p.axes), str(p.seed), p.config_hash]
            for i, p in enumerate(points, 1)]
    settings = len(spec.settings())
    footer = f"{len(points)} points: {settings} settings x {len(spec.study.seeds)} seeds"
    return format_table(names, rows) + "\n" + footer


def _cell(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    return str(v)


def format_table(names: list[str], rows: list[list[str]]) -> str:
    """A plain text table with aligned columns."""
    widths = [max(len(n), *(len(r[i]) for r in rows)) if rows else len(n) for i, n in enumerate(names)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(names), line(["-" * w for w in widths]), *(line(r) for r in rows)])


@cli.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@user_errors
def models(spec_path: str) -> None:
    """Parameter counts of SPEC's models, layer by layer, with the formula of each.

    Every model in the spec is shown, and each variant of it that the grid or the runs make
    with a different count (batch_norm adds a scale and a shift per channel).

    \b
    Example:
      runner models specs/regularization.toml
    """
    from runner.counts import parameter_tables
    from runner.spec import load_spec

    for title, names, rows, total in parameter_tables(load_spec(spec_path)):
        click.echo(f"{title}\n{format_table(names, rows)}\ntotal: {total:,} parameters\n")


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
    """Write SPEC's study as a report: setup, parameter counts, learning curves, comparison,
    LeNet-5 against LeCun et al. 1998, and whether each regularizer helps.

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

    result, written = make_report(load_spec(spec_path), storage, out, readme)
    trials = sum(len(c.seeds) for c in result.configs)
    left_out = f"; {len(result.excluded)} trials left out (see the report)" if result.excluded else ""
    click.echo(f"{result.study}: {trials} trials in {len(result.configs)} configurations{left_out}")
    for path in written:
        click.echo(f"wrote {path}")


def main() -> None:
    """Entry point of the `runner` script."""
    cli()

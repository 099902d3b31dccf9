"""The `runner` command line: the group, the options several commands share, and how a library error
becomes one line. Each command parses, calls one library function, prints; the commands live in
run.py (grid, tune, models, schema), results.py (report, studies, trials, show, export, predict) and
bench.py. Commands import the library inside their body, so that `runner --help` and the query
commands start without loading torch."""
from __future__ import annotations

import functools
import shlex
import warnings
from typing import Any, Callable

import click

from runner.dberrors import database_error, kind
from runner.errors import RunnerError
from runner.store import DEFAULT_STORAGE, storage_url

__all__ = ["cli", "storage_option", "artifacts_option", "checkpoints_option", "run_options", "run_settings", "db_patience_option",
           "format_option", "user_errors", "as_typed", "reader"]


def artifacts_option(f: Callable) -> Callable:
    """--artifacts, where the trials' weights go (grid and tune)."""
    return click.option("--artifacts", metavar="DIR", type=click.Path(file_okay=False), default=None,
                        help="Folder of the trials' weights (Optuna artifacts) [default: artifacts/ beside the "
                             "SQLite file; for a server storage give every worker the same shared folder]")(f)


def checkpoints_option(f: Callable) -> Callable:
    """--checkpoints, where unfinished trials' epoch checkpoints go (grid and tune)."""
    return click.option("--checkpoints", metavar="DIR", type=click.Path(file_okay=False), default=None,
                        help="Folder of unfinished trials' epoch checkpoints, from which a stopped point resumes "
                             "[default: checkpoints/ beside the SQLite file; for workers on several machines give "
                             "them one shared folder]")(f)


def run_options(workers: str, dry_run: str, stale_after: str, own: tuple[Callable, ...] = (),
                dry_run_after_own: bool = False) -> Callable[[Callable], Callable]:
    """The options `runner grid` and `runner tune` share, declared once: --dry-run, --workers, --gpus, the
    command's `own` options (--dry-run after them with `dry_run_after_own`), then --stale-after, -q, --artifacts
    and --checkpoints (each command words the
    first three for what it runs). This order is --help's and the continue hint's (cli.base.as_typed). The
    command receives them as keyword arguments; `run_settings` turns them into one RunSettings."""
    def decorate(f: Callable) -> Callable:
        dry = click.option("--dry-run", is_flag=True, help=dry_run)
        options = [
            *(() if dry_run_after_own else (dry,)),
            click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True, help=workers),
            click.option("--gpus", metavar="0,2", help="The GPUs to share the workers out among, by index (default: "
                         "every visible one). Worker i runs on the (i mod G)-th; --workers above their number puts "
                         "several on each."),
            *own,
            *((dry,) if dry_run_after_own else ()),
            click.option("--stale-after", type=click.FloatRange(0), default=300, show_default=True,
                         metavar="SECONDS", help=stale_after),
            click.option("-q", "--quiet", is_flag=True, help="No progress bar or lines; only the final summary."),
            artifacts_option, checkpoints_option, db_patience_option,
        ]
        for option in reversed(options):
            f = option(f)
        return f
    return decorate


def run_settings(options: dict[str, Any]) -> Any:
    """The RunSettings of a command's options (see run_options), for the library: one frozen value."""
    from runner.trials.settings import RunSettings

    fields = ("workers", "gpus", "stale_after", "artifacts", "checkpoints", "retry_failed", "max_points", "db_patience")
    return RunSettings(**{k: options[k] for k in fields if k in options})


def db_patience_option(f: Callable) -> Callable:
    """--db-patience, how long a worker waits out a database that went away (grid, tune, launch slurm)."""
    return click.option("--db-patience", type=click.FloatRange(0), default=180, show_default=True, metavar="SECONDS",
                         help="How long a worker waits for a database that went away (a server restart, a failover, "
                              "a lost connection, a timeout, SQLite's lock) before it gives up as an interrupt does; "
                              "training goes on meanwhile, and what it writes is stored when the database is back. "
                              "A database that cannot be used (read-only, a full disk, a missing table, a wrong "
                              "password) stops it at once.")(f)


def storage_option(f: Callable) -> Callable:
    """--storage, shared by every command that reads or writes results."""
    return click.option("--storage", metavar="URL", default=None,
                        help="The results database: a SQLAlchemy URL, or a SQLite file path (db/runner.sqlite) "
                             f"[default: {DEFAULT_STORAGE}]")(f)


def format_option(f: Callable) -> Callable:
    """--format, shared by the query commands."""
    return click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "markdown"]),
                        default="table", show_default=True, help="Output format.")(f)


def user_errors(f: Callable) -> Callable:
    """Turn RunnerErrors, the database's errors and warnings into one line each, without a traceback.

    A database error that a library call let through (Optuna's "An exception is raised during the commit",
    SQLAlchemy's own) is said as runner.dberrors says it, naming the command's --storage: a read-only file, a
    full disk, a wrong password is never a traceback."""
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
        except Exception as e:
            if kind(e) is None:
                raise
            raise click.ClickException(str(database_error(_storage_of(kwargs), e))) from None
        finally:
            warnings.showwarning = old
    return wrapper


def _storage_of(options: dict[str, Any]) -> str:
    """The storage URL a command was given (its --storage), for a message; "" when it cannot say."""
    try:
        return storage_url(options.get("storage"))
    except RunnerError:
        return ""


class _Group(click.Group):
    """click's group, except that its list of commands gives each command's first sentence whole, wrapped.

    click cuts it to fit one line of the terminal ("bench  Time the runner against a bare loop, the course...").
    """

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        if cmd.short_help is None and cmd.help:
            paragraph = " ".join(cmd.help.split("\n\n")[0].split())
            cmd.short_help = paragraph.split(". ")[0].rstrip(".") + "."
        super().add_command(cmd, name)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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
    runner confirmation specs/regularization_explore.toml -o specs/regularization.toml   explore, then confirm
    runner studies                          every study in the storage
    runner trials --study regularization    its trials: --where, --sort, --group-by, --format
    runner show --study regularization 17   one trial: config, provenance, epochs
    runner export --study regularization --best --out lenet5.pt   a trial's model, on its own
    runner predict --study regularization --best my_digit.png    a trial's model on your images
    runner digit --index 0 --out my_digit.png   an MNIST test image as a PNG, and its label
    runner bench                            speed: bare loop, the course's pipeline, time to 99%
    runner bench floor | profile            what makes the step faster; where its time goes
    runner launch slurm SPEC --storage URL --jobs 16   a job array of workers on a Slurm cluster
    runner watch SPEC --storage URL         one view of a study's progress, wherever its workers are
    """


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


def reader(storage: str | None) -> Any:
    """The storage, opened to read: never created, never written."""
    from runner.store import Store
    return Store(storage, create=False)

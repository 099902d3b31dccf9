"""The `runner` command line (`runner.cli:main`): the group in base.py, its commands one module per kind.

Importing this package loads nothing: main() imports the commands (click, SQLAlchemy, Optuna: a second
or more on a busy machine) inside its handler of Ctrl-C, so that an interrupt at any moment, start-up
included, ends in one line and exit 130, never in a traceback."""
from __future__ import annotations

import sys

__all__ = ["cli", "main", "INTERRUPTED"]

INTERRUPTED = 130  # the exit status of a command stopped by Ctrl-C: 128 + SIGINT, as a shell reports it


def commands() -> click.Group:  # noqa: F821 - click is imported here, not when the package is
    """The `runner` group, with every command registered on it."""
    from runner.cli import bench, cluster, results, run  # noqa: F401 - importing them registers their commands
    from runner.cli.base import cli
    return cli


def __getattr__(name: str) -> object:
    """`runner.cli.cli`, imported on first use (PEP 562), so that `import runner.cli` itself is instant."""
    if name == "cli":
        return commands()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Entry point of the `runner` script: click's standalone mode, but Ctrl-C is one line and exit 130.

    A command that trains says itself what it kept and how to continue (runner.cli.run.stopping_cleanly);
    an interrupt anywhere else, while importing or parsing included, is the one line here. Click would end
    it with "Aborted!" and exit 1, the exit status of a failed trial."""
    newline = True  # closes the terminal's ^C echo; click writes it itself for an interrupt inside it
    try:
        import click

        group = commands()
        try:
            code = group.main(standalone_mode=False)  # the exit code, or the command's return value (None)
        except click.Abort as e:
            if not isinstance(e.__cause__, KeyboardInterrupt):  # end of input at a prompt
                click.echo("Aborted!", err=True)
                sys.exit(1)
            newline = False
            raise KeyboardInterrupt from None
        except click.ClickException as e:  # a usage error, or a RunnerError turned into one line by user_errors
            e.show()
            sys.exit(e.exit_code)
    except KeyboardInterrupt:
        print("\ninterrupted" if newline else "interrupted", file=sys.stderr)
        sys.exit(INTERRUPTED)
    sys.exit(code if isinstance(code, int) else 0)

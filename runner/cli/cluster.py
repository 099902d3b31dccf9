"""Commands for studies beyond one machine: `runner launch slurm` and `runner watch`."""
from __future__ import annotations

import click

from runner.cli.base import cli, db_patience_option, storage_option, user_errors
from runner.record import search_study


@cli.group()
def launch() -> None:
    """Start a study's workers on a cluster (they share one storage)."""


@launch.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@storage_option
@click.option("--jobs", type=click.IntRange(1, 10_000), required=True, help="Tasks of the job array: workers.")
@click.option("--partition", metavar="P", help="Slurm partition [default: the cluster's default].")
@click.option("--time", "time_limit", metavar="2h", help="Each task's time limit (2h, 90m, 1:30:00). Near it, "
              "a task requeues itself; its point resumes from its last epoch checkpoint.")
@click.option("--gpus-per-job", type=click.IntRange(0), default=0, show_default=True,
              help="GPUs of each task (--gres=gpu:G); a task runs one worker per GPU.")
@click.option("--cpus-per-job", type=click.IntRange(1), default=None, help="CPUs of each task (--cpus-per-task).")
@click.option("--mem", metavar="M", help="Memory of each task, as Slurm writes it (8G).")
@click.option("--tune", is_flag=True, help="Run `runner tune` (the spec's [search]) instead of `runner grid`.")
@click.option("--checkpoints", metavar="DIR", type=click.Path(file_okay=False), default=None,
              help="A folder every node shares, for epoch checkpoints [default: db/checkpoints here].")
@click.option("--artifacts", metavar="DIR", type=click.Path(file_okay=False), default=None,
              help="A folder every node shares, for the trials' weights [default: db/artifacts here].")
@click.option("--logs", metavar="DIR", type=click.Path(file_okay=False), default=None,
              help="Where the batch script and each task's output go [default: slurm/ here].")
@click.option("--max-points", type=click.IntRange(1), default=100_000, show_default=True, metavar="N",
              help="Refuse a grid of more points than this (passed on to every task).")
@db_patience_option
@click.option("--dry-run", is_flag=True, help="Print the batch script; submit nothing.")
@user_errors
def slurm(spec_path: str, storage: str | None, jobs: int, partition: str | None, time_limit: str | None,
          gpus_per_job: int, cpus_per_job: int | None, mem: str | None, tune: bool, checkpoints: str | None,
          artifacts: str | None, logs: str | None, max_points: int, db_patience: float, dry_run: bool) -> None:
    """Submit SPEC as one Slurm job array of --jobs tasks, each running `runner grid` (or `runner tune`)
    against the same --storage: a PostgreSQL server every node reaches.

    The tasks share the work through the storage: each point is claimed once, a stopped task gives its
    point back, and the point resumes from its epoch checkpoint in --checkpoints (a shared folder). With
    seeds in rounds every task runs the same rounds: one that finds a round's points all taken waits for
    the others, and all go on to the next round together. The
    storage and the study are made here, before anything is submitted. It prints the job id and the
    command that watches the study; add jobs to a running study by launching again.

    \b
    Examples:
      runner launch slurm specs/regularization.toml --storage postgresql+psycopg://me@head:5432/runner \\
          --jobs 16 --partition gpu --time 2h --gpus-per-job 1 --checkpoints /shared/ckpt --dry-run
      runner launch slurm specs/tune_lenet.toml --tune --storage postgresql+psycopg://me@head/runner --jobs 8
    """
    from runner.launch import batch_script, job_for, sbatch, server_storage, submit
    from runner.spec import load_spec
    from runner.store import Store, shown_url

    url = server_storage(storage)
    spec = load_spec(spec_path, storage=url)
    if tune and spec.search is None:
        raise click.ClickException(f"{spec_path}: --tune needs a [search] section (see runner tune --help)")
    if not tune and not spec.point_count():
        raise click.ClickException(f"{spec_path}: no points to run (a spec of [search] only: add --tune)")
    if not tune:
        from runner.trials.grid import check_size

        if spec.study.rounds is not None:  # seeds in rounds: every task runs the same rounds, up to their most
            from runner.rounds import most_points

            check_size(most_points(spec), max_points)
        check_size(spec, max_points)  # every task would refuse it: say so here, and submit nothing
    job = job_for(spec, url, jobs, checkpoints, artifacts, logs, tune=tune, partition=partition, time=time_limit,
                  gpus_per_job=gpus_per_job, cpus_per_job=cpus_per_job, mem=mem, max_points=max_points,
                  db_patience=db_patience)
    script = batch_script(job)  # a wrong --time is one line before anything is touched
    if dry_run:
        click.echo(script, nl=False)
        return
    sbatch()  # not there: one line, before the storage is touched
    store = Store(url)  # its tables made once here, not by N tasks at once; an unreachable server is one line
    if not tune:
        store.open_study(spec.study.name, spec.study.direction)
    store.dispose()
    job_id = submit(job)
    study = search_study(spec.study.name) if tune else spec.study.name
    click.echo(f"submitted job {job_id}: {jobs} task{'s' if jobs != 1 else ''} of `runner {'tune' if tune else 'grid'}"
               f" {spec_path}`; each task's output in {job.logs}/{job.name}-{job_id}_N.out")
    click.echo(f"watch it: runner watch --study {study} --storage {shown_url(url)}")


@cli.command()
@click.argument("spec_path", metavar="[SPEC]", type=click.Path(dir_okay=False), required=False)
@click.option("--study", help="The study's name (instead of SPEC).")
@storage_option
@click.option("--once", is_flag=True, help="Print one snapshot and exit (the default when not on a terminal).")
@click.option("--every", type=click.FloatRange(0.5), default=5, show_default=True, metavar="SECONDS",
              help="Seconds between refreshes on a terminal.")
@click.option("--minutes", type=click.FloatRange(0.5), default=10, show_default=True,
              help="The window of the trial-epochs-per-minute rate.")
@user_errors
def watch(spec_path: str | None, study: str | None, storage: str | None, once: bool, every: float,
          minutes: float) -> None:
    """One live view of a study from the storage alone, wherever its workers run.

    Trials complete, running, failed and to go; each running trial's worker, host, device, epoch and
    last metric (its test accuracy; a search trial's reported validation metric); the rate of
    trial-epochs a minute and the time left. Reading never writes.

    \b
    Examples:
      runner watch specs/regularization.toml --storage postgresql+psycopg://me@head:5432/runner
      runner watch --study tune_lenet-search --once
    """
    import sys
    import time

    from runner.watch import snapshot

    if (spec_path is None) == (study is None):
        raise click.UsageError("give SPEC or --study NAME (one of them)")
    total, search = None, None
    if spec_path is not None:
        from runner.spec import load_spec
        from runner.trials.tune import search_name

        spec = load_spec(spec_path, missing_code_ok=True, storage=storage)
        search = spec.search is not None and not spec.point_count()  # a tune spec: its search, by its budget
        study = search_name(spec) if search else spec.study.name
        total = spec.search.trials if search else spec.point_count()  # type: ignore[union-attr]
    live = not once and sys.stdout.isatty()
    while True:
        text = snapshot(storage, study, total, minutes, search)  # type: ignore[arg-type]
        if not live:
            click.echo(text)
            return
        click.echo("\x1b[H\x1b[2J" + text, nl=False)  # in place: home, clear, draw
        try:
            time.sleep(every)
        except KeyboardInterrupt:
            click.echo()
            return

"""A study launched on a Slurm cluster: one job array whose every task runs `runner grid` (or `runner
tune`) on the spec against one shared storage.

The tasks coordinate through the storage alone, as workers on several machines always have: every
point is claimed once, a stopped task gives its claim back, and a point resumes from its last epoch
checkpoint in the shared `--checkpoints` folder. So the launcher writes a plain `sbatch` script
(printed by `--dry-run`, kept beside the logs) and needs no job states back from Slurm. A task near
its time limit gets SIGUSR1 (`--signal`), requeues itself and stops cleanly; a preempted task is
requeued by Slurm (`--requeue`).
"""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from runner.errors import RunnerError
from runner.spec import Spec
from runner.store import storage_url

__all__ = ["SlurmJob", "slurm_time", "batch_script", "sbatch", "submit", "server_storage", "job_for"]

REQUEUE_MARGIN_S = 120  # a task is told this long before its time limit (less for a short limit)


def server_storage(storage: str | None) -> str:
    """The storage URL every task uses: one that every node reaches, so not a SQLite file."""
    if not storage:
        raise RunnerError("--storage is required: every task of the job array must reach the same database, "
                          "e.g. --storage postgresql+psycopg://USER@HEAD-NODE:5432/runner")
    url = storage_url(storage)
    if url.startswith("sqlite"):
        raise RunnerError(f"--storage {storage}: a SQLite file lives on one machine's disk and cannot be shared "
                          "safely by jobs on several nodes; use a PostgreSQL server every node reaches: "
                          "--storage postgresql+psycopg://USER@HEAD-NODE:5432/runner")
    return url


def slurm_time(text: str) -> tuple[str, int]:
    """(Slurm's time limit, in seconds) of "2h", "90m", "1h30m", "1d12h", or as Slurm reads a limit:
    "45" (minutes), "45:30" (minutes:seconds), "1:30:00", "1-12" (days-hours), "1-12:30", "1-12:30:00"."""
    t = text.strip()
    units = re.fullmatch(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?:in)?)?", t)
    slurm = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", t)
    if t and units and any(units.groups()):
        d, h, mins = (int(x or 0) for x in units.groups())
        seconds = ((d * 24 + h) * 60 + mins) * 60
    elif slurm:
        days, a, b, c = slurm.groups()
        if days is not None:  # days-hours[:minutes[:seconds]]
            seconds = int(days) * 86400 + int(a) * 3600 + int(b or 0) * 60 + int(c or 0)
        elif c is not None:  # hours:minutes:seconds
            seconds = int(a) * 3600 + int(b) * 60 + int(c)
        else:  # minutes[:seconds]
            seconds = int(a) * 60 + int(b or 0)
    else:
        raise RunnerError(f"--time {text}: not a time limit; e.g. 2h, 90m, 1h30m, 45 (minutes), 1:30:00 or 1-12")
    if seconds < 60:
        raise RunnerError(f"--time {text}: Slurm's limits are whole minutes; give at least 1m")
    days, rest = divmod(seconds, 86400)
    h, rest = divmod(rest, 3600)
    return (f"{days}-" if days else "") + f"{h:02d}:{rest // 60:02d}:{rest % 60:02d}", seconds


@dataclass(frozen=True)
class SlurmJob:
    """What `runner launch slurm` submits."""

    spec_path: str  # absolute
    storage: str  # a server URL
    jobs: int  # array tasks
    checkpoints: str  # absolute: a shared folder
    artifacts: str  # absolute: a shared folder
    logs: str  # absolute: where each task's output goes
    tune: bool = False
    partition: str | None = None
    time: str | None = None  # as typed (--time 2h)
    gpus_per_job: int = 0
    cpus_per_job: int | None = None
    mem: str | None = None
    max_points: int = 100_000
    db_patience: float = 180.0  # each task's --db-patience
    name: str = "runner"

    def command(self) -> list[str]:
        """The runner command each task runs (one worker per GPU of the task, else one)."""
        words = [sys.executable, "-m", "runner.cli", "tune" if self.tune else "grid", self.spec_path,
                 "--storage", self.storage, "--checkpoints", self.checkpoints, "--artifacts", self.artifacts]
        if self.gpus_per_job > 1:
            words += ["--workers", str(self.gpus_per_job)]
        if not self.tune and self.max_points != 100_000:
            words += ["--max-points", str(self.max_points)]
        if self.db_patience != 180.0:
            words += ["--db-patience", f"{self.db_patience:g}"]
        return words


def batch_script(job: SlurmJob) -> str:
    """The sbatch script of the job array."""
    lines = ["#!/bin/bash", f"#SBATCH --job-name={job.name}", f"#SBATCH --array=0-{job.jobs - 1}",
             f"#SBATCH --output={job.logs}/%x-%A_%a.out", "#SBATCH --open-mode=append",
             "#SBATCH --requeue  # a preempted or timed-out task runs again; its point resumes"]
    if job.partition:
        lines.append(f"#SBATCH --partition={job.partition}")
    margin = 0
    if job.time:
        limit, seconds = slurm_time(job.time)
        margin = min(REQUEUE_MARGIN_S, max(10, seconds // 4))
        lines += [f"#SBATCH --time={limit}", f"#SBATCH --signal=B:USR1@{margin}"]
    if job.gpus_per_job:
        lines.append(f"#SBATCH --gres=gpu:{job.gpus_per_job}")
    if job.cpus_per_job:
        lines.append(f"#SBATCH --cpus-per-task={job.cpus_per_job}")
    if job.mem:
        lines.append(f"#SBATCH --mem={job.mem}")
    command = " ".join(shlex.quote(w) for w in job.command())
    lines += [
        "",
        "# Every task runs the same command: the storage decides which points each one trains.",
        'echo "task ${SLURM_ARRAY_TASK_ID} of job ${SLURM_ARRAY_JOB_ID} on $(hostname), restart ${SLURM_RESTART_COUNT:-0}"',
        f"{command} &",
        "pid=$!",
        "stop() { kill -TERM \"$pid\" 2>/dev/null; wait \"$pid\"; }  # the runner gives its claims back",
    ]
    if margin:
        lines += [f"requeue() {{ echo \"time limit in {margin} s: requeued, the point resumes from its checkpoint\"; "
                  "scontrol requeue \"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}\"; stop; exit 0; }",
                  "trap requeue USR1"]
    lines += ["trap 'stop; exit 143' TERM", 'wait "$pid"', "status=$?",
              "# wait returns early when a signal arrives; the trap has then already waited for the runner",
              'exit "$status"', ""]
    return "\n".join(lines)


def sbatch() -> str:
    """The path of Slurm's sbatch; not there is one line."""
    found = shutil.which("sbatch")
    if found is None:
        raise RunnerError("sbatch not found: `runner launch slurm` submits with Slurm's sbatch, which is not on "
                          "PATH here (run it on a login node; --dry-run prints the script)")
    return found


def submit(job: SlurmJob) -> str:
    """Submit the job array with sbatch; its job id. Slurm's refusal is one line, in its own words."""
    command = sbatch()
    Path(job.logs).mkdir(parents=True, exist_ok=True)
    script = Path(job.logs) / f"{job.name}.sbatch"
    script.write_text(batch_script(job))
    try:
        done = subprocess.run([command, "--parsable", str(script)], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        raise RunnerError("sbatch did not answer within 120 s: is slurmctld reachable? (nothing was submitted)") \
            from None
    if done.returncode != 0:
        said = [x.strip() for x in (done.stderr or done.stdout).splitlines() if x.strip()]
        raise RunnerError(f"sbatch refused the job (nothing was submitted): {'; '.join(said) or 'no reason given'}")
    return done.stdout.strip().split(";")[0]


def job_for(spec: Spec, storage: str, jobs: int, checkpoints: str | None, artifacts: str | None, logs: str | None,
            **options: object) -> SlurmJob:
    """The job array for a spec: the shared folders made absolute (every task runs from its own cwd)."""
    here = Path.cwd()
    folder = lambda given, default: str((Path(given) if given else here / default).resolve())  # noqa: E731
    return SlurmJob(spec_path=str(Path(spec.path).resolve()), storage=storage, jobs=jobs,
                    checkpoints=folder(checkpoints, "db/checkpoints"), artifacts=folder(artifacts, "db/artifacts"),
                    logs=folder(logs, "slurm"), name=f"runner-{re.sub(r'[^A-Za-z0-9_.-]+', '-', spec.study.name)[:40]}",
                    **options)  # type: ignore[arg-type]

"""The `runner` command line (`runner.cli:main`): the group in base.py, its commands one module per kind."""
from __future__ import annotations

from runner.cli import bench, cluster, results, run  # noqa: F401 - importing them registers their commands on `cli`
from runner.cli.base import cli, main

__all__ = ["cli", "main"]

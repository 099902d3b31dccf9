"""runner/machine/provenance.py: what produced a result besides its config, named one way for a trial and a
benchmark."""
from __future__ import annotations

import platform

import optuna
import torch

from runner import record
from runner.machine import provenance
from runner.machine.provenance import code_version, cpu_name, library_versions, machine_info


def test_the_code_version_is_a_commit_of_this_checkout_or_the_package_version():
    version = code_version()
    commit = version.removesuffix("-dirty")
    assert (len(commit) == 12 and int(commit, 16) >= 0) or version.startswith("runner "), version


def test_the_cpu_and_the_libraries_are_named():
    assert cpu_name().strip() == cpu_name() != ""
    versions = library_versions()
    assert set(versions) == {"torch", "torchvision", "optuna", "sqlalchemy"}
    assert (versions["torch"], versions["optuna"]) == (torch.__version__, optuna.__version__)


def test_a_trials_provenance_is_the_records(monkeypatch):
    monkeypatch.setattr(provenance, "code_version", lambda: "0123456789ab")
    monkeypatch.setattr(provenance, "cpu_name", lambda: "CPU X")
    prov = provenance.provenance("cpu", 4)
    assert prov == record.provenance_record("0123456789ab", "cpu", 4, "CPU X", platform.python_version(),
                                            library_versions())


def test_a_benchmarks_machine_info_adds_the_date_and_the_load(monkeypatch):
    monkeypatch.setattr(provenance, "code_version", lambda: "0123456789ab")
    info = machine_info("cpu", 2)
    assert info[record.CODE_VERSION] == "0123456789ab" and info["cores_usable"] == 2
    assert info["torch"] == torch.__version__ and len(info["load_average_start"]) == 3
    assert info["date"].endswith("+00:00")

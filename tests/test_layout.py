"""The house's arrows run one way: no module imports a layer above its own, nor another file's
underscored name, and only the CLI imports the library lazily (to start without torch). Optuna is used
through its public API only: no underscored attribute of an Optuna object (`FrozenTrial._trial_id`), which
can change in any release.

About the whole package, not one module: it stays at tests/ top level."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "runner"
# Lower numbers sit lower in the house; a module may import only its own layer or those below.
LAYERS = {
    "errors": 0, "keys": 0, "text": 0, "optim": 0, "augment": 0, "usercode": 0, "plotting": 0, "progress": 0,
    "store": 0, "dberrors": 0, "migrations": 0, "formats": 0, "machine": 0, "record": 0, "design": 0,
    "data": 1, "models": 1,
    "spec": 2,
    "train": 3, "schema": 3, "weights": 3, "plan": 3, "sources": 3, "distill": 3,
    "trials": 4,
    "results": 5,  # what the stored trials say: read alike by the rounds and the report
    "report": 6, "query": 6, "bench": 6, "export": 6, "predict": 6, "launch": 6, "watch": 6,
    "rounds": 6,
    "cli": 7, "__init__": 7,  # the package's own __init__: runner.load_model
}
# Lazy imports are for heavy libraries; of the runner's own modules, only where start-up must not load
# torch: the CLI (`runner --help`, the query commands) and `import runner` itself.
LAZY_ALLOWED = ("cli", "__init__")


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _room(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _imports(path: Path) -> list[tuple[ast.ImportFrom | ast.Import, bool]]:
    """Every import of the file, and whether it sits inside a function (lazy)."""
    tree = ast.parse(path.read_text())
    out = []

    def walk(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                out.append((child, lazy))
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.If) and isinstance(child.test, ast.Name) and child.test.id == "TYPE_CHECKING":
                raise AssertionError(f"{path}: a TYPE_CHECKING import is an arrow too")
            walk(child, inner)
    walk(tree, False)
    return out


def _targets(node: ast.ImportFrom | ast.Import) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.module == "runner":  # from runner import spec
        return [f"runner.{a.name}" for a in node.names]
    return [node.module or ""]


# A file past this is usually two concepts (STYLE.md, "The layout shows the architecture").
MAX_LINES = 500
# A function that takes more wants a small frozen config of the values that travel together (STYLE.md 4).
# The CLI's commands take one parameter per option and are not counted.
MAX_PARAMETERS = 8
MAX_LONG_SIGNATURES = 2  # functions outside runner/cli/ allowed more than MAX_PARAMETERS


def test_no_file_of_the_package_is_over_500_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in _modules() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"split along a concept line: {long}"


def _parameter_count(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """A function's parameters, self and cls aside, *args and **kwargs one each."""
    a = node.args
    names = [p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs) if p.arg not in ("self", "cls")]
    return len(names) + (a.vararg is not None) + (a.kwarg is not None)


def _long_signatures(path: Path) -> list[str]:
    """`line: name (count)` of each function in the file that takes more than MAX_PARAMETERS parameters."""
    return [f"{node.lineno}: {node.name} ({n})" for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and (n := _parameter_count(node)) > MAX_PARAMETERS]


def test_at_most_two_functions_outside_the_cli_take_more_than_eight_parameters():
    found = [f"{p.relative_to(PACKAGE)}:{s}" for p in _modules() if _room(p) != "cli" for s in _long_signatures(p)]
    assert len(found) <= MAX_LONG_SIGNATURES, f"pass a small frozen config instead: {found}"


def test_the_check_counts_parameters(tmp_path):
    code = tmp_path / "code.py"
    code.write_text("def eight(a, b, c, d, e, f, g, h): pass\n"
                    "def nine(a, b, c, d, e, f, g, h, i): pass\n"
                    "class C:\n"
                    "    def method(self, a, b, c, d, e, f, g, h): pass\n"
                    "    async def star(self, a, b, *args, c, d, e, f, g=1, **kwargs): pass\n")
    assert _long_signatures(code) == ["2: nine (9)", "5: star (9)"]


def test_every_module_has_a_layer():
    assert {_room(p) for p in _modules()} <= set(LAYERS)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_arrow_runs_back_up(path):
    room = _room(path)
    for node, lazy in _imports(path):
        for target in _targets(node):
            if not target.startswith("runner."):
                continue
            other = target.split(".")[1]
            assert LAYERS[other] <= LAYERS[room], f"{path.name}: imports {target}, a layer above {room}"
            assert not lazy or room in LAZY_ALLOWED, f"{path.name}:{node.lineno}: a lazy import of {target}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_private_name_crosses_a_file(path):
    for node, _ in _imports(path):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("runner"):
            private = [a.name for a in node.names if a.name.startswith("_")]
            assert not private, f"{path.name}:{node.lineno}: imports {private} from {node.module}"


def _imports_the_report(path: Path) -> list[str]:
    """`line: module` of each import of runner.report in the file, lazy or not."""
    return [f"{node.lineno}: {t}" for node, _ in _imports(path) for t in _targets(node)
            if t == "runner.report" or t.startswith("runner.report.")]


@pytest.mark.parametrize("path", [PACKAGE / "rounds.py", *sorted((PACKAGE / "trials").rglob("*.py"))],
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_runner_does_not_import_the_reader(path):
    """What the rounds and the trials share with the report (the stored plan of a study in rounds, the stored
    source versions) lives below them all: runner.results, runner.sources."""
    assert not _imports_the_report(path), f"{path.name} imports the report: {_imports_the_report(path)}"


def test_the_check_finds_an_import_of_the_report(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from runner.report.build import stored_plan\nfrom runner import report\n"
                   "def f():\n    import runner.report.rounds\n")
    assert _imports_the_report(bad) == ["1: runner.report.build", "2: runner.report", "4: runner.report.rounds"]


def test_no_test_imports_a_private_name():
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        for node, _ in _imports(path):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("runner"):
                assert not [a.name for a in node.names if a.name.startswith("_")], f"{path.name}:{node.lineno}"


def _optuna_private_names() -> set[str]:
    """Every underscored (not dunder) attribute of the Optuna objects the runner handles, as installed."""
    import optuna

    storage = optuna.storages.RDBStorage("sqlite:///:memory:")
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    objects = [storage, study, trial, study.trials[0], storage.get_all_studies()[0], optuna.samplers.TPESampler(),
               optuna.samplers.RandomSampler(), optuna.pruners.MedianPruner()]
    return {n for o in objects for n in dir(o) if n.startswith("_") and not n.startswith("__")}


def _private_optuna_reads(path: Path, names: set[str]) -> list[str]:
    """`line: attribute` of each underscored Optuna attribute the file reads (its own `self._x` aside)."""
    found = [node for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Attribute) and node.attr in names
             and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))]
    return [f"{node.lineno}: {node.attr}" for node in sorted(found, key=lambda n: (n.lineno, n.col_offset))]


@pytest.fixture(scope="module")
def optuna_private() -> set[str]:
    return _optuna_private_names() | {"_trial_id", "_study_id"}


def test_no_module_reads_an_underscored_attribute_of_an_optuna_object(optuna_private):
    found = {str(p.relative_to(PACKAGE)): r for p in _modules() if (r := _private_optuna_reads(p, optuna_private))}
    assert not found, f"use Optuna's public API (the storage's get_trial_id_from_study_id_trial_number): {found}"


def test_the_check_finds_a_private_optuna_attribute(tmp_path, optuna_private):
    bad = tmp_path / "bad.py"
    bad.write_text("ids = [t._trial_id for t in trials]\nx = study._study_id\nself._trial_id = 1\n")
    assert _private_optuna_reads(bad, optuna_private) == ["1: _trial_id", "2: _study_id"]


# ---------------------------------------------------------------- tests/ mirrors runner/

# Modules tested through their package's test file although they do not name it: Alembic loads them by path,
# and tests/test_migrations.py upgrades a database through every one of them.
BY_PATH = ("migrations/env.py", "migrations/versions/")


def _untested(package: Path, tests: Path, by_path: tuple[str, ...] = ()) -> list[str]:
    """Each module of `package` with no test file named for it: runner/a/b.py wants tests/a/test_b.py, or a test
    file of a package above it (tests/a/test_a.py, tests/test_a.py) that names runner.a.b; a package (its
    __init__.py) wants tests/a/ with tests in it, or tests/test_a.py."""
    missing = []
    for path in sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts):
        rel = path.relative_to(package)
        folders, name = rel.parts[:-1], rel.stem.strip("_")  # __main__.py: test_main.py
        if str(rel).startswith(by_path) or (name == "init" and not folders):
            continue
        if name == "init":
            own = tests.joinpath(*folders[:-1], f"test_{folders[-1]}.py")
            if own.exists() or list(tests.joinpath(*folders).glob("test_*.py")):
                continue
            missing.append(f"{Path(*folders)}/: no {Path('tests', *folders)}/ nor {own.relative_to(tests.parent)}")
            continue
        own = tests.joinpath(*folders, f"test_{name}.py")
        dotted = ".".join((package.name, *folders, rel.stem))
        above = [tests.joinpath(*folders[:i + 1], f"test_{folders[i]}.py") for i in range(len(folders))]
        above += [tests.joinpath(*folders[:i], f"test_{folders[i]}.py") for i in range(len(folders))]
        if not own.exists() and not any(f.exists() and dotted in f.read_text() for f in above):
            missing.append(f"{rel}: no {own.relative_to(tests.parent)}")
    return missing


def test_every_module_has_a_test_file_named_for_it():
    missing = _untested(PACKAGE, Path(__file__).parent, BY_PATH)
    assert not missing, "tests/ mirrors runner/; these modules have no test file:\n" + "\n".join(missing)


def test_the_check_finds_a_module_without_a_test(tmp_path):
    package, tests = tmp_path / "runner", tmp_path / "tests"
    for module in ("__init__.py", "store.py", "keys.py", "data/__init__.py", "data/base.py", "data/idx.py",
                   "cli/__main__.py", "report/__init__.py", "report/figures.py", "migrations/versions/v0.py"):
        (package / module).parent.mkdir(parents=True, exist_ok=True)
        (package / module).write_text("")
    for test, text in (("test_store.py", ""), ("data/test_data.py", "from runner.data.base import Split\n"),
                       ("cli/test_main.py", "")):
        (tests / test).parent.mkdir(parents=True, exist_ok=True)
        (tests / test).write_text(text)
    assert _untested(package, tests, ("migrations/versions/",)) == [
        "data/idx.py: no tests/data/test_idx.py", "keys.py: no tests/test_keys.py",
        "report/: no tests/report/ nor tests/test_report.py", "report/figures.py: no tests/report/test_figures.py"]

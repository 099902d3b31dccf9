"""runner/spec/parse.py: load_spec and parse_spec: a bad spec is one line naming the file, the key,
the value and what is allowed; and the parser fuzzed: no TOML document makes it raise anything but a
one-line SpecError.

Two ways in: valid documents (the shipped specs and a small one with layer axes and a user's
module) mutated as Python dicts and given to `parse_spec`; and text (arbitrary, raw bytes, the
shipped specs' text with random splices, mutated documents written as TOML) given to `load_spec`.
A spec that parses must also expand to points whose config hashes can be computed.
"""
from __future__ import annotations

import copy
import json
import math
import os
import tomllib
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import runner.trials.lifecycle as lifecycle_module
from runner.errors import SpecError
from runner.models.layers import INPUT_KEYS, LAYER_KEYS
from runner.spec import AXES, DATA_KEYS, MODEL_KEYS, SECTIONS, STUDY_KEYS, Spec, TRAIN_KEYS, load_spec, parse_spec
from runner.usercode import TARGET

from tests.helpers import V1, VALID_SPEC as VALID
from tests.helpers import run, validation_write  # noqa: F401 - fixtures

SPECS = Path(__file__).resolve().parents[2] / "specs"


SPEC_TEXTS = {p.name: p.read_text() for p in sorted(SPECS.glob("*.toml"))}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """The current folder while the tests run: parse_spec(doc, "fuzz.toml") searches it for a target's
    module, and it holds exactly one, mynet.py (never imported: the parser only finds and hashes it).

    Module-scoped, so that @given tests may take it (a function-scoped fixture is not reset between
    the examples of one test).
    """
    folder = tmp_path_factory.mktemp("spec_fuzz")
    (folder / "mynet.py").write_text("from torch import nn\n\n\nclass Net(nn.Linear):\n"
                                     "    def __init__(self, width=8, sizes=()):\n        super().__init__(784, 10)\n")
    old = os.getcwd()
    os.chdir(folder)
    yield folder
    os.chdir(old)


SMALL = {
    "study": {"name": "fuzz", "seeds": [0, 1], "metric": "test_loss"},
    "data": {"train_limit": 100, "mean": 0.5, "std": 0.25},
    "train": {"epochs": 1, "optimizer": "adam", "schedule": "onecycle"},
    "models": {
        "m": {"input": {"pad": 2}, "act": "tanh", "layers": [
            {"conv": 6, "k": 5, "name": "c1"},
            {"pool": "max", "k": 2},
            {"conv": 16, "k": 5, "stride": 1, "pad": 0, "act": "gelu", "bn": True, "name": "c3"},
            {"fc": 32, "dropout": 0.1},
            {"fc": 10, "name": "out"},
        ]},
        "p": {"arch": "lenet5", "batch_norm": True},
        "q": {"arch": "mlp", "hidden": [16, 8]},
    },
    "grid": {"model": ["m"], "m.c1.conv": [4, 8], "m.c1.k": [3, 5], "dropout": [0.0, 0.5]},
    "runs": [{"model": "p", "lr": 0.1, "p.c1.conv": 3}, {"model": "m", "m.pool2.k": 3, "m.c3.bn": False},
             {"model": "q", "augment": "affine"}],
}


TARGET_DOC = {
    "study": {"name": "mine", "seeds": [3]},
    "models": {"mine": {"target": "mynet:Net", "args": {"width": 8, "sizes": [1, 2]}, "dropout": 0.1},
               "m": {"layers": [{"fc": 20, "name": "h"}, {"fc": 10}]}},
    "grid": {"model": ["mine", "m"], "lr": [0.1, 0.01], "m.h.fc": [5, 6]},
}


BASES = [tomllib.loads(SPEC_TEXTS["course.toml"]), tomllib.loads(SPEC_TEXTS["regularization.toml"]), SMALL,
         TARGET_DOC]


# ---------------------------------------------------------------- the property


def check(doc: dict[str, Any], path: str = "fuzz.toml") -> Spec | None:
    """parse_spec either gives a Spec whose points hash, or raises a one-line SpecError naming the file."""
    try:
        spec = parse_spec(doc, path)
    except SpecError as e:
        assert_one_line(str(e), path)
        return None
    for point in spec.points():
        assert len(point.config_hash) == 16
    return spec


def assert_one_line(message: str, path: str) -> None:
    assert message.startswith(f"{path}: "), message
    assert message.splitlines() == [message], message


def check_file(path: Path) -> None:
    try:
        spec = load_spec(path)
    except SpecError as e:
        assert_one_line(str(e), str(path))
        return
    for point in spec.points():
        assert len(point.config_hash) == 16


def test_the_bases_are_valid(workdir):
    """Each base is a Spec of the points it declares: the shipped specs' config hashes as pinned in
    tests/fixtures/v1, SMALL's (2 x 2 x 2 grid + 3 runs) x 2 seeds, TARGET_DOC's (2 + 2 x 2) x 1 seed."""
    pinned = json.loads((V1 / "config_hashes.json").read_text())
    points = {"course": pinned["course.toml"]["points"], "regularization": pinned["regularization.toml"]["points"]}
    counts = {"fuzz": 22, "mine": 6}
    for doc in BASES:
        spec = check(copy.deepcopy(doc))
        assert isinstance(spec, Spec) and spec.study.name == doc["study"]["name"]
        hashes = [p.config_hash for p in spec.points()]
        assert len(set(hashes)) == len(hashes) == spec.point_count(), spec.study.name  # every point once
        if spec.study.name in points:
            assert hashes == points[spec.study.name], spec.study.name
        else:
            assert len(hashes) == counts[spec.study.name], spec.study.name


# ---------------------------------------------------------------- values a TOML document can hold


def _names(doc: Any) -> set[str]:
    """Every key and string in a document."""
    if isinstance(doc, dict):
        return {k for k in doc} | {n for v in doc.values() for n in _names(v)}
    if isinstance(doc, list):
        return {n for v in doc for n in _names(v)}
    return {doc} if isinstance(doc, str) else set()


def _subtrees(doc: Any) -> list[Any]:
    """Every value in a document, tables and lists included: values that fit somewhere."""
    out = []
    children = doc.values() if isinstance(doc, dict) else doc if isinstance(doc, list) else ()
    for v in children:
        out.append(v)
        out += _subtrees(v)
    return out


LAYER_AXES = ["m.c1.conv", "m.c1.k", "m.c1.stride", "m.c1.pad", "m.c1.act", "m.c1.bn", "m.c1.name", "m.pool2.pool",
              "m.pool2.k", "m.pool2.stride", "m.out.fc", "m.fc4.dropout", "m.c3.conv", "m.c9.conv", "p.c1.k",
              "p.output.fc", "p.s2.k", "q.fc1.fc", "lenet5.c1.conv", "lenet5_32.c1.k", "lenet5_32.s4.k",
              "mlp_90.output.fc", "mine.c1.conv", "m.h.fc", "x.y.z", "m..", "..", "m.c1.conv.x", "m.c1"]


KEYS = sorted({*SECTIONS, *STUDY_KEYS, *DATA_KEYS, *TRAIN_KEYS, *MODEL_KEYS, *AXES, *INPUT_KEYS,
               *(k for keys in LAYER_KEYS.values() for k in keys), *LAYER_AXES,
               *(k for doc in BASES for k in _names(doc))})


TARGETS = ["mynet:Net", "mynet:Net\n", "mynet:Nope", "mynet:Net.x", "mynet.sub:X", "os:path", "sys:x", "json:loads",
           "__main__:x", "nomodule:X", "é:x", ":", "a:", ":b", "a" * 300 + ":b", "a." * 200 + "b:c"]


STRINGS = ["", " ", "\n", "a\nb", "\r", "\u2028", "\x85", "é", "名前", "a.b", "a:b", "a.b.c", ".", "relu", "max",
           "avg", "mnist", "affine", "cosine", "adamw", "cuda", "test_loss", *TARGETS, *KEYS]


INTS = [0, 1, -1, 2, 3, 5, 10, 28, 32, 784, 2**31, 2**63 - 1, -(2**63), 10**30, -(10**30), 10**400, -(10**400)]


FLOATS = [0.0, -0.0, 0.5, 1.0, 1e-300, 5e-324, 1e300, 1.7976931348623157e308, math.inf, -math.inf, math.nan]


scalars = st.one_of(
    st.sampled_from(INTS), st.integers(), st.sampled_from(FLOATS), st.floats(), st.booleans(),
    st.sampled_from(STRINGS), st.text(max_size=20),
    st.datetimes(), st.dates(), st.times(),  # TOML's dates and times
)


keys = st.one_of(
    st.sampled_from(KEYS),
    st.tuples(st.sampled_from(KEYS), st.sampled_from([  # near misses
        str.upper, str.title, lambda k: k + "s", lambda k: k[:-1], lambda k: k[1:], lambda k: k[::-1],
        lambda k: k + " ", lambda k: " " + k, lambda k: k + ".", lambda k: "." + k, lambda k: k + "\n",
        lambda k: k.replace(".", "_"), lambda k: k.replace("_", "-"),
    ])).map(lambda t: t[1](t[0])),
    st.text(max_size=12),
)


toml_values = st.recursive(scalars, lambda children: st.one_of(
    st.lists(children, max_size=5), st.dictionaries(keys, children, max_size=4)), max_leaves=12)


# values that fit somewhere in a spec: they get past the type checks, deeper into the parser (copies: mutated)
known_values = st.sampled_from([v for doc in BASES for v in _subtrees(doc)]).map(copy.deepcopy)


values = st.one_of(known_values, toml_values, st.sampled_from([*INTS, *FLOATS, *STRINGS]))


def like(v: Any) -> st.SearchStrategy:
    """A value of the same TOML type as `v`: it passes the type checks, to fail (or not) further on."""
    if isinstance(v, bool):
        return st.booleans()
    if isinstance(v, int):
        return st.one_of(st.integers(-3, 40), st.sampled_from(INTS))
    if isinstance(v, float):
        return st.one_of(st.floats(-1, 2), st.sampled_from(FLOATS), st.sampled_from(INTS))
    if isinstance(v, str):
        return st.sampled_from(TARGETS) if ":" in v else st.sampled_from(STRINGS)
    if isinstance(v, list):
        return st.lists(st.one_of(*(like(x) for x in v[:3])) if v else values, max_size=6)
    return values


# ---------------------------------------------------------------- mutations


def _containers(node: Any) -> list[dict | list]:
    """Every table and list in a document, the document first."""
    out = [node]
    for v in (node.values() if isinstance(node, dict) else node):
        if isinstance(v, (dict, list)):
            out += _containers(v)
    return out


def mutate(data: st.DataObject, doc: dict) -> None:
    """One random change anywhere in the document."""
    container = data.draw(st.sampled_from(_containers(doc)), label="where")
    slots = list(container) if isinstance(container, dict) else list(range(len(container)))
    ops = ["add"] + (["like"] * 4 + ["replace", "replace", "delete", "swap"] if slots else [])
    if isinstance(container, dict) and slots:
        ops.append("rename")
    if isinstance(container, list):
        ops += ["resize", "resize"]
    op = data.draw(st.sampled_from(ops), label="op")
    if op == "add":
        if isinstance(container, dict):
            container[data.draw(keys, label="key")] = data.draw(values, label="value")
        else:
            container.insert(data.draw(st.integers(0, len(container))), data.draw(values, label="value"))
    elif op == "like":
        k = data.draw(st.sampled_from(slots))
        container[k] = data.draw(like(container[k]), label="like")
    elif op == "replace":
        container[data.draw(st.sampled_from(slots))] = data.draw(values, label="value")
    elif op == "delete":
        del container[data.draw(st.sampled_from(slots))]
    elif op == "swap":  # a value from elsewhere in the document
        container[data.draw(st.sampled_from(slots))] = copy.deepcopy(data.draw(st.sampled_from(_subtrees(doc))))
    elif op == "rename":
        k = data.draw(st.sampled_from(slots))
        container[data.draw(keys, label="new key")] = container.pop(k)
    else:  # resize a list: empty it, cut it, repeat its items (duplicate layer names), reverse it
        how = data.draw(st.sampled_from(["empty", "cut", "repeat", "long", "reverse"]), label="resize")
        if how == "empty":
            container.clear()
        elif how == "cut":
            del container[data.draw(st.integers(0, len(container))):]
        elif how == "repeat" and container:
            i = data.draw(st.integers(0, len(container) - 1))
            container.insert(i, copy.deepcopy(container[i]))
        elif how == "long" and container:
            n = data.draw(st.integers(20, 120), label="length")
            container[:] = [copy.deepcopy(container[i % len(container)]) for i in range(n)]
        else:
            container.reverse()


MUTATED = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@settings(MUTATED, max_examples=5000)
@given(data=st.data(), base=st.sampled_from(range(len(BASES))), n=st.sampled_from([1, 1, 1, 2, 2, 3, 4]))
def test_mutated_documents_parse_or_give_one_line(workdir, data, base, n):
    doc = copy.deepcopy(BASES[base])
    for _ in range(n):
        mutate(data, doc)
    check(doc)


@settings(max_examples=600, deadline=None)
@given(target=st.one_of(st.sampled_from(TARGETS), st.from_regex(TARGET), st.text(max_size=20),
                        st.integers(1, 400).map(lambda n: "m" * n + ":X")),  # a file name is at most 255 bytes
       args=st.one_of(st.dictionaries(keys, toml_values, max_size=3), values))
def test_target_models(workdir, target, args):
    check({"study": {"name": "t"}, "models": {"mine": {"target": target, "args": args}}, "grid": {"lr": [0.1]}})


# ---------------------------------------------------------------- text


def _toml(v: Any) -> str:
    """A value as TOML: inline tables and arrays, so that a whole document is `key = value` lines."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)  # ASCII with \uXXXX escapes: a TOML basic string
    if isinstance(v, (datetime, date, time)):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(x)}" for k, x in v.items()) + " }"


def _write(folder: Path, data: bytes | str) -> Path:
    path = folder / "text.toml"
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8", errors="surrogatepass")
    return path


@settings(max_examples=1000, deadline=None)
@given(text=st.text())
def test_arbitrary_text(workdir, text):
    check_file(_write(workdir, text))


@settings(max_examples=500, deadline=None)
@given(data=st.binary())
def test_arbitrary_bytes(workdir, data):
    check_file(_write(workdir, data))


TOKENS = ["[", "]", "[[", "]]", "{", "}", "=", ",", ".", '"', "'", '"""', "\n", "#", " ", "\\", "0x10", "0b1", "1_000",
          "1979-05-27", "07:32:00", "1979-05-27T07:32:00Z", "true", "[[runs]]\n", "[models.x]\n", "[grid]\n", "\ufeff",
          "\x00", "\r\n", "\u2028", *STRINGS]


EXTREMES = ["9" * 5000, "-" + "9" * 400, "1e999", "-0.0", "nan", "-inf", "[" * 600, "{ a = " * 400,
            "[[[[[[[[[[1]]]]]]]]]]", "[" * 300 + "]" * 300, "'" + "a" * 300 + ":b'"]


@settings(max_examples=1500, deadline=None)
@given(name=st.sampled_from(sorted(SPEC_TEXTS)), data=st.data())
def test_spliced_spec_text(workdir, name, data):
    text = SPEC_TEXTS[name]
    for _ in range(data.draw(st.integers(1, 3), label="splices")):
        values = [i + 2 for i in range(len(text)) if text.startswith("= ", i)]  # where a value starts
        at = data.draw(st.one_of(st.sampled_from(values), st.integers(0, len(text))), label="at")
        cut = data.draw(st.integers(0, 20), label="cut")
        insert = data.draw(st.one_of(st.sampled_from(EXTREMES), st.sampled_from(TOKENS), st.text(max_size=10)),
                           label="insert")
        text = text[:at] + insert + text[at + cut:]
    check_file(_write(workdir, text))


@settings(MUTATED, max_examples=600)
@given(data=st.data(), base=st.sampled_from(range(len(BASES))), n=st.sampled_from([1, 1, 2, 3]))
def test_mutated_documents_as_toml_text(workdir, data, base, n):
    doc = copy.deepcopy(BASES[base])
    for _ in range(n):
        mutate(data, doc)
    check_file(_write(workdir, "\n".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in doc.items())))


# ---------------------------------------------------------------- what the fuzzing found


def _set(doc: dict, path: tuple, value: Any) -> dict:
    """A copy of `doc` with the value at `path` (keys and list indices) set."""
    doc = copy.deepcopy(doc)
    node = doc
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return doc


@pytest.mark.parametrize("doc, message", [
    # a line break in a key or name made a message of two lines
    (_set(SMALL, ("study", "a\nb"), 1), '[study]: unknown key "a\\nb"; valid keys: name, description'),
    (_set(SMALL, ("models", "m", "layers"), [{"fc": 3, "name": "o\u2028ut"}]),
     "[models.m].layers[0] (o\\u2028ut): the last layer gives the logits: fc = 3"),
    (_set(SMALL, ("models", "a\rb"), {"arch": "x"}), '[models.a\\rb].arch: "x" is not "lenet5" | "mlp"'),
    # an integer beyond a float's range in a float key: OverflowError
    (_set(SMALL, ("train", "lr"), 10**400),
     "[train].lr: 1" + "0" * 400 + " is out of a float's range: it must be a number > 0"),
    (_set(SMALL, ("models", "m", "layers", 3, "dropout"), -(10**309)),
     "[models.m].layers[3].dropout: -1" + "0" * 309 + " is out of a float's range: it must be a number in [0, 1)"),
    # a module name longer than a file name may be: OSError (ENAMETOOLONG) from Path.is_file
    (_set(TARGET_DOC, ("models", "mine", "target"), "m" * 253 + ":X"),
     '[models.mine].target: "' + "m" * 40 + '"... (255 characters): cannot look for its module: File name too long'),
    # match() let a trailing newline through
    (_set(TARGET_DOC, ("models", "mine", "target"), "mynet:Net\n"),
     '[models.mine].target: "mynet:Net\\n" is not "module:attribute"'),
    # a TOML date in an args list: TypeError in config_hash (json.dumps)
    (_set(TARGET_DOC, ("models", "mine", "args", "when"), [date(1979, 5, 27)]),
     "[models.mine].args.when: 1979-05-27 in a list is not a plain value (number, string, boolean, list)"),
    (_set(TARGET_DOC, ("models", "mine", "args", "w"), [1, [{"at": time(7, 32)}]]),
     "[models.mine].args.w: 07:32:00 in a list is not a plain value"),
    # arrays nested nearly as deep as tomllib allows: RecursionError in the message's _show
    (_set(SMALL, ("study", "seeds"), [0, json.loads("[" * 490 + "]" * 490)]),
     "[study].seeds: [[[[[[[[[...]]]]]]]]] is not an integer >= 0"),
])
def test_found_by_fuzzing(workdir, doc, message):
    with pytest.raises(SpecError) as e:
        parse_spec(doc, "fuzz.toml")
    assert_one_line(str(e.value), "fuzz.toml")
    assert message in str(e.value)


@pytest.mark.parametrize("data, message", [
    (b'[study]\nname = "\xff"\n', "not UTF-8 text: byte 0xff at offset 16"),  # UnicodeDecodeError
    ("[study]\nseeds = [" + "9" * 5000 + "]\n",  # tomllib lets int()'s ValueError through
     "TOML syntax error: Exceeds the limit (4300 digits) for integer string conversion: value has 5000 digits"),
    ("a = " + "[" * 600, "TOML syntax error: arrays or inline tables nested too deeply"),  # RecursionError
    ("a = " + "{ a = " * 400, "TOML syntax error: arrays or inline tables nested too deeply"),
])
def test_text_found_by_fuzzing(workdir, data, message):
    path = _write(workdir, data)
    with pytest.raises(SpecError) as e:
        load_spec(path)
    assert_one_line(str(e.value), str(path))
    assert message in str(e.value)


# ---------------------------------------------------------------- specs written by hand


@pytest.mark.parametrize("change, message", [
    (("[grid]", "[grdi]"), 'unknown key "grdi"; did you mean "grid"?'),
    (("dropout = [0.0, 0.5]", "dropuot = [0.0, 0.5]"), '[grid]: unknown key "dropuot"; did you mean "dropout"?'),
    (("dropout = [0.0, 0.5]", "dropout = [0.0, 1.5]"), "[grid].dropout: 1.5 is not a number in [0, 1)"),
    (("dropout = [0.0, 0.5]", "dropout = [0.0, 1.0]"), "[grid].dropout: 1.0 is not a number in [0, 1)"),
    (("dropout = [0.0, 0.5]", "dropout = 0.5"), "[grid].dropout: 0.5 is not a list; write dropout = [0.5]"),
    (("dropout = [0.0, 0.5]", "dropout = []"), "[grid].dropout: is an empty list"),
    (("dropout = [0.0, 0.5]", 'dropout = ["x"]'), '[grid].dropout: "x" is not a number in [0, 1)'),
    (("lr = [0.01, 0.05]", "lr = [-0.01]"), "[grid].lr: -0.01 is not a number > 0"),
    (('model = ["lenet5"]', 'model = ["lenet"]'), 'unknown model "lenet": defined are lenet5, mlp; did you mean "lenet5"?'),
    (('arch = "lenet5"', 'arch = "resnet"'), '[models.lenet5].arch: "resnet" is not "lenet5" | "mlp"'),
    (("seeds = [0, 1]", "seeds = [0, 1]\n[train]\nbatch_size = -1"), "[train].batch_size: -1 is not an integer >= 1"),
    (("seeds = [0, 1]", "seeds = [0, 1]\n[train]\nepochs = 1.5"), "[train].epochs: 1.5 is not an integer >= 1"),
    (("seeds = [0, 1]", "seeds = [0, 1]\n[train]\nlr = true"), "[train].lr: true is not a number > 0"),
    (("seeds = [0, 1]", 'seeds = [0, 1]\n[train]\noptimizer = "rmsprop"'), '"rmsprop" is not "sgd" | "adam" | "adamw"'),
    (("seeds = [0, 1]", "seeds = []"), "[study].seeds: [] is not a non-empty list of integers"),
    (("hidden = [74, 40]", "hidden = [74, 0]"), "[models.mlp].hidden: 0 is not an integer >= 1"),
    (('[[runs]]\nmodel = "mlp"', '[[runs]]\nmodel = "mlp"\nbatch_norm = "yes"'), '[[runs]] #1.batch_norm: "yes" is not true or false'),
])
def test_bad_specs_get_one_line_naming_file_key_value_and_what_is_allowed(write_spec, change, message):
    path = write_spec(VALID.replace(*change))
    assert change[0] in VALID
    with pytest.raises(SpecError) as e:
        load_spec(path)
    text = str(e.value)
    assert text.startswith(str(path) + ": ")
    assert message in text
    assert "\n" not in text


def test_toml_syntax_error_names_the_line(write_spec):
    path = write_spec(VALID.replace('name = "s"', 'name = "s'))
    with pytest.raises(SpecError, match=r"TOML syntax error: .*line 3"):
        load_spec(path)


def test_a_spec_with_nothing_to_run_is_refused(write_spec):
    path = write_spec('[study]\nname = "s"\n[models.a]\narch = "mlp"\n')
    with pytest.raises(SpecError, match="nothing to run"):
        load_spec(path)


def test_missing_spec_file(tmp_path):
    with pytest.raises(SpecError, match="no such spec file"):
        load_spec(tmp_path / "nope.toml")


@pytest.mark.parametrize("metric", ["val_acc", "val_loss"])
def test_a_validation_metric_without_val_fraction_is_refused_in_one_line(run, write, monkeypatch, metric):
    monkeypatch.setattr(lifecycle_module, "train_point", lambda *a, **k: pytest.fail("trained"))
    result = run("grid", write(metric=metric))
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "[study].metric" in lines[0] and f'"{metric}" needs a validation split' in lines[0]
    assert "[data].val_fraction" in lines[0]
    assert not Path("db").exists()

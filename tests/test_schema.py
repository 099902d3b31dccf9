"""The spec grammar as JSON Schema and key tables: generated from the registries, never by hand."""
from __future__ import annotations

import json
import tomllib
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from runner.cli import cli
from runner.schema import SCHEMA_FILE, json_schema, key_tables, schema_text

from tests.helpers import FRACTION_SPEC

ROOT = Path(__file__).parent.parent
SPECS = sorted((ROOT / "specs").glob("*.toml"))


def test_runner_schema_prints_the_committed_schema():
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0
    assert result.output == schema_text() == (ROOT / SCHEMA_FILE).read_text()  # regenerate: runner schema > specs/runner.schema.json
    jsonschema.Draft7Validator.check_schema(json.loads(result.output))


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_shipped_specs_point_editors_at_the_schema(path):
    assert path.read_text().splitlines()[0] == "#:schema ./runner.schema.json"


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_shipped_specs_satisfy_the_schema(path):
    errors = [e.message for e in jsonschema.Draft7Validator(json_schema()).iter_errors(tomllib.loads(path.read_text()))]
    assert errors == []


@pytest.mark.parametrize("text, fragment", [
    ('[study]\nname = "x"\n[models.a]\narch = "lenet5"\n[grid]\ndropuot = [0.1]\n', "dropuot"),
    ('[study]\nname = "x"\n[models.a]\narch = "resnet"\n', "resnet"),
    ('[study]\nname = "x"\n[models.a]\nlayers = [{ conv = 6 }]\n', "layers"),  # a conv needs k
    ('[study]\nname = "x"\n[models.a]\narch = "mlp"\n[train]\nlr = -1\n', "-1"),
])
def test_the_schema_refuses_what_the_validator_refuses(text, fragment):
    errors = list(jsonschema.Draft7Validator(json_schema()).iter_errors(tomllib.loads(text)))
    assert errors and any(fragment in (e.message + str(list(e.path))) for e in errors)


def test_spec_reference_key_tables_are_the_generated_ones():
    reference = (ROOT / "docs" / "spec.md").read_text()
    start, end = "<!-- runner:keys:start -->\n", "<!-- runner:keys:end -->"
    assert start in reference and end in reference, "docs/spec.md needs its generated key tables"
    block = reference.split(start, 1)[1].split(end, 1)[0]
    assert block == key_tables(), "regenerate: runner schema --format markdown"


def test_every_registry_key_is_in_the_schema():
    from runner.models.layers import LAYER_KEYS
    from runner.spec import DATA_KEYS, MODEL_KEYS, STUDY_KEYS, TRAIN_KEYS

    schema = json_schema()
    from runner.spec.teacher import TEACHER_KEYS

    train = {**TRAIN_KEYS, "teacher": None}  # [train].teacher: a table, not an axis
    for section, keys in (("study", STUDY_KEYS), ("data", DATA_KEYS), ("train", train)):
        assert set(schema["properties"][section]["properties"]) == set(keys)
    assert set(schema["properties"]["train"]["properties"]["teacher"]["properties"]) == set(TEACHER_KEYS)
    assert set(schema["definitions"]["model"]["properties"]) == set(MODEL_KEYS)
    for kind, keys in LAYER_KEYS.items():
        assert set(schema["definitions"][kind]["properties"]) == set(keys)


def test_the_schema_takes_each_form_of_design_and_refuses_others():
    validator = jsonschema.Draft7Validator(json_schema())
    def errors(design: str) -> list:
        text = FRACTION_SPEC.replace("[grid]\n", f"[grid]\ndesign = {design}\n")
        return list(validator.iter_errors(tomllib.loads(text)))
    assert [errors(d) for d in ('"full"', '"half"', "{ resolution = 4 }")] == [[], [], []]
    assert all(errors(d) for d in ('"third"', "{ resolution = 2 }", "{ res = 4 }", "4"))

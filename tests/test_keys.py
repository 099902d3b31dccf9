"""runner/keys.py: a Key's constraints as data, and what is derived from them: the words of what is allowed,
the type and value checks, and the key's JSON Schema."""
from __future__ import annotations

import math

import pytest

from runner.keys import Key, choices_text

DROPOUT = Key(float, 0.0, "dropout probability", ge=0, lt=1)
OPTIMIZER = Key(str, "sgd", choices=("sgd", "adam"))
SEEDS = Key(list, (0,), item=int, item_ge=0, nonempty=True)
NAME = Key(str, None, nonempty=True, max_len=5)
MEAN = Key(float, "auto", gt=0, auto=True, note="(of the training images)")


@pytest.mark.parametrize("key, allowed", [
    (DROPOUT, "a number in [0, 1)"),
    (Key(int, 1, ge=1), "an integer >= 1"),
    (Key(float, 1.0, gt=0), "a number > 0"),
    (OPTIMIZER, '"sgd" | "adam"'),
    (Key(bool, False), "true or false"),
    (SEEDS, "a non-empty list of integers >= 0"),
    (Key(dict, None), "a table"),
    (NAME, "a non-empty string"),
    (MEAN, 'a number > 0 or "auto" (of the training images)'),
    (Key(str, None, text="a path to a .py file"), "a path to a .py file"),
])
def test_what_is_allowed_is_said_from_the_constraints(key, allowed):
    assert key.allowed == allowed


def test_choices_text_quotes_each_choice():
    assert choices_text(("none", "affine")) == '"none" | "affine"'


def test_an_integer_is_a_number_and_a_bool_is_neither():
    assert DROPOUT.accepts_type(1) and DROPOUT.accepts_type(0.5)
    assert not DROPOUT.accepts_type(True) and not Key(int, 1).accepts_type(True)
    assert not Key(int, 1).accepts_type(1.0) and Key(bool, False).accepts_type(False)
    assert MEAN.accepts_type("auto") and not MEAN.accepts_type("other")


@pytest.mark.parametrize("key, good, bad", [
    (DROPOUT, [0, 0.0, 0.99], [1, -0.1, math.nan, math.inf]),
    (OPTIMIZER, ["sgd", "adam"], ["SGD", "rmsprop"]),
    (SEEDS, [[0], [0, 3]], [[], [-1], [0, 1.5]]),
    (NAME, ["abc", "abcde"], ["", "  ", "abcdef"]),
    (MEAN, ["auto", 0.13], [0, -1.0]),
])
def test_a_value_of_the_right_type_is_checked_against_the_bounds(key, good, bad):
    assert all(key.check(v) for v in good)
    assert not any(key.check(v) for v in bad)


def test_the_schema_says_the_same_constraints():
    assert DROPOUT.schema() == {"type": "number", "description": "dropout probability", "minimum": 0,
                                "exclusiveMaximum": 1, "default": 0.0}
    assert OPTIMIZER.schema() == {"type": "string", "enum": ["sgd", "adam"], "default": "sgd"}
    assert SEEDS.schema() == {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1,
                              "default": [0]}
    assert NAME.schema() == {"type": "string", "minLength": 1, "maxLength": 5}
    assert MEAN.schema() == {"anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"const": "auto"}],
                             "default": "auto"}

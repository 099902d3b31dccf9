"""runner/models/diagram.py: one picture per model, byte-identical for the same table."""
from __future__ import annotations

import re

from runner.spec import load_spec
from runner.spec.tables import parameter_tables


def test_diagram_is_a_png_and_byte_identical_for_the_same_table():
    from runner.models.diagram import diagram_file, diagram_png

    table = parameter_tables(load_spec("specs/course.toml"))[0]
    png = diagram_png(table, (1, 28, 28))
    assert png.startswith(b"\x89PNG") and png == diagram_png(table, (1, 28, 28))
    assert re.fullmatch(r"model-[A-Za-z0-9._-]+\.png", diagram_file(table))

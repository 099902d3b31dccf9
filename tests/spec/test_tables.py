"""runner/spec/tables.py: a spec's models as built: the layer table of each model and of each variant with
another count, the [train] values every point takes (the largest batch), and whether any point averages its
weights. (A model too large to train, refused in one line: tests/models/test_memory.py.)"""
from __future__ import annotations

from runner.spec.tables import averages_weights, largest_batch, parameter_tables, point_table, train_values

from tests.helpers import VALID_SPEC, load_spec_text, one_model_spec as spec

# VALID_SPEC with batch_norm on and off in the grid, and an mlp run of its own batch size and average
VARIANTS = VALID_SPEC.replace("[grid]\n", "[grid]\nbatch_norm = [false, true]\n").replace(
    'model = "mlp"', 'model = "mlp"\nbatch_size = 512\nema = 0.99')


def test_each_model_and_each_variant_with_another_count_has_a_table_in_spec_order():
    tables = parameter_tables(load_spec_text(VARIANTS))
    assert [(t.title, t.total) for t in tables] == [("lenet5 (lenet5)", 61_706), ("mlp (mlp)", 61_500),
                                                    ("lenet5 (lenet5, batch_norm)", 62_158)]  # dropout: no new count


def test_a_points_table_is_its_models():
    point = load_spec_text(VALID_SPEC).points()[0]
    table = point_table(point)
    assert (table.title, table.model, table.total) == (point.label(), "lenet5", 61_706)


def test_train_values_are_the_trains_the_grids_and_the_runs():
    s = load_spec_text(VARIANTS)
    assert train_values(s, "batch_size") == [128, 512] and largest_batch(s) == 512
    assert train_values(s, "lr") == [0.01, 0.01, 0.05]  # [train]'s, then the grid's
    assert largest_batch(load_spec_text(VALID_SPEC)) == 128


def test_averages_weights_is_whether_any_point_keeps_an_average():
    s = spec({"ema": [0.0, 0.999]})
    assert averages_weights(s) and not averages_weights(spec())
    assert averages_weights(spec(runs=[{"model": "m", "ema": 0.99}]))
    assert averages_weights(spec(model={"arch": "mlp", "ema": 0.99}))

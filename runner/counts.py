"""Parameter-count tables for a spec's models, shared by `runner models` and the report."""
from __future__ import annotations

from runner.models import ModelConfig, build_model, count_layers
from runner.spec import Point, Spec

__all__ = ["model_config", "parameter_tables"]

COLUMNS = ["layer", "type", "shape", "formula", "parameters"]


def model_config(point: Point) -> ModelConfig:
    """The architecture a point trains (dropout changes no count, batch_norm does)."""
    return ModelConfig(point.model.arch, point.model.hidden, point.reg("dropout"), point.reg("batch_norm"))


def parameter_tables(spec: Spec) -> list[tuple[str, list[str], list[list[str]], int]]:
    """(title, column names, rows, total) for every model and every variant with another count."""
    variants: dict[tuple, ModelConfig] = {}
    for name, model in spec.models.items():  # every model, even one no point uses
        base = spec.point({"model": name}, 0)
        variants.setdefault((name, model_config(base).batch_norm), model_config(base))
    for point in spec.points():
        cfg = model_config(point)
        variants.setdefault((point.model.name, cfg.batch_norm), cfg)
    out = []
    for (name, bn), cfg in variants.items():
        model = build_model(cfg)
        layers = count_layers(model)
        rows = [[r.name, r.kind, r.shape, r.formula, f"{r.count:,}"] for r in layers]
        total = sum(p.numel() for p in model.parameters())
        assert total == sum(r.count for r in layers)
        title = f"{name} ({cfg.arch}{', batch_norm' if bn else ''})"
        out.append((title, COLUMNS, rows, total))
    return out

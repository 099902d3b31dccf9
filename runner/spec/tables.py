"""A spec's models as built: the layer table of each model and variant, and the check that every
model builds and runs on the data before any trial (a user's module is imported here)."""
from __future__ import annotations

import torch

from runner.models.build import ModelConfig
from runner.models.counts import LayerRow, ParamTable, param_table
from runner.models.user import check_user_model
from runner.spec.config import Point, Spec

__all__ = ["point_table", "check_models", "parameter_tables"]


def point_table(point: Point) -> ParamTable:
    """The layer table of the point's model (which imports a user's module)."""
    return param_table(point.label(), point.model.name, point.model_config())


def check_models(spec: Spec, sample: tuple[torch.Tensor, float, float] | None = None) -> None:
    """Build every distinct model of the spec's points and run it on two images, before any trial.

    A user's module is imported here, its args checked against its signature and its output
    checked to be (2, classes) logits: each problem is one line naming the spec and the model.

    Args:
        sample: (a few real training images as uint8 (N, C, H, W), the normalization's mean and std):
            on them a user's module whose outputs look like probabilities is warned about.
    """
    seen = set()
    for point in spec.model_points():
        cfg = point.model_config()
        if cfg in seen:
            continue
        seen.add(cfg)
        if cfg.target:
            check_user_model(cfg, f"{spec.path}: [models.{point.model.name}]", sample)
        else:
            param_table(point.label(), point.model.name, cfg)  # builds it and runs two images through


def _title(point: Point, cfg: ModelConfig) -> str:
    m = point.model
    kind = m.arch if m.arch in ("lenet5", "mlp") else ("module " + m.target if m.target else "declared")
    extras = [f"{a}={v}" for a, v in point.axes if "." in a]
    extras += ["batch_norm"] if cfg.batch_norm else []
    return f"{m.name} ({', '.join([kind, *extras])})"


def parameter_tables(spec: Spec, stored: dict[tuple[str, bool], list[LayerRow]] | None = None) -> list[ParamTable]:
    """Every model of the spec, and each variant of it with another count, in spec order.

    Args:
        stored: (model name, batch_norm) -> its layer table as stored with its trials. Used for a user's
            module, so that reading results never imports its code; a user's module without a
            stored table is left out.
    """
    variants: dict[tuple, tuple[Point, ModelConfig]] = {}
    points = [spec.point({"model": name}, 0) for name in spec.models] + spec.points()
    for point in points:
        cfg = point.model_config()
        key = (point.model.name, cfg.layers, cfg.batch_norm, cfg.args)  # dropout changes no count
        variants.setdefault(key, (point, cfg))
    out = []
    for point, cfg in variants.values():
        title = _title(point, cfg)
        if cfg.target:
            if stored is None:
                out.append(param_table(title, point.model.name, cfg))
            elif (point.model.name, cfg.batch_norm) in stored:
                rows = tuple(stored[point.model.name, cfg.batch_norm])
                out.append(ParamTable(title, point.model.name, rows, sum(r.count for r in rows)))
            continue
        out.append(param_table(title, point.model.name, cfg))
    return out

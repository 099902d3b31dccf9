"""A spec's models as built: the layer table of each model and variant, and the check that every
model builds and runs on the data before any trial (a user's module is imported here)."""
from __future__ import annotations

from typing import Any

import torch

from runner.models.build import ModelConfig
from runner.models.counts import LayerRow, ParamTable, param_table
from runner.machine import available_bytes, mib
from runner.models.memory import Footprint, footprint
from runner.models.user import ModelError, check_user_model
from runner.spec.config import Spec
from runner.spec.point import Point

__all__ = ["point_table", "check_models", "check_fits", "training_footprint", "averages_weights", "train_values",
           "largest_batch", "training_device", "parameter_tables"]


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
            check_fits(spec, point, cfg)  # before any weight is allocated
            param_table(point.label(), point.model.name, cfg)  # builds it and runs two images through


def train_values(spec: Spec, key: str) -> list[Any]:
    """Every value a [train] key takes in the spec: [train]'s own, the grid's and the runs'."""
    return [getattr(spec.train, key), *dict(spec.grid).get(key, ()), *(dict(r)[key] for r in spec.runs if key in dict(r))]


def largest_batch(spec: Spec) -> int:
    """The largest batch size any point of the spec trains with."""
    sizes = train_values(spec, "batch_size")
    if spec.search is not None:
        sizes += [int(d.high if d.high is not None else max(d.choices)) for d in spec.search.space
                  if d.axis == "batch_size"]
    return max(sizes)


def training_device(spec: Spec) -> str:
    """"cuda" where the spec's training would run on a GPU, else "cpu"."""
    if spec.train.device == "cpu" or not torch.cuda.is_available():
        return "cpu"
    return "cuda"


def training_footprint(spec: Spec, point: Point, cfg: ModelConfig) -> Footprint:
    """A declared model's training memory at the spec's largest batch size, with the optimizer of the spec
    that keeps the most state."""
    optimizers = set(train_values(spec, "optimizer"))
    optimizer = next((o for o in ("adam", "adamw") if o in optimizers), point.train.optimizer)
    return footprint(cfg, largest_batch(spec), optimizer, point.train.momentum or 0.9, averages_weights(spec))


def averages_weights(spec: Spec) -> bool:
    """Whether any point of the spec keeps an average of its weights (ema > 0) beside them."""
    values = [*dict(spec.grid).get("ema", ()), *(dict(r).get("ema", 0) for r in spec.runs),
              *(dict(m.defaults).get("ema", 0) for m in spec.models.values())]
    if spec.search is not None:
        values += [d.high if d.high is not None else max(d.choices) for d in spec.search.space if d.axis == "ema"]
    return any(values)


def check_fits(spec: Spec, point: Point, cfg: ModelConfig) -> Footprint:
    """A declared model's training memory (`training_footprint`), refused in one line (the model, the layer
    that dominates, the count, the estimate, what is available) when it exceeds the memory there."""
    need = training_footprint(spec, point, cfg)
    have, where = available_bytes(training_device(spec))
    if need.total > have:
        raise ModelError(f"{spec.path}: [models.{point.model.name}]: {need.params:,} parameters would need about "
                         f"{mib(need.total)} to train at batch size {largest_batch(spec)}, more than the "
                         f"{mib(have)} {where}; most of it is layer {need.dominant}")
    return need


def _title(point: Point, cfg: ModelConfig) -> str:
    m = point.model
    kind = m.arch if m.arch in ("lenet5", "mlp") else ("module " + m.target if m.target else "declared")
    extras = [f"{a}={v}" for a, v in point.axes if "." in a]
    extras += ["batch_norm"] if cfg.batch_norm else []
    return f"{m.name} ({', '.join([kind, *extras])})"


def parameter_tables(spec: Spec, stored: dict[tuple[str, bool], list[LayerRow]] | None = None,
                     settings: list[dict[str, Any]] | None = None) -> list[ParamTable]:
    """Every model of the spec, and each variant of it with another count, in spec order.

    Args:
        stored: (model name, batch_norm) -> its layer table as stored with its trials. Used for a user's
            module, so that reading results never imports its code; a user's module without a
            stored table is left out.
        settings: these configurations' models instead (a search's report: the ones it confirmed).
    """
    variants: dict[tuple, tuple[Point, ModelConfig]] = {}
    points = [spec.point(s, 0) for s in settings] if settings is not None else \
        [spec.point({"model": name}, 0) for name in spec.models] + spec.points()
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

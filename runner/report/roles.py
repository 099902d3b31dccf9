"""The part each configuration plays in a report: the model that stands for LeNet-5 and the one for the MLP,
the plain setting of a model, the baseline the best is held against, and the configurations at or near chance,
with the likely cause where the stored trials show one.

A user's module or a declared model stands for a preset when the spec says so (`[models.X].compare`) or when its
layer table matches the preset's (runner.models.presets.matching_preset); the tables are those stored with the
trials, so no user code runs here.
"""
from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from runner.models.counts import LayerRow, table_output_kind
from runner.models.presets import matching_preset
from runner.models.user import PROBABILITIES
from runner.report.contents import AtChance, Config, Excluded, config_key
from runner.spec import REGULARIZERS, Spec, dataset_shape

__all__ = ["STANDS_FOR", "compared_models", "plain_config", "named_baseline", "gallery_baseline", "at_chance",
           "NEAR_CHANCE"]

STANDS_FOR = {"lenet5": "LeNet-5", "mlp": "the MLP"}  # what a preset is called in the report's sentences
NEAR_CHANCE = 0.25  # at or near chance: below chance + this share of the way from chance to 100%


def compared_models(spec: Spec, configs: list[Config], tables: dict[str, list[LayerRow]]) -> dict[str, tuple[str, str]]:
    """arch -> (model, why it stands for it) for "lenet5" and "mlp", where a model with stored configurations does:
    the one the spec names with compare first, then a preset of that arch, then one whose layer table matches
    (`tables`: model -> its layer table). `why` is "" for a preset itself."""
    shape, classes = dataset_shape(spec.data) or ((1, 28, 28), 10)
    ran = list(dict.fromkeys(c.model for c in configs))
    out = {}
    for arch in STANDS_FOR:
        named = [n for n in ran if n in spec.models and spec.models[n].compare == arch]
        preset = [n for n in ran if n in spec.models and spec.models[n].arch == arch and not spec.models[n].compare]
        matching = [n for n in ran if n in tables and n in spec.models and not spec.models[n].compare
                    and spec.models[n].arch not in STANDS_FOR and matching_preset(tables[n], shape, classes) == arch]
        if named:
            out[arch] = (named[0], f'[models.{named[0]}].compare = "{arch}"')
        elif preset:
            out[arch] = (preset[0], "")
        elif matching:
            out[arch] = (matching[0], "its layer table matches LeNet-5's (the same weights, layer by layer)"
                         if arch == "lenet5" else "every layer of it that learns weights is fully connected")
    return out


def plain_config(spec: Spec, configs: list[Config], model: str, regs_off: bool) -> Config | None:
    """The model's default point (with every regularizer off, if asked), if it was stored; else, for a model
    that ran at a budget of its own ([[runs]] beside a one-at-a-time design), its best configuration with
    every regularizer off."""
    if model not in spec.models:
        return None
    params = dict(spec.point({"model": model}, 0).params)
    params.pop("seed")
    if regs_off:
        params.update({r: k.default for r, k in REGULARIZERS.items() if r in params})
    found = next((c for c in configs if c.key == config_key(params)), None)
    if found is None and spec.against_baseline:
        found = next((c for c in configs if c.model == model and not c.regularized), None)  # best first
    return found


def _key(spec: Spec, setting: dict[str, Any]) -> str:
    params = dict(spec.point(setting, 0).params)
    params.pop("seed")
    return config_key(params)


def named_baseline(spec: Spec, configs: list[Config], best: Config) -> Config | None:
    """The baseline the study names for `best` ([[runs]] baseline = true, or a one-at-a-time design's plain
    setting): the one it is compared with at its budget, else one of its model's; None where there is none."""
    stored = {c.key: c for c in configs}
    baselines = []
    for comparison in spec.comparisons():
        base = _key(spec, comparison.baseline)
        if _key(spec, comparison.setting) == best.key:
            return stored.get(base)
        baselines.append(base)
    return next((stored[k] for k in baselines if k in stored and stored[k].model == best.model), None)


def gallery_baseline(spec: Spec, configs: list[Config], best: Config, others: list[Config | None],
                     chance: list[AtChance]) -> Config | None:
    """What the gallery of the best's mistakes is compared with: the study's named baseline, else the plain
    setting of the best's own model, else one of `others`; never the best itself, never one at chance."""
    near = {a.key for a in chance}
    candidates = [named_baseline(spec, configs, best), plain_config(spec, configs, best.model, regs_off=True), *others]
    return next((c for c in candidates if c is not None and c.key != best.key and c.key not in near), None)


def _held_out(c: Config) -> tuple[float, ...]:
    return c.final_acc or c.final_val


def at_chance(configs: list[Config], classes: int, excluded: list[Excluded],
              tables: dict[str, list[LayerRow]]) -> list[AtChance]:
    """The configurations whose mean final accuracy is at or near chance (below chance + NEAR_CHANCE of the way
    to 100%), each with the likely causes the stored trials show: a softmax at the end of its forward (its
    layer table), a NaN loss (its failed trials), a training loss that rose or ended above a uniform guess's (a
    learning rate that diverged)."""
    chance = 100.0 / classes
    line = chance + NEAR_CHANCE * (100.0 - chance)
    out = []
    for c in configs:
        accs = _held_out(c)
        if accs and float(np.mean(accs)) < line:
            out.append(AtChance(c.key, c.label, accs, chance, classes,
                                tuple(_causes(c, classes, excluded, tables.get(c.model, [])))))
    return out


def _causes(c: Config, classes: int, excluded: list[Excluded], table: list[LayerRow]) -> list[str]:
    causes = []
    if table_output_kind(table)[0] == PROBABILITIES:
        causes.append("its forward ends in softmax, and CrossEntropyLoss applies log_softmax itself, so it learns "
                      "through a softmax of a softmax: return the last layer's output as it is")
    nan = [x.number for x in excluded if x.label == c.label and re.search(r"\bnan\b", x.reason, re.IGNORECASE)]
    if nan:
        causes.append(f"the loss became NaN in {len(nan)} of its trials (trial{'s' if len(nan) > 1 else ''} "
                      f"{', '.join(map(str, nan))}, left out): a learning rate too large for it")
    loss = c.curves["train_loss"].mean if "train_loss" in c.curves else ()
    uniform = math.log(classes)  # the cross-entropy of guessing every class alike
    lr = f" (lr {c.params['lr']})" if "lr" in c.params else ""
    if len(loss) > 1 and loss[-1] > loss[0]:
        causes.append(f"its training loss rose from {loss[0]:.2f} in the first epoch to {loss[-1]:.2f} in the last: "
                      f"the learning rate{lr} diverged")
    elif loss and loss[-1] > 1.1 * uniform:
        causes.append(f"its training loss ended at {loss[-1]:.2f}, above the {uniform:.2f} of a uniform guess: "
                      f"the learning rate{lr} diverged")
    return causes

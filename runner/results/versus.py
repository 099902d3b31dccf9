"""Each configuration against a reference that is not a grid factor's other value: the tuned baseline ([[runs]]
baseline = "tuned"), and, for a distilled study, the same student untaught."""
from __future__ import annotations

from runner.results.configs import Config
from runner.results.stats import Correct, Effect, effects_of, setting_key, versus_row
from runner.spec import Spec

__all__ = ["versus_tuned", "versus_untaught"]


def versus_tuned(spec: Spec, configs: list[Config], correct: Correct | None = None) -> list[Effect]:
    """Each compared setting against the tuned baseline ([[runs]] baseline = "tuned": the baseline at its own best
    budget), paired by seed, Holm-corrected over them; none without a tuned baseline."""
    tuned = spec.tuned_baseline()
    if tuned is None:
        return []
    by_key = {c.key: c for c in configs}
    base = by_key.get(setting_key(spec, tuned))
    first = next(iter(spec.models))
    rows = [versus_row(c.setting.get("model", first), c.factor, "tuned baseline", c.on,
                    by_key.get(setting_key(spec, c.setting)), base, correct)
            for c in spec.comparisons() if setting_key(spec, c.setting) != setting_key(spec, tuned)]
    return effects_of(rows, spec.study.direction)


def versus_untaught(spec: Spec, configs: list[Config], correct: Correct | None = None) -> list[Effect]:
    """Each taught configuration (distill_weight > 0) against the same student untaught (distill_weight 0, all else
    equal), paired by seed, Holm-corrected over them; none without a teacher, and a row without pairs where the
    untaught student is not stored."""
    if spec.train.teacher is None:
        return []
    by_key = {c.key: c for c in configs}
    first = next(iter(spec.models))
    rows = []
    for c in configs:
        setting = {"model": c.model, **c.params}
        w = setting.get("distill_weight", spec.train.distill_weight)
        if not w:
            continue
        t = setting.get("distill_temperature", spec.train.distill_temperature)
        base = setting | {"distill_weight": 0.0}  # the same temperature: a grid crosses it with the weight
        rows.append(versus_row(setting.get("model", first), "teacher", "untaught", f"taught (w={w:g}, T={t:g})", c,
                            by_key.get(setting_key(spec, base)), correct))
    return effects_of(rows, spec.study.direction)

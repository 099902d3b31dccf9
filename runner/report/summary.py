"""summary.json: the report's numbers for programs, accuracies in percent, every float to 7 significant digits."""
from __future__ import annotations

import json
import math
from typing import Any

from runner.report.contents import Effect, Report
from runner.report.markdown_rounds import rounds_json
from runner.report.markdown_search import search_json
from runner.results.stats import mean_of, std_of

__all__ = ["summary_json"]


def _r(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) else float(f"{x:.7g}")  # 7 significant digits, small p too


def summary_json(report: Report) -> str:
    """summary.json: configurations and effects, accuracies in percent."""
    def effect(e: Effect) -> dict[str, Any]:
        return {"model": e.model, "factor": e.factor, "from": e.from_, "to": e.to, "n_pairs": e.n_pairs,
                "delta_mean": _r(e.delta_mean), "ci95": None if e.ci95 is None else [_r(e.ci95[0]), _r(e.ci95[1])],
                "p_raw": _r(e.p_raw), "p_value": _r(e.p_value), "verdict": e.verdict,
                "bootstrap_ci95": None if e.boot_ci95 is None else [_r(e.boot_ci95[0]), _r(e.boot_ci95[1])],
                "bootstrap_p_raw": _r(e.boot_p_raw), "bootstrap_p_value": _r(e.boot_p),
                "level": _r(e.level), "detectable": _r(e.detectable), "detectable_seeds": e.detectable_seeds,
                "floor": _r(e.floor), "seeds_needed": e.seeds_needed, "aliases": list(e.aliases),
                **({"within": e.within} if e.within else {})}

    k = report.known
    doc = {
        "study": report.study, "metric": report.metric, "direction": report.direction,
        "configs": [{"model": c.model, "params": c.params, "label": c.label, "param_count": c.param_count,
                     "seeds": len(c.seeds), "final_mean": _r(mean_of(c.final)), "final_std": _r(std_of(c.final)),
                     "best_mean": _r(mean_of(c.best_acc)), "final_test_loss": _r(mean_of(c.final_loss)),
                     "gap_mean": _r(mean_of(c.gap)), "seconds_per_epoch": _r(c.seconds_per_epoch),
                     "final_val_mean": _r(mean_of(c.final_val)),
                     "peak_memory_mb": _r(c.peak_memory_mb)}
                    for c in report.configs],
        "effects": [effect(e) for e in report.effects],
        "interactions": [effect(e) for e in report.interactions],
        "versus_best": [effect(e) for e in report.versus_best],
        "search": None if report.search is None else search_json(report.search),
        "design": None if report.fraction is None else {
            "lines": list(report.fraction.lines), "resolution": report.fraction.resolution,
            "interactions_left_out": list(report.fraction.left_out)},
        **({"rounds": rounds_json(report.rounds)} if report.rounds is not None else {}),
        **({"plan": {"confirmatory": report.plan.confirmatory, "why": report.plan.why, "hash": report.plan.plan_hash}}
           if report.plan is not None else {}),
        **({"held_out": "val"} if report.held_out == "val" else {}),
        **({"versus_tuned": [effect(e) for e in report.versus_tuned]} if report.versus_tuned else {}),
        **({"teacher": report.teacher, "versus_untaught": [effect(e) for e in report.versus_untaught]}
           if report.teacher else {}),
        **({"fits": [{"label": f.label, "train_acc": _r(f.train_acc), "held_out_acc": _r(f.held_acc), "gap": _r(f.gap),
                      "lowest_loss_epoch": f.best_epoch, "last_epoch": f.last_epoch, "verdict": f.verdict}
                     for f in report.fits]} if report.against_baseline else {}),
        **({"choice": {"budget": report.choice.budget, "tuned": report.choice.tuned,
                       "models": {m: b for m, b, _ in report.choice.models},
                       "kept": [[f, v, _r(d)] for f, v, d in report.choice.kept],
                       "stack": [[f, v] for f, v in report.choice.stack], "rule": list(report.choice.rule)}}
           if report.choice is not None else {}),
        **({"at_chance": [{"label": a.label, "accuracy": [_r(x) for x in a.accuracy], "chance": _r(a.chance),
                           "causes": list(a.causes)} for a in report.at_chance]} if report.at_chance else {}),
        **({"outputs": [{"model": n.model, "kind": n.kind, "layer": n.layer} for n in report.outputs]}
           if report.outputs else {}),
        "known": None if k is None else {"label": k.label, "mean": _r(k.mean), "std": _r(k.std),
                                         "reference": k.reference, "difference": _r(k.mean - k.reference),
                                         "within_seed_spread": k.lo <= k.reference <= k.hi,
                                         "full_data": k.full_data},
        "excluded": [{"number": x.number, "state": x.state, "label": x.label, "seed": x.seed,
                      "reason": x.reason} for x in report.excluded],
    }
    return json.dumps(doc, indent=2) + "\n"

"""The search's section of the report, and its part of summary.json."""
from __future__ import annotations

from typing import Any

import numpy as np

from runner.report.contents import SearchSummary
from runner.results.stats import t_interval

__all__ = ["search_markdown", "search_json"]


def _fmt_ci(xs: tuple[float, ...]) -> str:
    ci = t_interval(xs)
    if ci is None:
        return f"{xs[0]:.2f}" if xs else "–"
    return f"{ci[0]:.2f} [{ci[1]:.2f}, {ci[2]:.2f}]"


def search_markdown(s: SearchSummary) -> list[str]:
    """The report's section on the search."""
    used = s.counts["complete"] + s.counts["pruned"]
    out = ["## The search", "",
           f"Optuna study `{s.study}`: {s.sampler} sampler, {s.pruner} pruner, on the validation split's "
           f"{'accuracy' if s.metric == 'val_acc' else 'loss'} ({s.metric}); the test split was never evaluated "
           f"during the search. Budget: {used} of {s.budget} finished trials ({s.counts['complete']} complete, "
           f"{s.counts['pruned']} pruned), {s.counts['fail']} failed (not counted: a NaN loss, an error), "
           f"{s.counts.get('interrupted', 0)} interrupted (not counted: stopped from outside, its slot filled "
           "again), "
           f"{s.counts.get('refused', 0)} refused (over the cap: drawn over [search].max_params, never trained, "
           f"not counted), {s.counts['running']} running.", "",
           "![Optimization history](search-history.png)", "",
           "![Per-epoch validation metric of every trial; pruned trials dashed and marked where they stopped]"
           "(search-curves.png)", ""]
    out += ["### Parameter importances", ""]
    if s.importances:
        out += ["| param | importance |", "|---|---:|"]
        out += [f"| `{k}` | {v:.3f} |" for k, v in s.importances.items()]
        out += [""]
    out += [s.importance_note, ""]
    if s.selection is not None:
        return out + _selection_markdown(s) + [""]
    out += ["### The top configurations, confirmed on test", "",
            "Each trained again with every seed of [study].seeds on the same training images (the validation "
            "split still held out) and evaluated on test: mean [95% t-interval] over seeds.", "",
            "| configuration | parameters | seeds | final val acc (%) | final test acc (%) |",
            "|---|---:|---:|---:|---:|"]
    out += [f"| `{t.label}` | {t.param_count:,} | {t.seeds} | {_fmt_ci(t.val)} | {_fmt_ci(t.test)} |" for t in s.top]
    return out + [""]


def _selection_markdown(s: SearchSummary) -> list[str]:
    sel = s.selection
    words = "val acc (%)" if s.metric == "val_acc" else "val loss"
    out = ["### Selection over seeds, then the winner refit and tested", "", sel.protocol, "",
           f"| candidate | parameters | search: {words}, 1 seed | selection: {words}, mean [95% CI] | "
           "test acc (%), information only |", "|---|---:|---:|---:|---:|"]
    for i, c in enumerate(sel.candidates, 1):
        label = f"**`{c.label}`** (winner)" if c.winner else f"`{c.label}`"
        search = "–" if c.search is None else f"{c.search:.2f}"
        params = "–" if c.param_count is None else f"{c.param_count:,}"
        out.append(f"| {i}. {label} | {params} | {search} | {_fmt_ci(c.val)} | {_fmt_ci(c.test)} |")
    reused = [f"candidate {i}'s seed {seed} is {source}" for i, c in enumerate(sel.candidates, 1)
              for seed, source in c.reused]
    if reused:
        out += ["", "Reused, not trained again: " + "; ".join(reused) + " (the same configuration, split and seed as "
                "its selection trial, whose values it reproduces)."]
    out += ["", "The test column is for information only: it was computed from the selection trials' kept weights "
                "after the winner had been chosen. Picking among the candidates by it would be biased (it would "
                "choose on the test split, and the figure would then overstate the accuracy).", ""]
    win = next((c for c in sel.candidates if c.winner), None)
    t = next((t for t in s.top if win is not None and t.label == win.label), None)  # the winner as <name> tested it
    if t is not None:
        out += ["The winner's two figures, side by side:", "",
                f"| configuration | selection: {words}, on the search's split | confirmation: test acc (%) |",
                "|---|---:|---:|",
                f"| `{win.label}` | {_fmt_ci(win.val)} ({sel.train_images[0]:,} training images) | "
                f"{_fmt_ci(t.test)} ({sel.train_images[1]:,} training images{', refit' if sel.refit else ''}) |", ""]
    return out


def search_json(s: SearchSummary) -> dict[str, Any]:
    """The search part of summary.json."""
    def ci(xs: tuple[float, ...]) -> Any:
        c = t_interval(xs)
        return None if c is None else [round(v, 4) for v in c]

    return {"study": s.study, "metric": s.metric, "budget": s.budget, "counts": s.counts,
            "best_value": s.history[-1][2] if s.history else None,
            "importances": {k: round(v, 4) for k, v in s.importances.items()},
            "top": [{"label": t.label, "param_count": t.param_count, "seeds": t.seeds,
                     "val_mean_ci95": ci(t.val), "test_mean_ci95": ci(t.test),
                     "test_mean": round(float(np.mean(t.test)), 4) if t.test else None} for t in s.top],
            "selection": None if s.selection is None else {
                "study": s.selection.study, "protocol": s.selection.protocol, "refit": s.selection.refit,
                "train_images": list(s.selection.train_images),
                "candidates": [{"label": c.label, "param_count": c.param_count, "search_value": c.search,
                                "val": list(c.val), "val_mean_ci95": ci(c.val), "test_information": list(c.test),
                                "winner": c.winner,
                                "reused": [{"seed": seed, "from": source} for seed, source in c.reused]}
                               for c in s.selection.candidates]}}

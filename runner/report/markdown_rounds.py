"""The report's section on seeds in rounds: the rule, and what each look found (runner.results.looks)."""
from __future__ import annotations

from typing import Any

from runner.results.looks import RULES, Plan

__all__ = ["rounds_markdown", "rounds_json"]


def _z(z: float | None) -> str:
    return "–" if z is None else f"{z:+.2f}"


def rounds_markdown(p: Plan | None, metric_words: str) -> list[str]:
    """The section, or nothing for a study of a fixed list of seeds."""
    if p is None:
        return []
    r = p.rounds
    state = (f"It stopped after round {p.round} ({p.seeds} seeds): {p.stopped}." if p.stopped is not None else
             f"Round {p.round} ({p.seeds} seeds) has not ended yet: `runner grid` continues it.")
    out = ["## Seeds in rounds", "",
           f"`[study].seeds = {r.text}`: seeds 0 to {r.first - 1} first, then one more seed per round, at most "
           f"{r.max}. The rule: {RULES[r.until]}. Looking after every round this way keeps the chance of a false "
           f"verdict at 5% over all the looks together (the fixed-sample tests above do not count the looks). "
           f"{state}", ""]
    if not p.looks:
        return out
    if r.until == "effects":
        factors = [e.factor for e in p.looks[0].effects]
        head = ["look", "seeds", "boundary", *(f"{f}: z" for f in factors)]
        rows = [[str(i), str(look.seeds), f"{look.bound:.2f}",
                 *(f"{_z(e.z)} {e.verdict}" + (" (can still be decided)" if e.decidable else "")
                   for e in look.effects)]
                for i, look in enumerate(p.looks, 1)]
        last = p.looks[-1].effects
        words = "; ".join(f"{e.factor} {e.verdict}" for e in last)
        tail = [f"Verdicts of the rule after {p.looks[-1].seeds} seeds, on the {metric_words}: {words}. The boundary "
                "is |z| at the first Holm step of that look (0.05 shared by every effect); once an effect is decided, "
                "the others are tested at a larger share, against a lower boundary."]
    else:
        head = ["look", "seeds", "boundary z", "best", "left the race (z of it minus the best)", "still racing"]
        rows = [[str(i), str(look.seeds), f"{-look.bound:.2f}", f"`{look.best}`",
                 ", ".join(f"`{label}` ({_z(z)})" for label, z in look.left) or "none", str(look.racing)]
                for i, look in enumerate(p.looks, 1)]
        tail = []
    table = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *("| " + " | ".join(x) + " |" for x in rows)]
    return out + table + [""] + tail + ([""] if tail else [])


def rounds_json(p: Plan | None) -> dict[str, Any] | None:
    """The rounds for summary.json."""
    if p is None:
        return None
    return {"first": p.rounds.first, "max": p.rounds.max, "until": p.rounds.until, "rule": RULES[p.rounds.until],
            "round": p.round, "seeds": p.seeds, "stopped": p.stopped,
            "looks": [{"seeds": x.seeds, "bound": x.bound, "best": x.best, "racing": x.racing,
                       "left": [{"label": label, "z": z} for label, z in x.left],
                       "effects": [{"factor": e.factor, "estimate": e.estimate, "z": e.z, "verdict": e.verdict,
                                    "decidable": e.decidable} for e in x.effects]} for x in p.looks]}

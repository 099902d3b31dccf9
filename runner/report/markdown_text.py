"""The report's shared Markdown: tables, numbers, p-values, and the sentences and table of effects."""
from __future__ import annotations

import math

import numpy as np

from runner.report.contents import Effect, Report
from runner.results.stats import BOOTSTRAP
from runner.text import toml_value

__all__ = ["METRIC_WORDS", "p_text", "change_text", "power_text", "effect_sentence",
           "effect_lines", "effects_table", "table", "pm",
           "num", "ci_text", "DECIDED", "with_power", "power_names", "power_cells", "test_names", "test_cells",
           "BOOT_WORDS", "power_words", "verdict_name", "several_models"]

METRIC_WORDS = {"test_acc": ("test accuracy", "points"), "test_loss": ("test loss", ""),
                "val_acc": ("validation accuracy", "points"), "val_loss": ("validation loss", "")}


def table(names: list[str], rows: list[list[str]], right: set[int] | None = None) -> str:
    right = right or set()
    lines = ["| " + " | ".join(names) + " |",
             "|" + "|".join("---:" if i in right else "---" for i in range(len(names))) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(lines)


def pm(xs: tuple[float, ...], digits: int = 2) -> str:
    if not xs:
        return "–"
    if len(xs) == 1:
        return f"{xs[0]:.{digits}f}"
    return f"{np.mean(xs):.{digits}f} ± {np.std(xs, ddof=1):.{digits}f}"


def p_text(p: float | None) -> str:
    """A p-value as the report writes it: "p = 0.012", "p < 0.001", or "–" when untested."""
    if p is None:
        return "–"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def num(x: float, metric: str) -> str:
    return f"{x:+.2f}" if metric.endswith("_acc") else f"{x:+.4f}"


def ci_text(ci: tuple[float, float] | None, metric: str) -> str:
    return "–" if ci is None else f"[{num(ci[0], metric)}, {num(ci[1], metric)}]"


def change_text(e: Effect) -> str:
    """An effect's change of setting as text: "off → on", or "a0 → a1, b0 → b1" for an interaction."""
    if isinstance(e.from_, list):
        return ", ".join(f"{toml_value(a)} → {toml_value(b)}" for a, b in zip(e.from_, e.to))
    return f"{toml_value(e.from_)} → {toml_value(e.to)}"


DECIDED = ("improves", "hurts", "worse", "interacts")  # the verdicts that found an effect


def power_text(e: Effect) -> str:
    """What decides an effect, in words: "detectable: ±0.12 points with 3 seeds; 7 seeds would decide it", or
    "...; cannot be decided with this test set: the floor is 0.15 points"; "" without the figures, or where they
    are not defined (a contrast without any spread: nothing is detectable or undetectable there). Never "N seeds
    would decide it" with N the seeds the study has: what one more seed would detect instead."""
    if e.detectable is None or not e.detectable >= 0.005 or not math.isfinite(e.detectable):
        return ""
    out = f"detectable: ±{e.detectable:.2f} points with {e.detectable_seeds} seeds"
    decided = e.verdict in DECIDED
    if e.seeds_needed is None and decided:  # found, though smaller than unlimited seeds find 80% of the time
        return out + (f"; below the floor of this test set, {e.floor:.2f} points: unlimited seeds find an effect "
                      "this small less than 80% of the time")
    if e.seeds_needed is None and e.floor is not None and e.floor >= 0.005:
        return out + f"; cannot be decided with this test set: the floor is {e.floor:.2f} points"
    if e.seeds_needed is None:
        return out
    if decided:
        return out + f"; {e.seeds_needed:,} seeds detect it with 80% power"
    if e.detectable_seeds is not None and e.seeds_needed <= e.detectable_seeds:  # the normal approximation's
        # count is no more than the seeds that did not decide it: say what one more seed would detect instead
        more = e.detectable_seeds + 1
        return out + (f"; with {more} seeds, ±{e.detectable_next:.2f} points" if e.detectable_next else "")
    return out + f"; {e.seeds_needed:,} seeds would decide it"


def with_power(sentence: str, e: Effect) -> str:
    """The sentence with what decides the effect before its full stop, where the report has it."""
    power = power_text(e)
    return f"{sentence[:-1]} ({power})." if power else sentence


def effect_sentence(e: Effect, metric: str, several: bool = False) -> str:
    """One plain sentence that says only what the numbers support, and what would decide it; `several`: the
    study compares more than one model, and the sentence begins with the effect's."""
    words, unit = METRIC_WORDS[metric]
    unit = f" {unit}" if unit else ""
    what = (f"{e.model}: " if several else "") + f"{e.factor} ({change_text(e)})" + (f" at {e.within}" if e.within else "")
    if e.verdict == "too few pairs":
        return f"{what}: too few paired trials ({e.n_pairs}) to tell."
    ci, p = e.decisive  # the bootstrap over seeds and test images where it exists, else the t-test
    numbers = f"{num(e.delta_mean, metric)}{unit} {ci_text(ci, metric)}"
    if e.verdict == "no detectable effect":
        return with_power(f"{what}: no detectable effect on {words} ({numbers}, {p_text(p)}).", e)
    if e.verdict == "hurts":
        return with_power(f"{what} hurts {words}: {numbers} ({p_text(p)}).", e)
    digits = 2 if metric.endswith("_acc") else 4  # improves: the size of the gain and its interval
    lo, hi = sorted(abs(x) for x in ci) if ci else (math.nan, math.nan)
    return with_power(f"{what} improves {words} by {abs(e.delta_mean):.{digits}f}{unit} "
                       f"[{lo:.{digits}f}, {hi:.{digits}f}] ({p_text(p)}).", e)


def effect_lines(effects: list[Effect], metric: str) -> list[str]:
    """Each effect's sentence as a bullet; the effects with too few paired trials to tell, when there are several
    (an exploration of one seed has one per regularizer and budget), in one bullet that names them."""
    several = several_models(effects)
    few = [e for e in effects if e.verdict == "too few pairs"]
    lines = [f"- {effect_sentence(e, metric, several)}" for e in effects if len(few) < 2 or e not in few]
    if len(few) < 2:
        return lines
    changes = ", ".join(dict.fromkeys((f"{e.model}: " if several else "") + f"{e.factor} ({change_text(e)})"
                                      for e in few))
    budgets = list(dict.fromkeys(e.within for e in few if e.within))
    where = f", each at {len(budgets)} budgets" if len(budgets) > 1 else f" at {budgets[0]}" if budgets else ""
    pairs = {e.n_pairs for e in few}
    each = f"{pairs.pop()} each" if len(pairs) == 1 else f"at most {max(pairs)} each"
    return lines + [f"- {len(few)} comparisons, {changes}{where}: too few paired trials ({each}) to tell."]


def effects_table(report: Report, effects: list[Effect] | None = None) -> str:
    """Main effects (or the given interactions) as a Markdown table."""
    effects = report.effects if effects is None else effects
    words, unit = METRIC_WORDS[report.metric]
    model = ["model"] if len({e.model for e in effects}) > 1 else []
    at = ["at"] if any(e.within for e in effects) else []  # one-at-a-time across budgets: where it was compared
    boot = any(e.boot_p is not None for e in effects)
    names = [*model, "factor", "change", *at, f"Δ {words}{' (' + unit + ')' if unit else ''}",
             *test_names(boot), "pairs", verdict_name(boot), *power_names(effects)]
    rows = [[*([e.model] if model else []), _factor_cell(e), change_text(e), *([e.within] if at else []),
             num(e.delta_mean, report.metric),
             *test_cells(e, report.metric, boot), str(e.n_pairs), e.verdict, *power_cells(e, effects)]
            for e in effects]
    first = len(model) + len(at) + 2  # the numeric columns: delta, the tests' CI and p, pairs; then the power figures
    power = set(range(len(names) - len(power_names(effects)), len(names)))
    return table(names, rows, set(range(first, first + len(test_names(boot)) + 2)) | power)


def _factor_cell(e: Effect) -> str:
    """The factor, and what a fraction cannot tell it from: "dropout x batch_norm (= weight_decay x augment)"."""
    return e.factor + (f" (= {' = '.join(e.aliases)})" if e.aliases else "")


def power_names(effects: list[Effect]) -> list[str]:
    """The power figures' column names: "detectable at 3 seeds (points)" when every row has 3, "seeds needed"."""
    if not any(e.detectable is not None for e in effects):
        return []
    seeds = {e.detectable_seeds for e in effects if e.detectable is not None}
    at = f"at {seeds.pop()} seeds" if len(seeds) == 1 else "at n seeds"
    return [f"detectable {at} (points)", "seeds needed"]


def power_cells(e: Effect, effects: list[Effect]) -> list[str]:
    if not power_names(effects):
        return []
    if e.detectable is None or not e.detectable >= 0.005:  # not defined: a contrast without any spread
        return ["–", "–"]
    several = len({x.detectable_seeds for x in effects if x.detectable is not None}) > 1
    detectable = f"±{e.detectable:.2f}" + (f" at {e.detectable_seeds}" if several else "")
    decided = e.verdict in DECIDED
    n = e.detectable_seeds or 0
    if e.seeds_needed is not None and not decided and e.seeds_needed <= n:  # as power_text: not "n would decide"
        needed = f"more than {n}"
    elif e.seeds_needed is not None:
        needed = f"{e.seeds_needed:,}"
    elif e.floor is None or e.floor < 0.005:
        needed = "–"
    else:
        needed = f"below the floor, {e.floor:.2f}" if decided else f"cannot be decided: floor {e.floor:.2f}"
    return [detectable, needed]


def verdict_name(boot: bool) -> str:
    """The verdict column's name, saying which test gave it when the table shows two."""
    return "verdict (seeds + test images)" if boot else "verdict"


def several_models(effects: list[Effect]) -> bool:
    """Whether the effects are of more than one model (each sentence then names its own)."""
    return len({e.model for e in effects}) > 1


def test_names(boot: bool) -> list[str]:
    if not boot:
        return ["95% CI", "p (Holm)"]
    return ["95% CI, seeds", "p (Holm), seeds", "95% CI, seeds + test images", "p (Holm), seeds + test images"]


def test_cells(e: Effect, metric: str, boot: bool) -> list[str]:
    p = lambda x: p_text(x).removeprefix("p = ").removeprefix("p ")  # noqa: E731
    cells = [ci_text(e.ci95, metric), p(e.p_value)]
    return cells + [ci_text(e.boot_ci95, metric), p(e.boot_p)] if boot else cells


BOOT_WORDS = (f" The t-test treats the test set as the whole world; beside it, a bootstrap ({BOOTSTRAP:,} "
               "resamples) draws the seed pairs and the test images with replacement, from every trial's stored "
               "predictions, so its interval also counts that the test images are a sample. The verdicts, and the "
               "sentences below, use the bootstrap.")


_POWER_WORDS = (" The last two columns say what would decide each verdict: the smallest effect these seeds detect "
                "80% of the time at the level Holm's correction tested it at, and the fewest seeds that would detect "
                "the effect observed; where even unlimited seeds could not (the test images alone set a floor, the "
                "smallest effect they can resolve, at or above it), it cannot be decided with this test set. Both "
                "come from splitting each contrast's variance into a part that shrinks with seeds and a part, the "
                "test images', that does not (a normal approximation, and a rough one with few seeds; docs/report.md, "
                "\"How many seeds?\").")


def power_words(effects: list[Effect], said: bool = False) -> str:
    """The paragraph on the power figures where a table has them; a pointer back when it was `said` above."""
    if not any(e.detectable is not None for e in effects):
        return ""
    return " The last two columns say what would decide each verdict, as above." if said else _POWER_WORDS

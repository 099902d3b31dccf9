"""The report's text for a study against a baseline: whether its verdicts are confirmatory, each setting against
the baseline (and the tuned baseline), how each configuration fits, and what an exploration chooses."""
from __future__ import annotations

from runner.report.choose import FIT_RULE
from runner.report.contents import Report
from runner.report.markdown_text import (BOOT_WORDS, METRIC_WORDS, effect_lines, effects_table, num, power_words,
                                         several_models, table)
from runner.results.stats import ALPHA
from runner.text import toml_value

__all__ = ["plan_lines", "baseline_section", "fit_section", "choice_section"]


def plan_lines(report: Report) -> list[str]:
    """The report's first lines: **Confirmatory** or **Exploratory**, and why (runner.plan.status)."""
    if report.plan is None:
        return []
    kind = "Confirmatory" if report.plan.confirmatory else "Exploratory"
    why = report.plan.why.split(": ", 1)[1]
    out = [f"**{kind}.** {why[0].upper()}{why[1:]}."]
    if report.held_out == "val":
        out.append("Every verdict below is on the validation split; no test image was loaded.")
    return [" ".join(out), ""]


def baseline_section(report: Report) -> list[str]:
    """Each setting against the baseline at the same budget; then, where there is one, against the tuned baseline."""
    words = METRIC_WORDS[report.metric][0]
    out = ["## Each against the baseline", ""]
    if not report.effects:
        return out + ["Nothing is compared: the spec gives no setting beside the baseline.", ""]
    boot = any(e.boot_p is not None for e in report.effects)
    out += [f"Each setting's final {words} minus the baseline's, trained the same way (same budget, same seed): the "
            f"mean of the paired differences, a 95% t-interval and a paired t-test, Holm-corrected over the "
            f"{len(report.effects)} comparisons; verdicts at corrected p < {ALPHA}."
            + (BOOT_WORDS.replace("test images", "held-out images") if report.held_out == "val" and boot else
               BOOT_WORDS if boot else "")
            + power_words(report.effects, said=any(e.detectable is not None for e in report.versus_best)), ""]
    out += [effects_table(report), ""]
    out += [*effect_lines(report.effects, report.metric), ""]
    if any(f.kind == "effects" for f in report.figures):
        out += ["![Each against the baseline](effects.png)", ""]
    if report.versus_tuned:
        out += ["### Against the tuned baseline", "",
                "The baseline at its own best budget (the [[runs]] entry with baseline = \"tuned\"), against which a "
                "regularizer must also win to be worth its cost over simply training the baseline well: each "
                f"setting minus the tuned baseline, paired by seed, Holm-corrected over the {len(report.versus_tuned)} "
                "comparisons.", "", effects_table(report, report.versus_tuned), ""]
        out += [*effect_lines(report.versus_tuned, report.metric), ""]
    return out


def fit_section(report: Report) -> list[str]:
    """Over- and underfitting, each configuration's, in a table and in words."""
    if not report.fits:
        return []
    held = "validation" if report.held_out == "val" else "test"
    rows = [[f"`{f.label}`", f"{f.train_acc:.2f}", f"{f.held_acc:.2f}", f"{f.gap:+.2f}", str(f.best_epoch),
             str(f.last_epoch), f"{100 * f.rise:+.0f}%", f.verdict] for f in report.fits]
    out = ["## Overfitting and underfitting", "",
           f"Means over seeds. Train accuracy is as trained: on the training batches as seen in the last epoch, "
           f"augmented and with dropout on. The rule: {FIT_RULE}.", "",
           table(["configuration", "train acc (%)", f"{held} acc (%)", f"train − {held} (points)",
                  f"lowest {held} loss at epoch", "of", f"final {held} loss vs lowest", "fit"], rows,
                 {1, 2, 3, 4, 5, 6}), ""]
    for verdict, words in (("overfits", "Overfit"), ("underfits", "Underfit")):
        mine = [f"`{f.label}`" for f in report.fits if f.verdict == verdict]
        if mine:
            out.append(f"- {words}: {', '.join(mine)}.")
    if not any(f.verdict != "neither" for f in report.fits):
        out.append("- None overfits or underfits by this rule.")
    return out + [""]


def choice_section(report: Report) -> list[str]:
    """The budget and strengths the exploration chooses, by its stated rule; how to write the confirmation."""
    c = report.choice
    if c is None:
        return []
    words = METRIC_WORDS[report.metric][0]
    budget = " ".join(f"{a}={toml_value(v)}" for a, v in c.budget.items())
    tuned = " ".join(f"{a}={toml_value(v)}" for a, v in c.tuned.items())
    out = ["## The budget and strengths this exploration chooses", "",
           "The rule, stated before the exploration's results were read:", "", *(f"- {r}." for r in c.rule), "",
           table(["budget", f"baseline's {words}", f"mean of the {c.budgets[0][3]} compared settings", ""],
                 [[b, f"{base:.2f}" if base is not None else "–", f"{reg:.2f}" if reg is not None else "–",
                   "chosen" if b == budget else "tuned baseline's" if b == tuned else ""]
                  for b, base, reg, _ in c.budgets], {1, 2}), "",
           table(["setting", f"best {words}", "at"], [[s, f"{v:.2f}", at] for s, v, at in c.settings], {1}), "",
           f"- The budget: **{budget}**; the tuned baseline's: **{tuned}**."]
    out += [f"- `{m}` does best at {' '.join(f'{a}={toml_value(v)}' for a, v in b.items())} ({v:.2f})."
            for m, b, v in c.models]
    kept = ", ".join(f"{f} = {toml_value(v)} ({num(d, report.metric)})" for f, v, d in c.kept)
    out.append(f"- Kept (difference from the baseline at the chosen budget): {kept or 'none'}.")
    stack = ", ".join(f"{f} = {toml_value(v)}" for f, v in c.stack)
    out.append(f"- The stack: {stack or 'none (fewer than two kept)'}.")
    out += ["", f"`runner confirmation {report.spec_path}` writes the confirmatory spec from these stored results, "
            "by this rule; its test set is open and its plan is stored before its first trial.", ""]
    return out

"""The report as text: Markdown tables and sentences, the full report, the README's summary."""
from __future__ import annotations

import json
from typing import Any

from runner.models.counts import COLUMNS
from runner.models.diagram import diagram_file
from runner.report.contents import REPORT_FILE, AtChance, Effect, Known, Report
from runner.report.markdown_mistakes import mistakes_markdown
from runner.report.markdown_plan import baseline_section, choice_section, fit_section, plan_lines
from runner.report.markdown_rounds import rounds_markdown
from runner.report.markdown_search import search_markdown
from runner.report.markdown_teacher import teacher_section, untaught_section
from runner.report.outputs import output_line, output_paragraph
from runner.report.markdown_text import (BOOT_WORDS, METRIC_WORDS, ci_text, effect_lines, effect_sentence,
                                         effects_table, num, p_text, pm, power_cells, power_names, power_text, power_words, table,
                                         test_cells, test_names, with_power, change_text, verdict_name,
                                         several_models)
from runner.results.stats import ALPHA
from runner.spec import REGULARIZERS
from runner.text import toml_literal, toml_value

__all__ = ["METRIC_WORDS", "effect_sentence", "interaction_sentence", "comparison_table", "effects_table",
           "render_markdown", "render_summary", "p_text", "change_text", "power_text", "chance_sentence"]


# ---------------------------------------------------------------- Markdown


def interaction_sentence(e: Effect, metric: str) -> str:
    """What an interaction contrast means, in words."""
    words, unit = METRIC_WORDS[metric]
    unit = f" {unit}" if unit else ""
    (a, b), (a0, b0), (a1, b1) = e.factor.split(" x "), e.from_, e.to
    more = "larger" if e.delta_mean > 0 else "smaller"
    ci, p = e.decisive
    twins = f"; the design cannot tell it from {' or '.join(e.aliases)}" if e.aliases else ""
    return (f"The change in {words} from {a} {toml_value(a0)} → {toml_value(a1)} "
            f"is {abs(e.delta_mean):.{2 if unit else 4}f}"
            f"{unit} {more} with {b}={toml_value(b1)} than with {b}={toml_value(b0)} "
            f"{ci_text(ci, metric)} ({p_text(p)}{twins}).")


def _known_sentence(k: Known) -> str:
    diff = k.mean - k.reference
    spread = f"{k.lo:.2f}–{k.hi:.2f}%" if k.seeds > 1 else f"{k.lo:.2f}% (one seed: no spread)"
    within = "within" if k.lo <= k.reference <= k.hi else "outside"
    std = f" ± {k.std:.2f}" if k.std is not None else ""
    text = (f"LeNet-5 with every regularizer off (`{k.label}`) reaches {k.mean:.2f}{std}% test accuracy "
            f"over {k.seeds} seed{'s' if k.seeds != 1 else ''} ({100 - k.mean:.2f}% error), "
            f"{abs(diff):.2f} points {'above' if diff > 0 else 'below'} the {k.reference:.2f}% "
            f"({100 - k.reference:.2f}% error) of {k.reference_model} in {k.source}; the published figure lies "
            f"{within} the seed spread ({spread}).")
    if not k.full_data:
        text += (f" These trials did not use all of {k.dataset}'s official 60,000 training and 10,000 test "
                 "images, so the comparison with the published figure does not hold.")
    return text


def _config_rows(report: Report) -> tuple[list[str], list[list[str]], set[int]]:
    val = any(c.final_val for c in report.configs)
    tested = report.held_out == "test"  # a locked study has no test column at all
    names = ["#", "model", *report.axes, "parameters", "seeds", *(["final val acc (%)"] if val else []),
             *(["final test acc (%)", "best test acc (%)", "final test loss", "train − test (points)"] if tested else
               ["final val loss", "train − val (points)"]), "s / epoch", "peak MB"]
    rows = []
    for i, c in enumerate(report.configs, 1):
        held = [pm(c.final_acc), pm(c.best_acc), pm(c.final_loss, 4)] if tested else \
            [f"{c.curves['test_loss'].mean[-1]:.4f}" if c.curves["test_loss"].epochs else "–"]
        rows.append([str(i), c.model, *(toml_value(c.params.get(a, "")) for a in report.axes),
                     f"{c.param_count:,}", str(len(c.seeds)), *([pm(c.final_val)] if val else []),
                     *held, pm(c.gap),
                     "–" if c.seconds_per_epoch is None else f"{c.seconds_per_epoch:.1f}",
                     "–" if c.peak_memory_mb is None else f"{c.peak_memory_mb:,.0f}"])
    first_number = 2 + len(report.axes)
    return names, rows, {0, *range(first_number, len(names))}


def comparison_table(report: Report) -> str:
    """Every configuration, best first by the study's metric."""
    names, rows, right = _config_rows(report)
    return table(names, rows, right)


def _answer(report: Report) -> list[str]:
    best = report.configs[0]
    words, _ = METRIC_WORDS[report.metric]
    value = pm(best.final, 2 if report.metric.endswith("_acc") else 4) + ("%" if report.metric.endswith("_acc") else "")
    lines = [f"- Best configuration: `{best.label}`, {value} final {words} "
             f"({len(best.seeds)} seed{'s' if len(best.seeds) != 1 else ''}, {best.param_count:,} parameters)."]
    lines += [f"- {chance_sentence(a, report.held_out)}" for a in report.at_chance]
    if report.known:
        lines.append(f"- {_known_sentence(report.known)}")
    if report.versus_best:
        lines.append(f"- {_runner_up_sentence(report)}")
    lines += effect_lines(report.effects, report.metric)
    if report.choice is not None:
        budget = " ".join(f"{a}={toml_value(v)}" for a, v in report.choice.budget.items())
        lines.append(f"- The budget this exploration chooses for its confirmation: {budget}, by the rule stated "
                     "before its results were read ([The budget and strengths this exploration chooses]"
                     "(#the-budget-and-strengths-this-exploration-chooses)).")
    return lines


def chance_sentence(a: AtChance, held: str = "test") -> str:
    """A configuration at or near chance, named as such, with the likely causes the runner knows of."""
    split = "test" if held == "test" else "validation"
    seeds = f" over {len(a.accuracy)} seeds ({', '.join(f'{x:.2f}%' for x in a.accuracy)})" if len(a.accuracy) > 1 \
        else ""
    text = (f"`{a.label}` is at or near chance: {sum(a.accuracy) / len(a.accuracy):.2f}% final {split} accuracy"
            f"{seeds}, where a uniform guess gets {a.chance:.2f}% ({a.classes} classes).")
    if not a.causes:
        return text + (" The runner finds none of the causes it knows (a softmax at the end of the forward, a NaN "
                       "loss, a training loss that rose).")
    return text + f" Likely cause{'s' if len(a.causes) > 1 else ''}: {'; '.join(a.causes)}."


def _runner_up_sentence(report: Report) -> str:
    e = report.versus_best[0]
    words, unit = METRIC_WORDS[report.metric]
    unit = f" {unit}" if unit else ""
    ahead = "ahead of" if (e.delta_mean < 0) == (report.direction == "maximize") else "behind"
    if e.verdict == "too few pairs":
        return f"The runner-up `{e.to}`: too few paired seeds ({e.n_pairs}) to tell the two apart."
    digits = 2 if report.metric.endswith("_acc") else 4
    ci, p = e.decisive
    how = "paired by seed, seeds and test images resampled" if e.boot_p is not None else "paired by seed"
    text = (f"The best is {ahead} the runner-up `{e.to}` by {abs(e.delta_mean):.{digits}f}{unit} of {words} "
            f"(runner-up minus best {ci_text(ci, report.metric)}, {p_text(p)}, {how})")
    text += ": a real difference." if e.verdict == "worse" else ": the two cannot be told apart."
    return with_power(text, e)


def versus_best_table(report: Report) -> str:
    """Each configuration minus the best, paired by seed."""
    words, unit = METRIC_WORDS[report.metric]
    boot = any(e.boot_p is not None for e in report.versus_best)
    names = ["configuration", f"Δ final {words} vs best{' (' + unit + ')' if unit else ''}", *test_names(boot),
             "pairs", verdict_name(boot), *power_names(report.versus_best)]
    rows = [[f"`{e.to}`", num(e.delta_mean, report.metric), *test_cells(e, report.metric, boot), str(e.n_pairs),
             e.verdict, *power_cells(e, report.versus_best)]
            for e in report.versus_best]
    power = set(range(len(names) - len(power_names(report.versus_best)), len(names)))
    return table(names, rows, set(range(1, len(test_names(boot)) + 3)) | power)


def render_markdown(report: Report) -> str:
    """The full report as Markdown; figures are linked by file name, beside the report."""
    m = report.metric
    out = [f"# {report.study}: {report.description}" if report.description else f"# {report.study}", ""]
    out += plan_lines(report)  # first: whether the verdicts below are confirmatory
    out += [f"> Note: {n}" for n in report.notes] + ([""] if report.notes else [])
    out += [f"Generated by `runner report {report.spec_path}` from {sum(len(c.seeds) for c in report.configs)} "
            f"complete trials in {len(report.configs)} configurations; ranked by final {METRIC_WORDS[m][0]}.", ""]
    out += ["## The answer", "", *_answer(report), ""]
    if report.search is not None:  # the winner, as the user would write it
        out += ["The best configuration as a `[[runs]]` entry, to paste into a spec:", "", "```toml",
                *runs_entry(report.configs[0]), "```", ""]
    out += ["## Setup", "", "### Data", "", table(["item", "value"], [list(r) for r in report.data]), ""]
    out += ["### Training", "", table(["key", "value"], [list(r) for r in report.train]), "",
            f"Seeds: {', '.join(map(str, report.seeds))} ({len(report.seeds)}); every configuration "
            f"runs once per seed.", ""]
    out += [x for n in report.outputs for x in (output_paragraph(n, report.held_out), "")]
    out += ["### Provenance", "", table(["item", "value"], [list(r) for r in report.provenance]), ""]
    out += teacher_section(report)
    out += ["## Parameter counts", ""]
    out += ["Each layer's output shape is for one image; a formula counts weights then biases "
            "(`+1`); batch norm has a scale and a shift per channel.", ""]
    for t in report.param_tables:
        out += [f"### {t.title}", "", table(COLUMNS, t.cells(), {len(COLUMNS) - 1}), ""]
        out += [t.unused_line()[0].upper() + t.unused_line()[1:] + ".", ""] if t.unused_line() else []
        out += [f"Total: **{t.total:,}** parameters.", "", f"![{t.title}]({diagram_file(t)})", ""]
        out += [x for n in report.outputs if n.model == t.model for x in (output_line(n), "")]
    out += ["## Comparison", "",
            "Every configuration, best first; mean ± std over seeds. Train accuracy is the running "
            "accuracy on the training batches as seen during the last epoch (augmented, dropout on), "
            f"not a clean evaluation, so the train − {'validation' if report.held_out == 'val' else 'test'} gap "
            "is only a rough measure of overfitting.",
            "", comparison_table(report), ""]
    if report.versus_best:
        out += ["### Against the best configuration", "",
                f"Each configuration's final {METRIC_WORDS[m][0]} minus the best's (`{report.configs[0].label}`), "
                f"paired by seed: mean, 95% t-interval and paired t-test, Holm-corrected over the "
                f"{len(report.versus_best)} comparisons." + (BOOT_WORDS if any(
                    e.boot_p is not None for e in report.versus_best) else "") + power_words(report.versus_best), "",
                versus_best_table(report), ""]
        out += _power_note(report)
    if report.search is not None:
        out += search_markdown(report.search)
    out += mistakes_markdown(report.mistakes, "The test set is locked: no confusion matrix, no gallery of mistakes "
                             "(they are of test images)." if report.held_out == "val" else
                             "No trial of this study stored its predictions (they are kept "
                             "since runner kept them): no confusion matrix, no gallery of mistakes.")
    out += _curves_section(report)
    left_out = []
    if report.known or report.search is None:
        out += ["## Known accuracy: LeNet-5 against a published figure", ""]
    else:
        left_out.append("a comparison with a published figure (no confirmed configuration is LeNet-5 with every "
                        "regularizer off)")
    if report.known:
        stands = (f"`{report.known.label.split()[0]}` stands for LeNet-5 here: {report.known.stands_for}." if
                  report.known.stands_for else "")
        out += [_known_sentence(report.known), "", *([stands, ""] if stands else []), report.known.note, ""]
    elif report.search is None:
        dataset = dict(report.data).get("dataset", "?")
        why = ("it is the user's own data, for which no published figure applies" if dataset == "user" else
               "the test set is locked: the published figure is a test accuracy, for the confirmation to compare"
               if report.held_out == "val" else "there is either no complete LeNet-5 trial with every regularizer off, or no figure the runner "
               "knows of for this dataset")
        out += [f"Nothing is compared for `{dataset}` data: {why}.", ""]
    if report.against_baseline:
        out += baseline_section(report)
    elif report.effects or report.search is None:
        out += _effects_section(report)
    else:
        left_out.append("the effects of grid factors (a search has no grid)")
    out += untaught_section(report)
    out += fit_section(report) + choice_section(report)
    out += rounds_markdown(report.rounds, METRIC_WORDS[report.metric][0])
    out += _excluded_section(report)
    if left_out:
        out += [f"Left out, as they do not apply to this search: {'; '.join(left_out)}.", ""]
    return "\n".join(out).rstrip() + "\n"


def runs_entry(c: Any) -> list[str]:
    """A configuration as a spec's `[[runs]]` entry, every value as stored (so it trains the same)."""
    lines = ["[[runs]]", f"model = {toml_literal(c.model)}"]
    lines += [f"{json.dumps(k) if '.' in k else k} = {toml_literal(v)}" for k, v in c.params.items() if v is not None]
    return lines


def _curves_section(report: Report) -> list[str]:
    out = ["## Learning curves", "",
           "Mean over seeds; the band spans the minimum and maximum over seeds.", ""]
    for f in report.figures:
        if f.kind == "curves":
            labels = [report.config(k).label for k in f.keys]
            title = f.title if len(f.keys) > 1 else f"`{f.title}`"
            out += [f"### {title}", ""]
            if len(f.keys) > 1:
                out += [f"Compared: {', '.join(f'`{x}`' for x in labels)}.", ""]
            out += [f"![{f.title}]({f.file})", ""]
            shown = {report.config(k).model for k in f.keys}
            out += [x for n in report.outputs if n.model in shown for x in (output_line(n), "")]
    return out


def _power_note(report: Report) -> list[str]:
    """One line where a loss-ranked study leaves the power figures out, in the first section with effects."""
    first = report.versus_best or report.effects
    if report.metric.endswith("_acc") or not first or any(e.detectable is not None for e in first):
        return []
    return [f"What would decide each verdict (the detectable effect, the seeds needed) is left out: it splits each "
            f"test image's right or wrong, and this study is ranked by {METRIC_WORDS[report.metric][0]}.", ""]


def _effects_intro(report: Report, words: str, models: str) -> str:
    """How the main effects were estimated: paired differences in a full grid, contrasts over a fraction's runs."""
    tests = (f"a 95% t-interval and a paired t-test, Holm-corrected over the {len(report.effects)} "
             f"comparisons; verdicts at corrected p < {ALPHA}.")
    if report.fraction is None:
        return (f"Main effect of each grid factor on the final {words}, on the trials of {models} at grid "
                "settings: the mean of paired differences (each value minus the factor's first, same seed, "
                "every other param equal), " + tests)
    f = report.fraction
    return (f"The grid is a fraction ({f.lines[0]}), so no two of its settings differ in one factor only. Main "
            f"effect of each grid factor on the final {words}, on the trials of {models} at the fraction's "
            "settings: a contrast over its runs, per seed the mean of the runs at the factor's value minus the "
            "mean of those at its first (the pairs are the seeds that ran every setting), with "
            + tests.replace("a paired t-test", "a t-test over seeds"))


def _aliased(report: Report) -> list[str]:
    """A fraction's aliased sets, each once, as a list after the effects' introduction."""
    if report.fraction is None or not report.fraction.lines[1:]:
        return []
    return ["What this design cannot tell apart, each set once (an estimate of one mixes in the others):", "",
            *(f"- {line}" for line in report.fraction.lines[1:]), ""]


def _interactions_intro(report: Report) -> list[str]:
    """What the interactions are; for a fraction, which it leaves out as aliased with a main effect."""
    n = len(report.interactions)
    if report.fraction is None:
        return [f"Two-way interactions, (on, on) − (on, off) − (off, on) + (off, off) paired by seed and the "
                f"other params, Holm-corrected over the {n} tested.", ""]
    left = report.fraction.left_out
    out = ([f"Left out, as the design aliases each with a main effect: {', '.join(left)}."] if left else [])
    if n:
        out.insert(0, "Two-way interactions the design does not alias with a main effect, each a contrast over "
                      "the runs, (on, on) − (on, off) − (off, on) + (off, off) per seed, one for each set of "
                      f"interactions the design cannot tell apart; Holm-corrected over the {n} tested.")
    return [" ".join(out), ""]


def _effects_section(report: Report) -> list[str]:
    words = METRIC_WORDS[report.metric][0]
    regularizers_only = all(e.factor in REGULARIZERS for e in report.effects)
    out = ["## Do the regularizers help?" if regularizers_only else "## What each grid factor changes", ""]
    if not report.effects:
        return out + ["The grid has no factor with two or more values: no effects to estimate.", ""]
    models = ", ".join(f"`{m}`" for m in dict.fromkeys(e.model for e in report.effects))
    out += [_effects_intro(report, words, models) + (BOOT_WORDS if any(
                e.boot_p is not None for e in report.effects) else "")
            + power_words(report.effects, said=any(e.detectable is not None for e in report.versus_best)), ""]
    out += _aliased(report)
    out += [effects_table(report), ""]
    out += [] if report.versus_best else _power_note(report)
    out += effect_lines(report.effects, report.metric)
    out += [""]
    if any(f.kind == "effects" for f in report.figures):
        out += ["![Main effects](effects.png)", ""]
    out += ["### Interactions", ""]
    if not report.interactions:
        if report.fraction is not None and report.fraction.left_out:
            return out + [f"None can be estimated: this resolution-{report.fraction.resolution} design aliases every "
                          f"two-way interaction with a main effect ({', '.join(report.fraction.left_out)}).", ""]
        return out + ["Fewer than two factors: no interactions to test.", ""]
    shown = [e for e in report.interactions if e.decisive[1] is not None and e.decisive[1] < ALPHA]
    out += _interactions_intro(report)
    if not shown:
        return out + [f"None has corrected p < {ALPHA}.", ""]
    out += [effects_table(report, shown), ""]
    out += [f"- {interaction_sentence(e, report.metric)}" for e in shown]
    return out + [""]


def _excluded_section(report: Report) -> list[str]:
    out = ["## Trials left out", ""]
    if not report.excluded:
        return out + ["None: every stored trial is complete and in the statistics.", ""]
    rows = [[str(x.number), x.state, x.label, "–" if x.seed is None else str(x.seed), x.reason]
            for x in report.excluded]
    return out + ["Failed, interrupted, running or duplicate trials, and trials stored with a config or code the "
                  "spec no longer gives; none of them is in the statistics above.", "",
                  table(["trial", "state", "label", "seed", "reason"], rows, {0, 3}), ""]


def render_summary(report: Report, link: str) -> str:
    """The README's summary: answer, comparison, effects, key figures; `link` is the report's folder."""
    prefix = "" if link in ("", ".") else link.rstrip("/") + "/"
    out = [f"**{report.description or report.study}** (study `{report.study}`)", "", *_answer(report), "",
           comparison_table(report), ""]
    if report.effects:
        out += [effects_table(report), ""]
    for f in report.figures:
        if f.file in ("compare.png", "effects.png"):
            out += [f"![{f.title}]({prefix}{f.file})", ""]
    out += [f"Full report: [{prefix}{REPORT_FILE}]({prefix}{REPORT_FILE})"]
    return "\n".join(out).strip() + "\n"


# ---------------------------------------------------------------- JSON

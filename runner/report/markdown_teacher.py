"""The report's text for a distilled study: its teacher, named, and each taught configuration against the same
student untaught."""
from __future__ import annotations

from runner.report.contents import Report
from runner.report.markdown_text import BOOT_WORDS, METRIC_WORDS, effect_lines, effects_table, power_words
from runner.results.stats import ALPHA

__all__ = ["teacher_section", "untaught_section"]

LOSS_WORDS = ("A taught trial's loss is (1 − w)·CE(student, labels) + w·T²·KL(softmax(teacher/T) ‖ softmax(student/T)) "
              "(Hinton, Vinyals & Dean 2015), with w = `distill_weight` and T = `distill_temperature`; its train loss "
              "is that mixture, not comparable with an untaught trial's: compare accuracies.")


def teacher_section(report: Report) -> list[str]:
    """Who taught: where the teacher came from, its size, what its trials stored and what it scores here."""
    t = report.teacher
    if t is None:
        return []
    members = len(t.get("sha256", []))
    size = f"{t['parameters']:,} parameters" if t.get("parameters") else "its size not known"
    stored = (f"; the value its study ranks its trials by: {t['stored']}" + (" (their mean)" if members > 1 else "")
              if t.get("stored") else "")
    measured = t.get("measured", {})
    here = ", ".join(f"{v:.2f}% on this study's {'validation' if k == 'val_acc' else 'test'} images"
                     for k, v in measured.items())
    ensemble = f"an ensemble of {members} models (the mean of their softened outputs), " if members > 1 else ""
    return ["## The teacher", "",
            f"The taught configurations learned from `{t['from']}`: {ensemble}{size}{stored}"
            + (f"; {here}" if here else "") + ". Its weights' SHA-256 "
            + ", ".join(f"`{s[:12]}`" for s in t.get("sha256", [])) + " are part of each taught trial's config hash.",
            "", LOSS_WORDS, ""]


def untaught_section(report: Report) -> list[str]:
    """Each taught configuration minus the same student untaught, paired by seed."""
    if report.teacher is None:
        return []
    out = ["### Taught against untaught", ""]
    if not report.versus_untaught:
        return out + ["No configuration here is taught and also stored untaught (the same student with "
                      "distill_weight = 0): nothing is compared.", ""]
    words = METRIC_WORDS[report.metric][0]
    boot = any(e.boot_p is not None for e in report.versus_untaught)
    out += [f"Each taught configuration's final {words} minus the same student's untaught (distill_weight = 0, all "
            f"else equal), paired by seed: a 95% t-interval and a paired t-test, Holm-corrected over the "
            f"{len(report.versus_untaught)} comparisons; verdicts at corrected p < {ALPHA}."
            + (BOOT_WORDS if boot else "") + power_words(report.versus_untaught), "",
            effects_table(report, report.versus_untaught), "", *effect_lines(report.versus_untaught, report.metric), ""]
    return out

"""The report's section on where the models are wrong: confusion matrices, accuracy per class, the gallery."""
from __future__ import annotations

from runner.report.contents import Mistakes

__all__ = ["mistakes_markdown"]


def mistakes_markdown(m: Mistakes | None, note_if_none: str) -> list[str]:
    """The report's section on where the models are wrong."""
    out = ["## Where the models are wrong", ""]
    if m is None:
        return out + [note_if_none, ""]
    out += ["From every trial's predicted class for every test image, counted over the seeds of each "
            "configuration. The confusion matrices count the mistakes by true class (rows) and predicted class "
            "(columns), summed over the seeds; the diagonal (the images it gets right) is left white.", "",
            "![Confusion matrices](confusion.png)", ""]
    names = ["class", *(f"{v.role}: `{v.label}`" for v in m.views)]
    rows = [[m.names[c], *(f"{v.per_class[c]:.2f}" for v in m.views)] for c in range(len(m.names))]
    out += ["Accuracy per class (%), mean over seeds:", "",
            "| " + " | ".join(names) + " |", "|---|" + "---:|" * len(m.views)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    out += [""]
    g = m.gallery
    if g is not None:
        also = ("" if g.baseline_too is None else
                f"; the baseline `{g.baseline}` (same seed) also gets {g.baseline_too:,} of them wrong")
        out += ["### The test images the best configuration gets wrong", "",
                f"`{g.label}`, seed {g.seed}, gets {g.wrong:,} of the {g.total:,} test images wrong{also}. "
                f"The {len(g.shown)} it was most sure of, most confident first:", ""]
        if g.images is not None:
            out += ["![The best configuration's mistakes](mistakes.png)", ""]
    if m.gallery_note:
        out += [m.gallery_note, ""]
    return out

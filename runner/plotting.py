"""How every figure is drawn and saved: matplotlib's default style, PNG bytes at a fixed DPI.

The same inputs give byte-identical files (no date or software version in the PNG).
"""
from __future__ import annotations

import io
from typing import Any, Callable

__all__ = ["DPI", "png", "style", "render", "text_inches", "wrap", "ink"]

DPI = 100  # fixed, so that figures are byte-identical from run to run


def png(fig: Any) -> bytes:
    """A matplotlib figure as PNG bytes, without metadata that would change from run to run."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def style() -> Any:
    """A context with matplotlib's default style and the Agg backend, whatever the user's matplotlibrc."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.style
    return matplotlib.style.context("default")


def render(build: Callable[..., Any], *args: Any) -> bytes:
    """The figure `build(*args)` returns, built and drawn in `style()`, as PNG bytes.

    Tick labels and layout are made when the figure is drawn, so drawing too must happen in the style.
    """
    with style():
        return png(build(*args))


def text_inches(text: str, size: float, weight: str = "normal", family: str = "sans-serif") -> float:
    """How wide matplotlib draws the widest line of `text` at `size` points, in inches (to size a figure to it)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import text_to_path

    font = FontProperties(family=family, size=size, weight=weight)
    # widths come in points (1/72 inch), whatever the figure's DPI
    return max(text_to_path.get_text_width_height_descent(line, font, ismath=False)[0]
               for line in text.split("\n")) / 72


def wrap(text: str, inches: float, size: float, weight: str = "normal", family: str = "sans-serif") -> str:
    """`text` with its lines broken between words so that each fits in `inches` at `size` points.

    A word wider than `inches` stays whole on a line of its own; a no-break space joins words that must stay together.
    """
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            longer = f"{line} {word}" if line else word
            if line and text_inches(longer, size, weight, family) > inches:
                lines.append(line)
                longer = word
            line = longer
        lines.append(line)
    return "\n".join(lines)


def ink(rgb: tuple[float, ...]) -> str:
    """The colour to write on a background of `rgb`: black or white, whichever contrasts more with it.

    By relative luminance as WCAG 2 defines it; the two contrasts are equal at a luminance of about 0.18.
    """
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb[:3]]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return "black" if luminance > 0.179 else "white"

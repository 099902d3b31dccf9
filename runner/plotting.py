"""How every figure is drawn and saved: matplotlib's default style, PNG bytes at a fixed DPI.

The same inputs give byte-identical files (no date or software version in the PNG).
"""
from __future__ import annotations

import io
from typing import Any

__all__ = ["DPI", "png", "style"]

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

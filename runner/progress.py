"""Progress of long work: a tqdm bar over trial-epochs on a terminal, plain lines anywhere else.

On a terminal the bar shows elapsed and remaining time in tqdm's usual form (`[00:12<00:34]`),
the remaining time estimated from the average pace of every epoch measured so far, and the
runner's lines (trial started, epoch metrics) are printed above it. Piped or redirected, output
stays one plain line per event, without a carriage return.
"""
from __future__ import annotations

import sys
from typing import IO, Any

__all__ = ["Progress"]


class Progress:
    """Log lines and a count of trial-epochs done, as one object the grid reports to."""

    def __init__(self, stream: IO[str] | None = None, bar: bool | None = None, quiet: bool = False,
                 unit: str = "trial-epoch"):
        """
        Args:
            stream: where to write (stderr by default).
            bar: draw a bar; None = only when `stream` is a terminal.
            quiet: neither lines nor bar.
        """
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.bar = (not quiet) and (self.stream.isatty() if bar is None else bar)
        self.unit = unit
        self._tqdm: Any = None

    def log(self, text: str) -> None:
        """One line, above the bar if there is one."""
        if self.quiet:
            return
        if self._tqdm is not None:
            self._tqdm.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def start(self, total: int, done: int = 0) -> None:
        """Begin counting towards `total` trial-epochs, `done` of them already done."""
        if not self.bar or total <= 0:
            return
        import shutil

        from tqdm import tqdm

        # A terminal that reports no size (0x0, as some ptys do) makes tqdm draw nothing: give it
        # the size shutil settles on ($COLUMNS/$LINES, else 80x24).
        columns, lines = shutil.get_terminal_size()
        # smoothing=0: the rate (and so the time left) is the average over every epoch so far
        self._tqdm = tqdm(total=total, initial=done, file=self.stream, unit=self.unit, smoothing=0,
                          ncols=max(columns, 40), nrows=max(lines, 2), leave=True)

    def advance(self, n: int = 1) -> None:
        """`n` more trial-epochs done (or no longer to do here: run elsewhere, or after a failure)."""
        if self._tqdm is not None and n > 0:
            self._tqdm.update(n)

    def close(self) -> None:
        """End the bar (it stays on screen with its final count and times)."""
        if self._tqdm is not None:
            self._tqdm.close()
            self._tqdm = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

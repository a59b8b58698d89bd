"""What rtstat puts on a live screen that is smaller than what it has to show: a
window of the lines (scrolled with PgUp/PgDn, following the selected row) and, with
``--wide``, lines laid out wider than the terminal and cut at its right edge."""
from __future__ import annotations

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.segment import Segment
from rich.text import Text


class Screen:
    """``renderable`` as the terminal can show it: laid out ``width`` wide (None: the
    terminal's width) and cut at the terminal's edge, ``height`` lines of it from line
    :attr:`top` on, moved so that the selected row (the one drawn in reverse) stays
    in view; a last line says what is above or below.  :attr:`top` after rendering
    is where the window ended up (the caller keeps it for the next frame)."""

    def __init__(self, renderable: RenderableType, height: int, top: int = 0,
                 width: int | None = None, follow: bool = False) -> None:
        self.renderable = renderable
        self.height = max(2, height)
        self.top = max(0, top)
        self.width = width
        self.follow = follow

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        lines = console.render_lines(self.renderable,
                                     options.update(width=self.width or options.max_width,
                                                    height=None), pad=False)
        room = self.height if len(lines) <= self.height else self.height - 1
        if self.follow:
            chosen = [i for i, line in enumerate(lines)
                      if any(seg.style is not None and seg.style.reverse for seg in line)]
            if chosen:
                if chosen[0] < self.top:
                    self.top = chosen[0]
                elif chosen[0] >= self.top + room:
                    self.top = chosen[0] - room + 1
        self.top = max(0, min(self.top, len(lines) - room))
        for line in lines[self.top:self.top + room]:
            yield from Segment.adjust_line_length(line, options.max_width)
            yield Segment.line()
        if room < self.height:
            below = len(lines) - self.top - room
            yield from console.render(Text(
                f"  lines {self.top + 1}-{self.top + room} of {len(lines)}: {self.top} above, "
                f"{below} below (PgUp/PgDn)", style="reverse dim", no_wrap=True,
                overflow="crop"), options)


__all__ = ["Screen"]

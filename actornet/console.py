"""How the ``actornet`` command draws: rich tables and bars on a terminal, the
plain text that scripts parse everywhere else.

A command hands its table (:class:`Rows`) or its progress (:class:`ProgressBar`)
to this module, which alone decides how they look.  On a terminal (the
stream's ``isatty()``) they are :mod:`rich` tables and bars; on a pipe or a
file they are the aligned text ``actornet`` has always printed, so
``actornet workers | awk ...`` keeps working and no log fills with control
characters.  Colour is rich's: it is off when ``$NO_COLOR`` is set (bold and
dim stay, as the convention allows).
"""

import sys

import attrs
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text


def terminal(stream):
    """A rich Console drawing on ``stream`` when it is a terminal, else None
    (the caller then prints plain text)."""
    isatty = getattr(stream, "isatty", None)
    if isatty is None or not isatty():
        return None
    return Console(file=stream, highlight=False)


@attrs.frozen
class Rows:
    """A table to show: column ``titles``, ``cells`` (rows of text), the
    indexes of ``numeric`` columns (right-aligned), and ``styles``, a rich
    style per row ("" for none) that only a terminal shows.

    A title or cell that only a terminal shows (in a table whose plain text
    is drawn otherwise, see :func:`show_table`) may be any rich renderable,
    such as a drawing that fits itself to its column's width."""

    titles: tuple = attrs.field(converter=tuple)
    cells: tuple = attrs.field(converter=lambda rows: tuple(tuple(row) for row in rows))
    numeric: frozenset = attrs.field(default=frozenset(), converter=frozenset)
    styles: tuple = attrs.field(default=(), converter=tuple)


def plain(rows):
    """``rows`` as aligned text, a header line first, trailing spaces cut."""
    lines = [rows.titles, *rows.cells]
    widths = [max(len(line[i]) for line in lines) for i in range(len(rows.titles))]
    return "\n".join(
        "  ".join(cell.rjust(width) if i in rows.numeric else cell.ljust(width)
                  for i, (cell, width) in enumerate(zip(line, widths, strict=True))).rstrip()
        for line in lines)


def rich_table(rows):
    """``rows`` as a rich Table.  Text cells become :class:`~rich.text.Text`,
    so a name holding ``[bold]`` is shown as written, never read as markup.
    On a narrow terminal numbers stay whole and text folds onto more lines
    rather than lose characters."""
    table = Table(header_style="bold")
    for i, title in enumerate(rows.titles):
        table.add_column(title, justify="right" if i in rows.numeric else "left",
                         no_wrap=i in rows.numeric, overflow="fold")
    styles = rows.styles or ("",) * len(rows.cells)
    for row, style in zip(rows.cells, styles, strict=True):
        table.add_row(*(Text(cell) if isinstance(cell, str) else cell for cell in row),
                      style=style or None)
    return table


def show_table(rows, stream=None, *, text=None, console=None):
    """Print ``rows`` on ``stream`` (default stdout): a rich table when it is a
    terminal (or on ``console``, when given), else ``text`` (default: the
    :func:`plain` table)."""
    stream = sys.stdout if stream is None else stream
    console = terminal(stream) if console is None else console
    if console is None:
        print(plain(rows) if text is None else text, file=stream, flush=True)
    else:
        console.print(rich_table(rows))


class ProgressBar:
    """A rich progress bar, redrawn in place, for one transfer or one
    request's counted steps.

    Use :meth:`for_terminal` to get one only when the stream is a terminal.
    The rate is measured on ``clock`` (the client's).  ``in_bytes=False``
    shows plain counts (a handler's ``done`` of ``total`` steps) and no rate.
    Nothing is drawn until the first call, so a transfer that never starts
    leaves the terminal alone.
    """

    def __init__(self, label, console, clock, in_bytes=True):
        counts = ((DownloadColumn(), TransferSpeedColumn()) if in_bytes
                  else (MofNCompleteColumn(),))
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 TaskProgressColumn(), *counts, console=console,
                                 auto_refresh=False, get_time=clock.seconds,
                                 redirect_stdout=False, redirect_stderr=False)
        self.task = self.progress.add_task(label, start=False)
        self.drawing = False

    @classmethod
    def for_terminal(cls, label, clock, stream=None, in_bytes=True):
        """A bar on ``stream`` (default stderr), or None when it is not a terminal."""
        console = terminal(sys.stderr if stream is None else stream)
        return None if console is None else cls(label, console, clock, in_bytes)

    def __call__(self, done, total):
        if not self.drawing:
            self.drawing = True
            self.progress.start()
            self.progress.start_task(self.task)
        self.progress.update(self.task, completed=done, total=total, refresh=True)

    def note(self, line):
        """Print ``line`` above the bar, which stays drawn below it."""
        self.progress.console.print(Text(line))

    def finish(self):
        """Leave the bar as it last stood, with the cursor on the next line."""
        if self.drawing:
            self.progress.stop()

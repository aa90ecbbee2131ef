"""How the actornet command draws: rich tables and bars on a terminal, the plain
text of old on pipes, and no colour under $NO_COLOR."""

import io
import re

import pytest
from rich.console import Console
from twisted.internet.task import Clock

from actornet.commands import route_rows, status_rows, worker_rows
from actornet.console import ProgressBar, Rows, plain, show_table, terminal
from actornet.protocols.stamp import Stamp

SGR = re.compile(r"\x1b\[([0-9;]*)m")


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self):
        return True


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch):
    """Every test starts from a colour terminal 120 columns wide, whatever the
    environment the tests run in says about colour."""
    for name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)

    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("COLUMNS", "120")


def colours(text):
    """The colour codes in ``text``'s SGR sequences (bold and dim are not colours)."""
    codes = [int(code) for params in SGR.findall(text) for code in params.split(";") if code]
    return [code for code in codes if 30 <= code <= 49 or 90 <= code <= 107]


def uncoloured(text):
    return SGR.sub("", text)


def forced(width=120):
    out = io.StringIO()
    return out, Console(file=out, force_terminal=True, width=width, color_system="standard")


WORKERS = [
    {"name": "echo", "services": ["echo", "more"], "dispatcher": "dispatcher",
     "status": "alive", "alive_for": 1.93, "holdtime_left": 4.071, "keepalives_sent": 0,
     "keepalives_received": 2, "in_flight": 0, "handled": 12},
    {"name": "[bold]gone", "services": ["echo"], "dispatcher": "dispatcher", "status": "dead"},
]


def test_only_a_terminal_gets_a_rich_console():
    """A pipe or a file (or anything without isatty) gets None: plain text."""
    assert terminal(io.StringIO()) is None
    assert terminal(object()) is None
    console = terminal(Terminal())
    assert isinstance(console, Console) and console.is_terminal


def test_plain_text_is_the_aligned_table_scripts_parse():
    """Numeric columns right-aligned, two spaces between, trailing spaces cut."""
    rows = Rows(("NAME", "N", "NOTE"), [["a", "1", ""], ["long-name", "123", "x"]],
                numeric={1})
    assert plain(rows) == ("NAME         N  NOTE\n"
                           "a            1\n"
                           "long-name  123  x")


def test_a_pipe_gets_the_workers_table_exactly_as_before():
    """The plain text is unchanged: a dead actor's missing fields are "-"."""
    out = io.StringIO()
    show_table(worker_rows(WORKERS), out)
    assert out.getvalue() == (
        "NAME        SERVICES   DISPATCHER  STATUS  ALIVE-FOR  HOLDTIME  KA-TX  KA-RX  "
        "IN-FLIGHT  HANDLED\n"
        "echo        echo,more  dispatcher  alive   1.93       4.071     0      2      "
        "0          12\n"
        "[bold]gone  echo       dispatcher  dead    -          -         -      -      "
        "-          -\n")


def test_a_pipe_gets_the_text_given_instead_of_the_table():
    """A command whose plain form is not a table (status prints JSON) says so."""
    out = io.StringIO()
    show_table(Rows(("A",), [["1"]]), out, text='{"a": 1}')
    assert out.getvalue() == '{"a": 1}\n'


def test_a_terminal_gets_a_rich_table_with_the_headers_and_cells():
    """Box characters, every title and cell; a name that looks like markup is
    shown as written; the dead actor's row is dim."""
    out, console = forced()
    show_table(worker_rows(WORKERS), io.StringIO(), console=console)
    drawn = out.getvalue()
    lines = uncoloured(drawn).splitlines()
    assert lines[0].startswith("┏") and lines[-1].startswith("└")
    assert [cell.strip() for cell in lines[1].split("┃")[1:-1]] == [
        "NAME", "SERVICES", "DISPATCHER", "STATUS", "ALIVE-FOR", "HOLDTIME", "KA-TX",
        "KA-RX", "IN-FLIGHT", "HANDLED"]
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in lines[3:5]]
    assert rows == [["echo", "echo,more", "dispatcher", "alive", "1.93", "4.071", "0", "2",
                     "0", "12"],
                    ["[bold]gone", "echo", "dispatcher", "dead", "-", "-", "-", "-", "-",
                     "-"]]
    dead = drawn.splitlines()[4]
    assert "\x1b[2m" in dead and "\x1b[2m" not in drawn.splitlines()[3]


def test_numbers_are_right_aligned_in_the_route_table():
    """The route's numeric columns end at their column's right edge."""
    route = [Stamp("client-1", "vm", 101, 1, 1, 100.0, 100.0001, 4),
             Stamp("dispatcher", "vm", 102, 2, 40, 100.0002, 100.0123, 4)]
    out, console = forced()
    show_table(route_rows(route), io.StringIO(), console=console)
    lines = uncoloured(out.getvalue()).splitlines()
    assert [cell.strip() for cell in lines[1].split("┃")[1:-1]] == [
        "HOP", "NAME", "HOST:PID", "CONN", "SEQ", "+MS", "HELD MS"]
    held = [line.split("│")[7] for line in lines[3:5]]
    assert [cell.strip() for cell in held] == ["0.100", "12.100"]
    assert all(cell.endswith(" ") and not cell.endswith("  ") for cell in held)


def test_status_rows_name_nested_fields_by_their_path():
    """show_dispatcher's answer as FIELD and VALUE rows: dicts dotted, lists joined."""
    rows = status_rows({"name": "dispatcher", "uptime": 2.5, "endpoints": ["tcp:1", "unix:x"],
                        "keepalive": {"interval": 5.0, "multiplier": 3},
                        "token_required": False, "counters": {}})
    assert rows.titles == ("FIELD", "VALUE")
    assert rows.cells == (("name", "dispatcher"), ("uptime", "2.5"),
                          ("endpoints", "tcp:1, unix:x"), ("keepalive.interval", "5.0"),
                          ("keepalive.multiplier", "3"), ("token_required", "false"),
                          ("counters", "{}"))


def test_colour_shows_on_a_terminal_unless_no_color_is_set(monkeypatch):
    """The same red row: coloured on a terminal, uncoloured under $NO_COLOR
    (the table and its bold header stay)."""
    rows = Rows(("NAME",), [["slow"]], styles=["bold red"])
    screen = Terminal()
    show_table(rows, screen)
    assert set(colours(screen.getvalue())) == {31}
    monkeypatch.setenv("NO_COLOR", "1")
    screen = Terminal()
    show_table(rows, screen)
    assert colours(screen.getvalue()) == []
    assert "┏" in screen.getvalue() and "\x1b[1m" in screen.getvalue()
    assert "slow" in uncoloured(screen.getvalue())


def test_no_bar_on_a_pipe():
    assert ProgressBar.for_terminal("x", Clock(), io.StringIO()) is None


def test_a_transfer_bar_shows_its_completion_bytes_and_rate_on_the_clock():
    """Four megabytes over four seconds of the client's clock: 100%, 4.0/4.0
    MB at 1.0 MB/s, left on its own line with the cursor shown again."""
    out, console = forced(width=100)
    clock = Clock()
    bar = ProgressBar("big.bin", console, clock)
    for megabytes in range(1, 5):
        clock.advance(1)
        bar(megabytes * 1_000_000, 4_000_000)
    bar.finish()
    last = uncoloured(out.getvalue()).split("\r")[-1]
    assert last.startswith("\x1b[2Kbig.bin ━") and last.endswith("\n\x1b[?25h")
    assert "100%" in last and "4.0/4.0 MB" in last and "1.0 MB/s" in last
    assert "50%" in uncoloured(out.getvalue())


def test_a_count_bar_shows_done_of_total_and_a_note_goes_above_it():
    """Counted steps show 3/3 and no bytes; a line printed meanwhile sits above the bar."""
    out, console = forced()
    bar = ProgressBar("steps.count", console, Clock(), in_bytes=False)
    bar(1, 3)
    bar.note("progress (steps): {\"stage\": \"half\"}")
    bar(3, 3)
    bar.finish()
    drawn = uncoloured(out.getvalue())
    assert 'progress (steps): {"stage": "half"}\n' in drawn
    last = drawn.split("\r")[-1]
    assert "100%" in last and "3/3" in last and "MB" not in drawn


def test_a_bar_never_called_draws_nothing():
    """A transfer skipped (the file was already there) leaves the terminal alone."""
    out, console = forced()
    ProgressBar("same.bin", console, Clock()).finish()
    assert out.getvalue() == ""

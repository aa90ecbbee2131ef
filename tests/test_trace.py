"""A route drawn as a timeline: the numbers, the terminal drawing, SVG and JSON,
all computed from stamps whose times are known."""

import io
import json
import re
import xml.etree.ElementTree as ET

import pytest
from rich.console import Console

from actornet.commands import show_traces
from actornet.console import show_table
from actornet.protocols.errors import ActornetError
from actornet.protocols.stamp import Stamp
from actornet.trace import (
    BAR_WIDTH,
    SLOW_MARK,
    bar,
    draw,
    routes_from_journal,
    timeline,
    timeline_rows,
)
from actornet.trace_svg import BAR_PX, as_svg

START = 1_700_000_000.0
SVG = "{http://www.w3.org/2000/svg}"


def stamp(hop, name, arrived_ms, departed_ms, seq=7):
    return Stamp(name, "vm", 100 + hop, hop, seq, START + arrived_ms / 1000,
                 START + departed_ms / 1000, hop)


ROUTE = (stamp(1, "client-1", 0, 0),        # sends at once
         stamp(2, "dispatcher", 1, 2),      # 1 ms on the wire, holds 1 ms
         stamp(3, "echo", 4, 10),           # 2 ms on the wire, holds 6 ms
         stamp(4, "dispatcher", 11, 12))    # 1 ms on the wire, holds 1 ms


def numbers(hop):
    """Offset, gap and held ms to the µs (an epoch's double holds ~0.2 µs)."""
    return [round(value, 3) for value in (hop.offset_ms, hop.gap_ms, hop.held_ms)]


def test_one_row_per_stamp_in_route_order_with_offsets_gaps_and_held_times():
    """Offsets count from the first arrival, gaps from the previous departure."""
    trace = timeline(ROUTE)
    assert [(hop.hop, hop.name, hop.where) for hop in trace.hops] == [
        (1, "client-1", "vm:101"), (2, "dispatcher", "vm:102"), (3, "echo", "vm:103"),
        (4, "dispatcher", "vm:104")]
    assert [numbers(hop) for hop in trace.hops] == [
        [0, 0, 0], [1, 1, 1], [4, 2, 6], [11, 1, 1]]
    assert trace.total_ms == pytest.approx(12, abs=1e-3)


def test_dispatcher_hops_are_told_by_name_even_two_in_a_row():
    """In a federation a bag crosses two dispatchers in a row; names decide, not
    alternation, and anything else (a client too) is an actor hop."""
    names = ["client-1", "d-a", "d-b", "echo", "d-b", "d-a"]
    route = [stamp(i + 1, name, i, i + 0.5) for i, name in enumerate(names)]
    kinds = [hop.kind for hop in timeline(route, frozenset({"d-a", "d-b"})).hops]
    assert kinds == ["actor", "dispatcher", "dispatcher", "actor", "dispatcher", "dispatcher"]
    assert [hop.kind for hop in timeline(ROUTE).hops] == [
        "actor", "dispatcher", "actor", "dispatcher"]


def test_a_hop_taking_a_large_share_of_the_route_is_slow():
    """The echo hop's 8 of 12 ms make it slow; the 2 ms hops are not."""
    assert [hop.slow for hop in timeline(ROUTE).hops] == [False, False, True, False]
    assert [hop.slow for hop in timeline(ROUTE, slow_share=0.1).hops] == [
        False, True, True, True]


def test_a_threshold_marks_hops_whose_hold_or_gap_reaches_it():
    """With --slow-ms 1 the dispatchers (held 1 ms) are slow too; 1.5 leaves them."""
    assert [hop.slow for hop in timeline(ROUTE, slow_ms=1).hops] == [False, True, True, True]
    assert [hop.slow for hop in timeline(ROUTE, slow_ms=1.5).hops] == [
        False, False, True, False]


def test_quick_even_hops_are_not_slow_and_an_empty_route_is_empty():
    """A share, not a rank: six equal hops each take a sixth, none is marked."""
    route = [stamp(i + 1, f"a{i}", 2 * i, 2 * i + 1) for i in range(6)]
    assert not any(hop.slow for hop in timeline(route).hops)
    assert timeline(()).hops == ()


def test_bars_are_to_scale_with_the_gap_before_the_hold():
    """On 24 columns for 12 ms each ms is two: blanks to the previous departure,
    dots for the gap, hashes for the hold; a zero hold still shows one hash."""
    trace = timeline(ROUTE)
    bars = [bar(hop, trace.total_ms, width=24) for hop in trace.hops]
    assert bars == ["#".ljust(24),
                    "..##".ljust(24),
                    "    ....############".ljust(24),
                    " " * 20 + "..##"]


def test_the_drawing_has_a_header_and_a_row_per_hop_with_marks():
    """Rows in hop order, KIND names dispatcher hops, the slow hop ends in the
    slow mark, and every bar sits in the same columns."""
    header, *rows = draw(timeline(ROUTE), width=24).splitlines()
    assert header.split()[:8] == ["HOP", "NAME", "HOST:PID", "KIND", "+MS", "GAP", "MS",
                                  "HELD"]
    assert header.endswith("12.000 ms|")
    assert [row.split()[:4] for row in rows] == [
        ["1", "client-1", "vm:101", "actor"], ["2", "dispatcher", "vm:102", "dispatcher"],
        ["3", "echo", "vm:103", "actor"], ["4", "dispatcher", "vm:104", "dispatcher"]]
    assert rows[2].split()[4:7] == ["4.000", "2.000", "6.000"]
    assert [row.endswith(SLOW_MARK) for row in rows] == [False, False, True, False]
    bars = [row[row.index("|") + 1:row.rindex("|")] for row in rows]
    assert bars[2] == "    ....############".ljust(24)
    assert len({row.index("|") for row in [header, *rows]}) == 1
    assert "\x1b" not in "".join(rows)


def test_on_a_terminal_the_timeline_is_a_table_with_bars_to_the_column_width():
    """A rich table: the numbers, the scale over the bar column, each bar to
    scale at the width the terminal leaves it, the slow row red and marked,
    dispatcher rows dim."""
    out = io.StringIO()
    show_table(timeline_rows(timeline(ROUTE)),
         console=Console(file=out, force_terminal=True, width=140, color_system="standard"))
    lines = out.getvalue().splitlines()
    plain = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in lines]
    cells = [[cell.strip() for cell in line.split("│")[1:-1]] for line in plain[3:7]]
    assert [title.strip() for title in plain[1].split("┃")[1:8]] == [
        "HOP", "NAME", "HOST:PID", "KIND", "+MS", "GAP MS", "HELD MS"]
    assert plain[1].split("┃")[8].strip().split() == ["0", "12.000", "ms"]
    assert [row[:7] for row in cells][2] == ["3", "echo", "vm:103", "actor", "4.000",
                                             "2.000", "6.000"]
    assert [row[8] for row in cells] == ["", "", SLOW_MARK, ""]
    bars = [line.split("│")[8][1:-1] for line in plain[3:7]]
    assert bars == [bar(hop, 12.0, BAR_WIDTH) for hop in timeline(ROUTE).hops]
    assert "\x1b[1;31m" in lines[5] and "\x1b[2m" in lines[4] and "\x1b[2m" in lines[6]
    assert "\x1b[" not in lines[3]
    narrow = io.StringIO()
    show_table(timeline_rows(timeline(ROUTE)), console=Console(file=narrow, width=100,
                                                         color_system=None))
    row = narrow.getvalue().splitlines()[5]
    scaled = row.split("│")[8][1:-1]
    assert len(scaled) < BAR_WIDTH and scaled == bar(timeline(ROUTE).hops[2], 12.0, len(scaled))


def hop_groups(svg):
    root = ET.fromstring(svg)
    return root, [group for group in root.iter(f"{SVG}g")
                  if "hop" in group.get("class").split()]


def test_the_svg_parses_and_has_a_group_per_hop_with_labels_and_widths():
    """Each hop's group has its label, classes for its kind and slowness, and
    bars whose widths are its gap and hold on the route's scale."""
    root, groups = hop_groups(as_svg([("client-1:7", timeline(ROUTE))]))
    assert root.tag == f"{SVG}svg"
    assert [group.find(f"{SVG}text[@class='label']").text for group in groups] == [
        "1 client-1 vm:101", "2 dispatcher vm:102", "3 echo vm:103", "4 dispatcher vm:104"]
    assert [group.get("class") for group in groups] == [
        "hop actor", "hop dispatcher", "hop actor slow", "hop dispatcher"]
    widths = [(float(group.find(f"{SVG}rect[@class='wire']").get("width")),
               float(group.find(f"{SVG}rect[@class='held']").get("width"))) for group in groups]
    ms = BAR_PX / 12
    assert widths == [pytest.approx((gap * ms, held * ms), abs=0.01)
                      for gap, held in [(0, 0), (1, 1), (2, 6), (1, 1)]]
    assert float(groups[2].find(f"{SVG}rect[@class='held']").get("x")) == pytest.approx(
        float(groups[0].find(f"{SVG}rect[@class='held']").get("x")) + 4 * ms, abs=0.01)


def test_the_svg_escapes_names_and_stacks_several_bags():
    """Names are text, not markup; two bags are two titled groups."""
    odd = (stamp(1, "a<&>b", 0, 1),)
    root, groups = hop_groups(as_svg([("x:1", timeline(ROUTE)), ("a<&>b:7", timeline(odd))]))
    bags = [group for group in root.iter(f"{SVG}g") if group.get("class") == "bag"]
    assert [bag.get("data-title") for bag in bags] == ["x:1", "a<&>b:7"]
    assert len(groups) == 5
    assert groups[4].find(f"{SVG}text[@class='label']").text == "1 a<&>b vm:101"


def test_show_traces_titles_each_route_by_its_key_and_writes_json_and_svg(tmp_path):
    """The function the journal's bags feed draws each, or prints one JSON list
    holding the numbers, and writes the SVG file."""
    out = io.StringIO()
    show_traces([ROUTE, ROUTE[:2]], out=out, svg=str(tmp_path / "t.svg"))
    lines = out.getvalue().splitlines()
    assert lines[0] == "trace of client-1:7 (4 hops, 12.000 ms):"
    assert lines[6].startswith("trace of client-1:7 (2 hops, 2.000 ms)")
    assert len(hop_groups((tmp_path / "t.svg").read_text())[1]) == 6
    out = io.StringIO()
    show_traces([ROUTE], out=out, json_out=True, slow_ms=1.5)
    [shown] = json.loads(out.getvalue())
    assert shown["key"] == "client-1:7" and shown["total_ms"] == pytest.approx(12, abs=1e-3)
    echo = shown["hops"][2]
    assert (echo["name"], echo["kind"], echo["where"], echo["slow"]) == (
        "echo", "actor", "vm:103", True)
    assert [echo[key] for key in ("offset_ms", "gap_ms", "held_ms")] == pytest.approx(
        [4, 2, 6], abs=1e-3)


def test_journal_answers_become_routes_from_wire_stamps_or_dicts():
    """A bag of ``last`` or the one bag of ``get``; stamps as bytes or dicts."""
    wire = [item.to_wire() for item in ROUTE]
    assert routes_from_journal({"bags": [{"route": wire}]}) == [ROUTE]
    assert routes_from_journal({"key": ["client-1", 7],
                                "route": [item.as_dict() for item in ROUTE]}) == [ROUTE]
    with pytest.raises(ActornetError, match="holds no routes"):
        routes_from_journal({"bags": [{"path": []}]})


def test_an_svg_file_that_cannot_be_written_is_an_actornet_error(tmp_path):
    """The failure names the file, so the CLI's one line says what went wrong."""
    missing = tmp_path / "no" / "t.svg"
    with pytest.raises(ActornetError, match=f"could not write the SVG to {missing}"):
        show_traces([ROUTE], out=io.StringIO(), svg=str(missing))

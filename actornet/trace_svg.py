"""A timeline (:mod:`actornet.trace`) as a self-contained SVG picture.

The picture needs nothing beside itself (no stylesheet, script or font
file), so it can be attached to an issue or opened in any browser.  Each bag
is a ``<g class="bag">`` and each of its hops a ``<g class="hop KIND [slow]">``
holding its label, its gap and held bars and its numbers, so a reader (or a
test) finds a hop's parts together; the bars' widths are to scale,
``BAR_PX`` pixels for the bag's whole route.
"""

from xml.sax.saxutils import escape, quoteattr

LABEL_PX = 300
BAR_PX = 500
NUMBERS_PX = 220
ROW_PX = 22
TOP_PX = 30
GAP_PX = 10

STYLE = """
text { font: 12px monospace; fill: #222; }
.wire { fill: #bbb; }
.held { fill: #4a7ab8; }
.dispatcher .held { fill: #999; }
.slow .held, .slow .wire { fill: #d33; }
.slow text { fill: #b00; font-weight: bold; }
.axis { stroke: #888; }
"""


def as_svg(traces):
    """The SVG document (text) for ``traces``, a sequence of ``(title, timeline)``
    pairs (:class:`actornet.trace.Timeline`), drawn one under the other, each
    a ``<g class="bag">`` with its own scale."""
    width = LABEL_PX + BAR_PX + NUMBERS_PX
    parts, y = [], 0
    for title, trace in traces:
        parts.append(_bag(title, trace, y))
        y += TOP_PX + ROW_PX * len(trace.hops) + GAP_PX
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y}" '
        f'viewBox="0 0 {width} {y}">',
        f"<style>{STYLE}</style>", *parts, "</svg>"]) + "\n"


def _bag(title, trace, top):
    heading = f"{title}: {len(trace.hops)} hops, {trace.total_ms:.3f} ms"
    parts = [f'<g class="bag" data-title={quoteattr(title)}>',
             f'<text class="heading" x="4" y="{top + 16}">{escape(heading)}</text>',
             f'<line class="axis" x1="{LABEL_PX}" y1="{top + 22}" x2="{LABEL_PX + BAR_PX}" '
             f'y2="{top + 22}"/>']
    for row, hop in enumerate(trace.hops):
        parts.append(_row(hop, trace.total_ms, top + TOP_PX + row * ROW_PX))
    parts.append("</g>")
    return "\n".join(parts)


def scale(ms, total_ms):
    """Pixels for ``ms`` on a bar of ``BAR_PX`` standing for ``total_ms``."""
    return 0.0 if total_ms <= 0 else round(ms / total_ms * BAR_PX, 2)


def _row(hop, total_ms, y):
    classes = " ".join(["hop", hop.kind, *(["slow"] if hop.slow else [])])
    wire_x = LABEL_PX + scale(max(hop.offset_ms - hop.gap_ms, 0.0), total_ms)
    held_x = LABEL_PX + scale(max(hop.offset_ms, 0.0), total_ms)
    label = f"{hop.hop} {hop.name} {hop.where}"
    numbers = (f"+{hop.offset_ms:.3f} gap {hop.gap_ms:.3f} held {hop.held_ms:.3f} ms"
               + (" slow" if hop.slow else ""))
    text_y = y + ROW_PX - 8
    return "\n".join([
        f"<g class={quoteattr(classes)} data-hop=\"{hop.hop}\">",
        f"<title>{escape(hop.kind)} {escape(label)}: {escape(numbers)}</title>",
        f'<text class="label" x="4" y="{text_y}">{escape(label)}</text>',
        f'<rect class="wire" x="{wire_x}" y="{y + 6}" height="{ROW_PX - 12}" '
        f'width="{scale(max(hop.gap_ms, 0.0), total_ms)}"/>',
        f'<rect class="held" x="{held_x}" y="{y + 3}" height="{ROW_PX - 6}" '
        f'width="{scale(hop.held_ms, total_ms)}"/>',
        f'<text class="numbers" x="{LABEL_PX + BAR_PX + 4}" y="{text_y}">'
        f"{escape(numbers)}</text>",
        "</g>"])

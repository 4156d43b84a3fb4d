"""A strategy's trace as one self-contained HTML file that draws its tree.

    write_trace_html(result, "trace.html")

Each node of `Result.trace` is a box: the problem at the top, (partial)
solutions below their parents, coloured by verifier score (red 0 to green 1,
grey when unscored), with the path to the chosen answer drawn thick. Hovering
a node shows its full text; clicking it shows the text in a side panel. No
script or style is fetched from anywhere: the file opens offline.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from ponder.types import Result, TraceNode

_BOX_W, _BOX_H, _GAP_X, _GAP_Y = 150, 44, 16, 36


def _layout(nodes: tuple[TraceNode, ...]) -> dict[int, tuple[float, int]]:
    """(x, depth) of each node: leaves left to right in depth-first order, parents centred."""
    children: dict[int, list[int]] = {}
    for node in nodes:
        if node.parent is not None:
            children.setdefault(node.parent, []).append(node.id)
    place: dict[int, tuple[float, int]] = {}
    next_leaf = 0.0
    roots = [n.id for n in nodes if n.parent is None]
    stack: list[tuple[int, int, bool]] = [(r, 0, False) for r in reversed(roots)]
    while stack:  # iterative post-order: deep traces must not hit the recursion limit
        node, depth, seen = stack.pop()
        kids = children.get(node, [])
        if not kids:
            place[node] = (next_leaf, depth)
            next_leaf += 1
        elif seen:
            xs = [place[k][0] for k in kids]
            place[node] = ((min(xs) + max(xs)) / 2, depth)
        else:
            stack.append((node, depth, True))
            stack.extend((k, depth + 1, False) for k in reversed(kids))
    return place


def _colour(score: float | None) -> str:
    if score is None:
        return "#d9d9d9"
    s = min(max(score, 0.0), 1.0)
    return f"hsl({round(120 * s)}, 65%, 72%)"


def _chosen_path(result: Result) -> set[int]:
    parent = {n.id: n.parent for n in result.trace}
    path, node = set(), result.chosen_node
    while node is not None:
        path.add(node)
        node = parent.get(node)
    return path


def render_trace_html(result: Result, title: str | None = None) -> str:
    """The HTML page of `result`'s trace."""
    nodes = result.trace
    place = _layout(nodes)
    chosen = _chosen_path(result)
    width = (max((x for x, _ in place.values()), default=0) + 1) * (_BOX_W + _GAP_X) + _GAP_X
    height = (max((d for _, d in place.values()), default=0) + 1) * (_BOX_H + _GAP_Y) + _GAP_Y

    def corner(node_id: int) -> tuple[float, float]:
        x, depth = place[node_id]
        return _GAP_X + x * (_BOX_W + _GAP_X), _GAP_Y + depth * (_BOX_H + _GAP_Y)

    edges, boxes = [], []
    for node in nodes:
        x, y = corner(node.id)
        if node.parent is not None and node.parent in place:
            px, py = corner(node.parent)
            thick = node.id in chosen and node.parent in chosen
            edges.append(
                f'<line x1="{px + _BOX_W / 2}" y1="{py + _BOX_H}" x2="{x + _BOX_W / 2}" y2="{y}" '
                f'class="{"edge chosen" if thick else "edge"}"/>'
            )
        label = " ".join(node.text.split()) or "(empty)"
        short = label if len(label) <= 20 else label[:19] + "…"
        score = "" if node.score is None else f"{node.score:.2f}"
        scored = f" score {score}" if score else ""
        tooltip = f"#{node.id} {node.kind}{scored}\n{node.text}"
        boxes.append(
            f'<g class="node{" chosen" if node.id in chosen else ""}" data-id="{node.id}">'
            f"<title>{html.escape(tooltip)}</title>"
            f'<rect x="{x}" y="{y}" width="{_BOX_W}" height="{_BOX_H}" rx="6" '
            f'fill="{_colour(node.score)}"/>'
            f'<text x="{x + 6}" y="{y + 17}">{html.escape(short)}</text>'
            f'<text x="{x + 6}" y="{y + 35}" class="meta">{html.escape(node.kind)} '
            f"{html.escape(score)}</text></g>"
        )
    texts = {n.id: {"kind": n.kind, "score": n.score, "text": n.text} for n in nodes}
    cost = result.cost
    heading = title or f"{result.strategy} at N = {result.budget}"
    summary = (
        f"answer <b>{html.escape(str(result.answer))}</b> · {len(nodes)} nodes · "
        f"{cost.generated_tokens} generated tokens, {cost.verifier_tokens} verifier tokens, "
        f"{cost.samples} samples in {cost.calls} calls, {cost.wall_seconds:.1f} s"
    )
    data = json.dumps(texts).replace("</", "<\\/")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(heading)}</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 0; display: flex; height: 100vh; }}
#tree {{ flex: 1; overflow: auto; }}
#side {{ width: 30%; border-left: 1px solid #ccc; padding: 12px; overflow: auto; }}
#side pre {{ white-space: pre-wrap; font: 13px ui-monospace, monospace; }}
header {{ padding: 8px 12px; }}
.edge {{ stroke: #999; stroke-width: 1.2; }}
.edge.chosen {{ stroke: #1a5fb4; stroke-width: 4; }}
.node rect {{ stroke: #666; stroke-width: 1; cursor: pointer; }}
.node.chosen rect {{ stroke: #1a5fb4; stroke-width: 3; }}
.node text {{ font: 12px ui-monospace, monospace; pointer-events: none; }}
.node text.meta {{ fill: #444; font-size: 11px; }}
</style></head>
<body><div id="tree"><header><b>{html.escape(heading)}</b> · {summary}<br>
<small>colour: verifier score (red 0, green 1, grey unscored); thick: the chosen path;
click a node to read it</small></header>
<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">
{"".join(edges)}
{"".join(boxes)}
</svg></div>
<div id="side"><b>Node</b><pre id="detail">Click a node.</pre></div>
<script>
const nodes = {data};
document.querySelectorAll('g.node').forEach(g => g.addEventListener('click', () => {{
  const n = nodes[g.dataset.id];
  const score = n.score === null ? '' : ' score ' + n.score.toFixed(3);
  document.getElementById('detail').textContent = '#' + g.dataset.id + ' ' + n.kind + score
    + '\\n\\n' + n.text;
}}));
</script></body></html>
"""


def write_trace_html(result: Result, path: str | Path, title: str | None = None) -> Path:
    """Write `result`'s trace to `path` as a self-contained HTML page; returns the path."""
    path = Path(path)
    path.write_text(render_trace_html(result, title), encoding="utf-8")
    return path

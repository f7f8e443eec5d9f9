#!/usr/bin/env python3
"""Draw bench/compare's results as an SVG chart, by hand (no plotting library).

One row per scenario, three panels a row: requests/s, p99 latency and server CPU per
request, one bar per server, each panel scaled to its own largest value (so compare
bars within a panel, and read the printed values across panels). A last row shows the
start-up time and peak memory.

    python3 bench/compare/chart.py target/bench/results.json docs/performance.svg
"""

from __future__ import annotations

import json
import sys
from html import escape
from pathlib import Path

SERIES = [
    ("toolgate", "toolgate", "#d9480f"),
    ("fastapi_1w", "FastAPI, 1 worker", "#1971c2"),
    ("fastapi_2w", "FastAPI, 2 workers", "#74c0fc"),
    ("bare", "bare axum (no features)", "#adb5bd"),
]
FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
WIDTH = 1120
LABEL_W = 255
PANEL_W = 270
PANEL_GAP = 16
BAR_H = 13
BAR_GAP = 3
ROW_PAD = 16


def number(v: float) -> str:
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def render(results: dict) -> str:
    present = {name for sc in results["scenarios"] for name, r in sc["results"].items() if r}
    present |= set(results.get("servers", {}))
    series = [s for s in SERIES if s[0] in present]
    meta = results["meta"]
    m, v = meta["machine"], meta["versions"]

    panels = [("rps", "requests/s (higher is better)"), ("p99_ms", "p99 latency, ms (lower is better)"),
              ("cpu_us_per_req", "server CPU per request, µs (lower is better)")]
    rows = []
    for i, sc in enumerate(results["scenarios"], 1):
        cells = []
        for key, _ in panels:
            cells.append({name: (r or {}).get(key) for name, r in sc["results"].items()})
        sub = [f"{sc['conns']:,} connections"]
        rps = cells[0]
        vs = [f"{rps['toolgate'] / rps[n]:.1f}x" for n in ("fastapi_1w", "fastapi_2w")
              if rps.get("toolgate") and rps.get(n)]
        if len(vs) == 2:
            sub.append(f"toolgate: {vs[0]} / {vs[1]} the req/s")
            sub.append("of FastAPI 1 / 2 workers")
        rows.append((f"{i}. {sc['title']}", sub, cells))
    srv = results.get("servers", {})
    inflight = next((sc for sc in results["scenarios"] if sc["id"] == "inflight"), None)
    last = [
        {n: s.get("start_ms") for n, s in srv.items()},
        {n: (s.get("rss_hwm_kib") or 0) / 1024 or None for n, s in srv.items()},
        {n: (r["rss_hwm_kib"] / 1024 if r else None) for n, r in (inflight or {"results": {}})["results"].items()},
    ]
    last_titles = ["start to first ready, ms (lower is better)", "peak RSS, all but the in-flight scenario, MiB (lower is better)",
                   "peak RSS, in-flight scenario, MiB (lower is better)"]

    row_h = len(series) * (BAR_H + BAR_GAP) + ROW_PAD
    top = 118
    height = top + (len(rows) + 1) * row_h + 10 + 3 * 15 + 10
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
           f'viewBox="0 0 {WIDTH} {height}" font-family="{FONT}" font-size="11">',
           f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>',
           '<text x="20" y="30" font-size="18" font-weight="bold" fill="#212529">'
           'toolgate vs FastAPI: the same tool calls, the same machine, the same run</text>',
           f'<text x="20" y="50" fill="#495057">{escape(meta["date"])}; {m["nproc"]} CPUs ({escape(m["cpu"])}), '
           f'kernel {escape(m["kernel"])}; wrk on the same CPUs, 127.0.0.1; '
           f'{meta["settings"]["duration_s"]} s per scenario</text>',
           f'<text x="20" y="66" fill="#495057">{escape(v.get("toolgate", ""))} ({escape(v.get("rustc", ""))}); '
           f'Python {escape(v.get("python", ""))}, FastAPI {escape(v.get("fastapi", ""))}, '
           f'uvicorn {escape(v.get("uvicorn", ""))} with uvloop and httptools</text>']
    x = 20
    for _, label, color in series:
        out.append(f'<rect x="{x}" y="78" width="12" height="12" fill="{color}"/>')
        out.append(f'<text x="{x + 17}" y="88" fill="#212529">{escape(label)}</text>')
        x += 30 + 7 * len(label)

    def panel_x(j: int) -> int:
        return LABEL_W + j * (PANEL_W + PANEL_GAP)

    y = top
    for j, (_, title) in enumerate(panels):
        out.append(f'<text x="{panel_x(j)}" y="{y - 8}" font-weight="bold" fill="#212529">{escape(title)}</text>')

    def draw_row(y: int, title: str, sub: list[str], cells: list[dict], titles: list[str] | None = None) -> None:
        out.append(f'<line x1="20" y1="{y}" x2="{WIDTH - 20}" y2="{y}" stroke="#dee2e6"/>')
        out.append(f'<text x="20" y="{y + 18}" font-weight="bold" fill="#212529">{escape(title)}</text>')
        for k, line in enumerate(sub):
            color = "#868e96" if k == 0 else "#d9480f"
            out.append(f'<text x="20" y="{y + 33 + 13 * k}" fill="{color}">{escape(line)}</text>')
        for j, cell in enumerate(cells):
            px = panel_x(j)
            if titles:
                out.append(f'<text x="{px}" y="{y + 12}" fill="#495057">{escape(titles[j])}</text>')
            by = y + 8 + (10 if titles else 0)
            vals = [cell.get(name) for name, _, _ in series]
            top_v = max((v for v in vals if v), default=0)
            for (name, _, color), val in zip(series, vals):
                if val is None:
                    out.append(f'<text x="{px}" y="{by + BAR_H - 3}" fill="#adb5bd">—</text>')
                else:
                    w = max(1.0, (PANEL_W - 62) * (val / top_v)) if top_v else 1.0
                    out.append(f'<rect x="{px}" y="{by}" width="{w:.1f}" height="{BAR_H}" fill="{color}"/>')
                    out.append(f'<text x="{px + w + 4:.1f}" y="{by + BAR_H - 3}" fill="#212529">{number(val)}</text>')
                by += BAR_H + BAR_GAP

    for title, sub, cells in rows:
        draw_row(y, title, sub, cells)
        y += row_h
    draw_row(y, "start-up and memory", [], last, last_titles)
    y += row_h + 10
    out.append(f'<line x1="20" y1="{y - 10}" x2="{WIDTH - 20}" y2="{y - 10}" stroke="#dee2e6"/>')
    notes = ["Each panel is scaled to its own largest bar; — means the server has no such endpoint.",
             "CPU: the server's utime+stime (/proc/PID/stat, all uvicorn processes) over the requests served.",
             escape(meta.get("toolgate_otel", "")) + ". Generated by `make bench` (bench/compare)."]
    for k, n in enumerate(notes):
        out.append(f'<text x="20" y="{y + 6 + 15 * k}" fill="#868e96">{n}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    data = json.loads(Path(sys.argv[1]).read_text())
    Path(sys.argv[2]).write_text(render(data))

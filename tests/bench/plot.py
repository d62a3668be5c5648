#!/usr/bin/env python3
"""plot.py - one SVG bar chart per benchmark row, drawn from the results .md tables the
benches write (tests/bench/*.md), so the plots always show the figures in those files.

    python3 tests/bench/plot.py [--out tests/bench/plots]

Each chart is one table: a bar per table row (its label joins the label columns), the
median as the bar and, where the table has a "min - max" column right after the value
column, that range as a whisker. postern is blue, the incumbents grey, the limits orange. Tables that a results file does not have (yet) are
skipped with a note. Stdlib only; the SVG needs no fonts beyond sans-serif.
"""

import argparse
import html
import math
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# (results file, value columns (headers starting with these; one bar per row and value
# column), label columns, title, log scale). A label column name that ends in "*" matches
# any header starting with it.
CHARTS = [
    ("results.md", ["lookups/s"], ["table"], "lookup: postmap -q - < 10,000 keys (lookups/s)", False),
    ("results.md", ["requests/s"], ["server", "connections*"], "lookup: pipelined server capacity (requests/s)",
     False),
    ("auth_results.md", ["authd auths/s", "Dovecot auths/s", "limit"], ["password", "cache", "conns"],
     "auth: PLAIN logins, SHA512-CRYPT, SQL passdb (auths/s, log scale)", True),
    ("lmtp_results.md", ["deliveries/s"], ["case*", "agent*"], "delivery: smtp-source -L, 4 KiB (deliveries/s)",
     False),
    ("memory_results.md", ["peak RSS", "incumbent peak"], ["job"], "memory: peak RSS, postern vs incumbent (MiB)",
     False),
]

NUMBER = re.compile(r"-?[0-9][0-9,]*(?:\.[0-9]+)?")
RANGE = re.compile(r"\(([0-9][0-9,.]*)\s*(?:–|-)\s*([0-9][0-9,.]*)\)")  # "645 (629–673)"


def tables(markdown):
    """Yields (header, rows) for each pipe table; cells stripped."""
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("|") and i + 1 < len(lines) and re.match(r"^\|[\s:|-]+\|$", lines[i + 1]):
            header = [c.strip() for c in lines[i].strip("|").split("|")]
            rows = []
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append([c.strip() for c in lines[i].strip("|").split("|")])
                i += 1
            yield header, rows
        else:
            i += 1


def number(cell):
    m = NUMBER.search(cell or "")
    return float(m.group(0).replace(",", "")) if m else None


def column(header, name):
    for i, h in enumerate(header):
        if (name.endswith("*") and h.startswith(name[:-1])) or h == name:
            return i
    return None


def value_range(row, value, spread):
    """min and max of a cell: from "(a–b)" inside it, or from the "min - max" column."""
    m = RANGE.search(row[value])
    if m:
        return number(m.group(1)), number(m.group(2))
    if spread is not None and spread < len(row):
        parts = [number(p) for p in row[spread].split(" - ")]
        if len(parts) == 2 and None not in parts:
            return parts[0], parts[1]
    return None, None


def chart_data(markdown, value_prefixes, label_names):
    for header, rows in tables(markdown):
        values = [next((i for i, h in enumerate(header) if h.startswith(p)), None) for p in value_prefixes]
        values = [v for v in values if v is not None]
        if not values:
            continue
        labels = [c for c in (column(header, n) for n in label_names) if c is not None and c not in values]
        bars = []
        for row in rows:
            base = " / ".join(row[c] for c in labels if c < len(row) and row[c] not in ("", "-")) or row[0]
            for value in values:
                v = number(row[value]) if value < len(row) else None
                if v is None:
                    continue
                spread = value + 1 if value + 1 < len(header) and header[value + 1].startswith("min") else None
                low, high = value_range(row, value, spread)
                label = base if len(values) == 1 else f"{base}: {header[value]}"
                bars.append((label, v, low, high))
        if bars:
            return " · ".join(header[v] for v in values), bars
    return None


def svg(title, unit, bars, log=False):
    width, left, bar_h, gap, top = 1000, 430, 18, 6, 40
    height = top + len(bars) * (bar_h + gap) + 30
    top_value = max(max(v, h or 0) for _, v, _, h in bars) or 1
    span = width - left - 90
    if log:
        # Bars start at 1: log10(1) = 0.
        def x_of(v):
            return math.log10(max(v, 1)) * span / max(math.log10(top_value), 1)
    else:
        def x_of(v):
            return v * span / top_value
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="10" y="22" font-size="15" font-weight="bold">{html.escape(title)}</text>',
           f'<text x="{width - 10}" y="22" text-anchor="end" fill="#555">{html.escape(unit)}</text>']
    for n, (label, v, low, high) in enumerate(bars):
        y = top + n * (bar_h + gap)
        colour = ("#2b6cb0" if re.search(r"postern|lookupd|authd|lmtpd|peak RSS", label)
                  else "#dd8452" if re.search(r"ceiling|limit|smtp-sink|bare", label) else "#999")
        out.append(f'<text x="{left - 8}" y="{y + 13}" text-anchor="end">{html.escape(label[:48])}</text>')
        out.append(f'<rect x="{left}" y="{y}" width="{max(x_of(v), 1):.1f}" height="{bar_h}" fill="{colour}"/>')
        if low is not None and high is not None:
            x1, x2, mid = left + x_of(low), left + x_of(high), y + bar_h / 2
            out.append(f'<line x1="{x1:.1f}" y1="{mid}" x2="{x2:.1f}" y2="{mid}" stroke="black"/>')
            for x in (x1, x2):
                out.append(f'<line x1="{x:.1f}" y1="{y + 4}" x2="{x:.1f}" y2="{y + bar_h - 4}" stroke="black"/>')
        out.append(f'<text x="{left + x_of(max(v, high or 0)) + 6:.1f}" y="{y + 13}">{v:,.{0 if v >= 100 else 1}f}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results-dir", default=HERE)
    ap.add_argument("--out", default=os.path.join(HERE, "plots"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    written = 0
    for n, (results, value, labels, title, log) in enumerate(CHARTS):
        path = os.path.join(args.results_dir, results)
        if not os.path.exists(path):
            print(f"plot.py: no {results}; skipped '{title}'")
            continue
        with open(path, encoding="utf-8") as f:
            data = chart_data(f.read(), value, labels)
        if not data:
            print(f"plot.py: {results} has no table with a '{value}...' column; skipped '{title}'")
            continue
        unit, bars = data
        name = f"{os.path.splitext(results)[0]}-{n}.svg"
        with open(os.path.join(args.out, name), "w", encoding="utf-8") as f:
            f.write(svg(title, unit, bars, log))
        written += 1
        print(f"plot.py: {os.path.join(args.out, name)} ({len(bars)} bars)")
    return 0 if written else 1


if __name__ == "__main__":
    sys.exit(main())

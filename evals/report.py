"""Reports of a run: a summary per target, prompt and assertion (for the terminal and --json),
an HTML page with a chart, and JUnit XML for CI systems."""

from __future__ import annotations

import html
from collections import defaultdict
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from evals.store import Result


def summarise(results: list[Result]) -> dict[str, Any]:
    """Pass rate and mean score per target × prompt, overall and per assertion."""
    groups: dict[tuple[str, str], list[Result]] = defaultdict(list)
    for r in results:
        groups[(r.target, r.prompt)].append(r)
    rows = []
    for (target, prompt), rs in sorted(groups.items()):
        per: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in rs:
            for label, s in r.scores.items():
                per[label].append(s)
        rows.append({
            "target": target, "prompt": prompt, "cases": len(rs),
            "pass_rate": sum(r.passed for r in rs) / len(rs),
            "score": sum(r.score for r in rs) / len(rs),
            "errors": sum(bool(r.output.get("error")) for r in rs),
            "assertions": {label: {"pass_rate": sum(s["passed"] for s in ss) / len(ss),
                                   "score": sum(s["score"] for s in ss) / len(ss)}
                           for label, ss in sorted(per.items())},
        })
    worst = sorted(results, key=lambda r: (r.passed, r.score))[:5]
    return {"cases": len(results), "pass_rate": sum(r.passed for r in results) /
            max(1, len(results)), "groups": rows,
            "worst": [{"case": r.case_id, "target": r.target, "prompt": r.prompt,
                       "score": r.score, "output": str(r.output.get("text") or "")[:300],
                       "error": r.output.get("error"),
                       "failed": {k: s["reason"] for k, s in r.scores.items()
                                  if not s["passed"]}} for r in worst if not r.passed]}


def print_summary(summary: dict[str, Any], run_id: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    labels = sorted({a for g in summary["groups"] for a in g["assertions"]})
    table = Table("target", "prompt", "cases", "pass", "score", *labels,
                  title=f"{run_id}: {summary['pass_rate']:.0%} of {summary['cases']} passed",
                  box=None, pad_edge=False)
    for g in summary["groups"]:
        cells = [f"{g['assertions'][a]['pass_rate']:.0%}" if a in g["assertions"] else "-"
                 for a in labels]
        table.add_row(g["target"], g["prompt"], str(g["cases"]), f"{g['pass_rate']:.0%}",
                      f"{g['score']:.2f}", *cells)
    console.print(table)
    if summary["worst"]:
        console.print("\n[b]Worst cases[/b]")
        for w in summary["worst"]:
            reasons = "; ".join(f"{k}: {v}" for k, v in w["failed"].items() if v)
            console.print(f"  {w['case']} ({w['target']}/{w['prompt']}, {w['score']:.2f}): "
                          f"{reasons or w['error'] or ''}", markup=False, highlight=False)
            if w["output"]:
                console.print("    " + w["output"][:200].replace("\n", " "), markup=False,
                              highlight=False, style="dim")


def write_junit(results: list[Result], run_id: str, path: Path) -> None:
    """One testsuite per target/prompt, one testcase per case; failures say which checks."""
    root = ET.Element("testsuites", name=run_id)
    groups: dict[str, list[Result]] = defaultdict(list)
    for r in results:
        groups[f"{r.target}/{r.prompt}"].append(r)
    for name, rs in sorted(groups.items()):
        suite = ET.SubElement(root, "testsuite", name=name, tests=str(len(rs)),
                              failures=str(sum(not r.passed for r in rs)))
        for r in rs:
            case = ET.SubElement(suite, "testcase", classname=name,
                                 name=f"{r.case_id}#{r.repeat}")
            if not r.passed:
                why = "; ".join(f"{k}: {s['reason']}" for k, s in r.scores.items()
                                if not s["passed"]) or str(r.output.get("error") or "failed")
                failure = ET.SubElement(case, "failure", message=why[:500])
                failure.text = str(r.output.get("text") or "")
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def write_html(summary: dict[str, Any], run_id: str, path: Path) -> None:
    """A self-contained page: a bar chart of pass rate per target/prompt and assertion (SVG),
    the table, and the worst cases."""
    groups = summary["groups"]
    labels = sorted({a for g in groups for a in g["assertions"]})
    colours = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948"]
    bar, gap = 18, 30
    width = max(160 + len(labels) * (len(groups) * bar + gap), 90 + 170 * len(groups))
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="300">',
           '<line x1="60" y1="250" x2="100%" y2="250" stroke="#888"/>']
    for tick in (0, 0.5, 1):
        y = 250 - 200 * tick
        svg.append(f'<text x="50" y="{y + 4}" font-size="11" text-anchor="end">'
                   f'{tick:.0%}</text>')
    x = 70
    for label in labels:
        for gi, g in enumerate(groups):
            rate = g["assertions"].get(label, {}).get("pass_rate", 0.0)
            h = 200 * rate
            svg.append(f'<rect x="{x}" y="{250 - h:.1f}" width="{bar - 2}" height="{h:.1f}" '
                       f'fill="{colours[gi % len(colours)]}"><title>{html.escape(label)} · '
                       f'{html.escape(g["target"])}/{html.escape(g["prompt"])}: '
                       f'{rate:.0%}</title></rect>')
            x += bar
        svg.append(f'<text x="{x - len(groups) * bar / 2}" y="268" font-size="11" '
                   f'text-anchor="middle">{html.escape(label)}</text>')
        x += gap
    for gi, g in enumerate(groups):
        svg.append(f'<rect x="{70 + gi * 170}" y="282" width="10" height="10" '
                   f'fill="{colours[gi % len(colours)]}"/><text x="{84 + gi * 170}" y="291" '
                   f'font-size="11">{html.escape(g["target"])}/{html.escape(g["prompt"])}</text>')
    svg.append("</svg>")
    rows = "".join(
        f"<tr><td>{html.escape(g['target'])}</td><td>{html.escape(g['prompt'])}</td>"
        f"<td>{g['cases']}</td><td>{g['pass_rate']:.0%}</td><td>{g['score']:.2f}</td></tr>"
        for g in groups)
    worst = "".join(
        f"<li><b>{html.escape(w['case'])}</b> ({html.escape(w['target'])}/"
        f"{html.escape(w['prompt'])}): "
        f"{html.escape('; '.join(f'{k}: {v}' for k, v in w['failed'].items()))}"
        f"<pre>{html.escape(w['output'])}</pre></li>" for w in summary["worst"])
    page = (f"<!doctype html><meta charset=utf-8><title>{html.escape(run_id)}</title>"
            "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 10px}"
            "pre{white-space:pre-wrap;color:#555}</style>"
            f"<h1>{html.escape(run_id)}</h1><p>{summary['pass_rate']:.0%} of "
            f"{summary['cases']} results passed.</p><h2>Pass rate per assertion</h2>"
            + "".join(svg) +
            "<h2>Targets and prompts</h2><table><tr><th>target</th><th>prompt</th>"
            f"<th>cases</th><th>pass</th><th>score</th></tr>{rows}</table>"
            f"<h2>Worst cases</h2><ul>{worst or '<li>none failed</li>'}</ul>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)

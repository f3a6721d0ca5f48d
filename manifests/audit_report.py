"""Writing the audit: a self-contained, printable ``index.html`` (charts as inline SVG),
``audit.json`` and CSVs, into a directory that appears whole or not at all."""

from __future__ import annotations

import csv
import html
import io
import json
from pathlib import Path

from manifests import outdir

BAR = "#2f6f9f"
BLOCK = "#b3261e"
CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d1d1f;
margin:2rem auto;max-width:70rem;padding:0 1rem}
h1{font-size:1.7rem;margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:1px solid #ccc}
.muted{color:#666}.gate{padding:.8rem 1rem;border-radius:6px;font-weight:600;margin:1rem 0}
.pass{background:#e6f4ea;color:#1e5631}.fail{background:#fce8e6;color:#8c1d18}
.cards{display:flex;flex-wrap:wrap;gap:.8rem}.card{border:1px solid #ddd;border-radius:6px;
padding:.6rem .9rem;min-width:9rem}.card b{display:block;font-size:1.5rem}
table{border-collapse:collapse;width:100%;font-size:13px;margin:.5rem 0}
th,td{border-bottom:1px solid #e3e3e3;padding:.3rem .4rem;text-align:left;vertical-align:top}
th{background:#f5f5f7}.blocker{color:#8c1d18;font-weight:600}.warning{color:#8a5a00}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(30rem,1fr));gap:1rem}
svg text{font:12px system-ui,sans-serif}code{font-size:12px;word-break:break-all}
@media print{body{margin:0;max-width:none}h2{break-after:avoid}tr{break-inside:avoid}
.charts{display:block}}
"""


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def bar_chart(title: str, data: dict[str, float], unit: str, color: str = BAR) -> str:
    """A horizontal bar chart as inline SVG (no scripts, no external assets)."""
    items = sorted(data.items(), key=lambda kv: (-kv[1], kv[0]))
    width, label_w, row = 560, 220, 24
    height = 34 + row * max(1, len(items))
    top = max((v for _, v in items), default=0) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" '
             f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'aria-label="{_e(title)}"><title>{_e(title)}</title>',
             f'<text x="0" y="16" font-weight="600">{_e(title)}</text>']
    if not items:
        parts.append('<text x="0" y="44" fill="#666">nothing to show</text>')
    for i, (label, value) in enumerate(items):
        y = 30 + i * row
        label = label if len(label) <= 34 else label[:33] + "…"
        w = max(1.0, (width - label_w - 70) * value / top) if value else 0
        shown = f"{value:.2f} {unit}" if isinstance(value, float) else \
            f"{value} {unit.removesuffix('s') if value == 1 else unit}"
        parts.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{_e(label)}</text>'
                     f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{w:.1f}" height="16" '
                     f'fill="{color}"/><text x="{label_w + w + 6:.1f}" y="{y + 15}">'
                     f'{_e(shown)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table(headers: list[str], rows: list[list], cls: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _sample_note(subset: dict) -> str:
    """A sample's clips are counted in the subsets they come from, not again: say so."""
    if not subset.get("sample_of"):
        return ""
    return (f'<br><span class="muted" data-sample-of="{_e(" ".join(subset["sample_of"]))}">'
            f'a sample of {_e(", ".join(subset["sample_of"]))}: its clips are counted there, '
            'not added to the totals</span>')


def render_html(audit: dict) -> str:
    s, gate = audit["summary"], audit["gate"]
    rel = audit["release"]
    scope = f"release {_e(rel['version'])}" if rel else "the crawl catalog (no release given)"
    cards = [("items_seen", "items seen"), ("items_accepted", "accepted"),
             ("items_rejected", "rejected"), ("hours_downloaded", "hours downloaded")]
    if rel:
        cards += [("clips_in_release", "clips in release"), ("hours_in_release",
                                                               "hours in release")]
    card_html = "".join(f'<div class="card"><b data-total="{k}">{_e(s[k])}</b>{_e(label)}</div>'
                        for k, label in cards)
    warnings = f'{gate["warnings"]} warning{"" if gate["warnings"] == 1 else "s"}'
    gate_html = (f'<div class="gate pass" data-gate="pass">License gate passed: no blocking '
                 f'findings ({warnings} to review).</div>' if gate["passed"]
                 else f'<div class="gate fail" data-gate="fail">License gate FAILED: '
                      f'{gate["blockers"]} blocking findings. This release must not be '
                      'distributed as it is.</div>')
    subset_hours = {x["name"]: x["hours"] for x in audit["subsets"]}
    charts = [bar_chart("Hours per license", s["hours_by_license"], "h"),
              bar_chart("Hours per source", s["hours_by_source"], "h"),
              bar_chart("Hours per subset", subset_hours, "h"),
              bar_chart("Rejected items by reason", s["rejections_by_reason"], "items", BLOCK)]
    subsets = _table(["subset", "clips", "hours", "licenses", "verdict"], [
        [_e(x["name"]) + _sample_note(x), _e(x["clips"]), f'{x["hours"]:.2f}',
         _e(", ".join(x["licenses"])),
         f'<span class="{"" if x["distributable"] else "blocker"}">{_e(x["verdict"])}</span>']
        for x in audit["subsets"]])
    findings = _table(["severity", "finding", "item", "what"], [
        [f'<span class="{_e(f["severity"])}">{_e(f["severity"])}</span>', _e(f["kind"]),
         f'<code>{_e(f["item_id"])}</code>', _e(f["message"])] for f in audit["findings"]],
        "findings") if audit["findings"] else "<p>No findings.</p>"
    items = _table(["item", "license as found", "SPDX id", "evidence", "decision",
                    "clips", "hours used"], [
        [f'<a href="{_e(r["url"])}">{_e(r["title"] or r["item_id"])}</a><br>'
         f'<code>{_e(r["item_id"])}</code><br><span class="muted">by {_e(r["creator"] or "?")}'
         f'</span>',
         f'<code>{_e(json.dumps(r["license_raw"]) if isinstance(r["license_raw"], list) else r["license_raw"])}</code>',  # noqa: E501
         _e(r["license_spdx"] or "—"),
         "<br>".join(f'{_e(e["field"])} → {_e(e["spdx"] or e.get("note") or "?")}'
                     for e in r["evidence"]) + f'<br><span class="muted">crawled '
         f'{_e(r["crawled_at"])}</span>',
         _e(r["decision"]) + (f'<br><span class="muted">{_e(r["reason"])}</span>'
                              if r["reason"] else ""),
         _e(r["clips_used"]), f'{r["hours_used"] if rel else r["hours_downloaded"]:.2f}']
        for r in audit["items"]])
    families = "".join(f"<li>{_e(k)}: {v} items</li>"
                       for k, v in s["items_by_family"].items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>License audit — {scope}</title>
<meta name="viewport" content="width=device-width,initial-scale=1"><style>{CSS}</style></head>
<body>
<h1>License audit</h1>
<p class="muted">Scope: {scope}. Made {_e(audit["generated_at"])} by speechcrawl
{_e(audit["code_version"])}.</p>
{gate_html}
<h2>Summary</h2>
<div class="cards">{card_html}</div>
<p>Accepted items by license family:</p><ul>{families}</ul>
<p class="muted">Accepted: public domain (CC0, Public Domain Mark, U.S. government works),
CC BY and CC BY-SA in every version and port. Rejected, with a recorded reason:
non-commercial, no-derivatives, missing, unparseable or conflicting license statements.</p>
<h2>Charts</h2><div class="charts">{"".join(charts)}</div>
<h2>License verdict per subset</h2>{subsets}
<h2>Findings that need a person</h2>{findings}
<h2>Every item</h2>{items}
</body></html>
"""


def _csv(rows: list[dict], fields: list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (json.dumps(v) if isinstance(v, list | dict) else v)
                    for k, v in r.items()})
    return buf.getvalue()


def write_report(audit: dict, out: Path, workdir: Path | None = None) -> Path:
    """Write the report directory, which appears whole or not at all. An existing ``out`` is
    replaced only when it is an earlier audit report (``manifests.outdir``); never the
    workdir or a directory holding anything else."""
    with outdir.replacing(out, "audit", workdir) as tmp:
        _write_files(audit, tmp)
    return Path(out)


def _write_files(audit: dict, tmp: Path) -> None:
    files = {
        "index.html": render_html(audit),
        "audit.json": json.dumps(audit, indent=2, ensure_ascii=False) + "\n",
        "items.csv": _csv(audit["items"], [
            "source", "item_id", "title", "creator", "url", "license_raw", "license_spdx",
            "license_family", "license_url", "decision", "reason", "crawled_at", "gone_at",
            "evidence", "asr_files", "hours_downloaded", "clips_used", "hours_used",
            "subsets"]),
        "findings.csv": _csv(audit["findings"], ["severity", "kind", "source", "item_id",
                                                 "message", "details"]),
        "attribution.csv": _csv(audit["attribution"], ["source", "item_id", "title", "author",
                                                       "source_url", "license", "license_url"]),
    }
    for name, text in files.items():
        (tmp / name).write_text(text, encoding="utf-8")

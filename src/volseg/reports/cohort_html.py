"""index.html of a cohort: failed studies with their one-line errors, every study linked, distribution plots per structure, outliers listed.

Plots: one panel per structure (24 per picture): a box plot of volume_ml over the studies where the
structure is not empty, every study a dot (deterministic jitter); dots beyond 1.5 IQR of the box are
red; studies whose structure is QC-flagged (truncated, fragmented, ...) get an orange ring.
"""
from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from volseg import __version__
from volseg.reports.cohort_types import COHORT_FAILURES, CohortResult, structure_names, study_page
from volseg.reports.html import DISCLAIMER, escape, flag_badges, html_table, instances, qc_flags
from volseg.reports.warning_folds import summary as warning_summary

PANELS_PER_PICTURE = 24
PANEL_COLUMNS = 4
_STYLE = """body{font-family:"DejaVu Sans",Arial,sans-serif;margin:0;color:#1b1f24;background:#f4f5f7}
header{background:#1f2a37;color:#fff;padding:14px 24px}header h1{margin:0;font-size:22px}
main{padding:12px 24px 32px}section{background:#fff;border:1px solid #d9dde3;border-radius:6px;margin:14px 0;
padding:10px 16px}h2{font-size:17px}table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #d9dde3;
padding:3px 8px;text-align:left}th{background:#eef1f5}td.num{text-align:right}tr.qc td{background:#fff4e0}
.flag{display:inline-block;background:#c0392b;color:#fff;border-radius:3px;padding:0 5px;margin:1px 2px;
font-size:11px;font-weight:bold}.flag.soft{background:#d68910}.note{color:#55606e;font-size:12px}
.warnings{background:#fff8e1;border-color:#f0c36d}.failed{background:#fdecea;border-color:#e6a19a}
tr.qc td{background:#fff4e0}.failed tr.qc td{background:#fdecea}img{max-width:100%}footer{color:#55606e;font-size:12px;
padding:0 24px 24px}"""


@dataclass(frozen=True)
class Point:
    study_id: str
    volume_ml: float
    flagged: bool
    outlier: bool = False


def iqr_outliers(values: Sequence[float], k: float = 1.5) -> np.ndarray:
    """Boolean mask of values beyond ``k`` × IQR outside the quartiles (none with fewer than 4 values)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size < 4:
        return np.zeros(v.size, dtype=bool)
    q1, q3 = np.percentile(v, [25, 75])
    spread = q3 - q1
    return (v < q1 - k * spread) | (v > q3 + k * spread)


def distribution_points(result: CohortResult) -> dict[str, list[Point]]:
    """Per structure, one point per study where it is not empty; outliers marked."""
    points: dict[str, list[Point]] = {}
    for name in structure_names(result.studies):
        found = []
        for s in result.studies:
            row = next((r for r in s.report.structures if r.name == name), None)
            if row is not None and not row.empty:
                flags = [f for f in qc_flags(row) if f != "empty"]
                found.append(Point(s.study_id, float(row.volume_ml), bool(flags)))
        mask = iqr_outliers([p.volume_ml for p in found])
        points[name] = [Point(p.study_id, p.volume_ml, p.flagged, bool(m)) for p, m in zip(found, mask)]
    return points


def render_index(result: CohortResult, root: Path) -> str:
    points = distribution_points(result)
    body = [_failures_section(result), _problems_section(result), _studies_section(result, root),
            _plots_section(points), _outliers_section(points)]
    now = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    failed = f", {len(result.failures)} failed" if result.failures else ""
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>volseg cohort</title>'
            f"<style>{_STYLE}</style></head><body><header><h1>volseg cohort: {len(result.studies)} studies"
            f"{failed}</h1>"
            f'<div class="note" style="color:#c9d3df">collected {escape(now)} UTC by volseg {escape(__version__)}'
            f"</div></header><main>{''.join(body)}</main><footer>{escape(DISCLAIMER)}</footer></body></html>\n")


def _failures_section(result: CohortResult) -> str:
    """Studies whose latest batch run failed: not in the tables below, listed here with their error."""
    if not result.failures:
        return ""
    head = ["Study", "Model", "Stage", "Error", "Exit code", "Failed at (UTC)"]
    rows = [([escape(f.study_id), escape(f.model or "—"), escape(f.stage),
              f"<b>{escape(f.error_class)}</b>: {escape(f.error)}", str(f.exit_code), escape(f.time)], True)
            for f in result.failures]
    return (f'<section class="failed" id="failed"><h2>Failed studies ({len(result.failures)})</h2>'
            + html_table(head, rows, numeric={4}) +
            f'<div class="note">Not measured, so absent from the tables and plots below; also in '
            f"{escape(COHORT_FAILURES)}. Fix the inputs, then rerun the batch with --retry-failed.</div></section>")


def _problems_section(result: CohortResult) -> str:
    if not result.skipped and not result.notes:
        return ""
    items = "".join(f"<li>skipped {escape(path)}: {escape(reason)}</li>" for path, reason in result.skipped)
    items += "".join(f"<li>{escape(n)}</li>" for n in result.notes)
    return f'<section class="warnings"><h2>Notes</h2><ul>{items}</ul></section>'


def _studies_section(result: CohortResult, root: Path) -> str:
    head = ["Study", "Model", "Structures", "QC-flagged structures", "Lesions", "Warnings", "Created (UTC)"]
    rows = []
    for s in result.studies:
        r = s.report
        page = study_page(s, root)
        name = f'<a href="{escape(page)}">{escape(s.study_id)}</a>' if page else escape(s.study_id)
        flagged = [f"{row.name}: {flag_badges(qc_flags(row))}" for row in r.structures if qc_flags(row)]
        model = r.provenance.model
        rows.append(([name, escape(f"{model.name} {model.version}" if model else "—"), str(len(r.structures)),
                      "<br>".join(flagged), str(len(instances(r))), escape(warning_summary(r.warnings)),
                      escape(r.provenance.created_utc)], bool(flagged)))
    return "<section><h2>Studies</h2>" + html_table(head, rows, numeric={2, 4}) + "</section>"


def _plots_section(points: dict[str, list[Point]]) -> str:
    names = [n for n, p in points.items() if p]
    if not names:
        return ""
    images = []
    for start in range(0, len(names), PANELS_PER_PICTURE):
        chunk = names[start:start + PANELS_PER_PICTURE]
        data = base64.b64encode(_distribution_png(chunk, points)).decode("ascii")
        images.append(f'<img alt="volume distributions" src="data:image/png;base64,{data}">')
    legend = ('<div class="note">Box: quartiles and 1.5 IQR whiskers over the studies where the structure is '
              "not empty. Red dot: outlier (beyond 1.5 IQR). Orange ring: QC-flagged in that study "
              "(e.g. truncated: the volume is a lower bound).</div>")
    return "<section><h2>Volume distributions (mL)</h2>" + legend + "".join(images) + "</section>"


def _outliers_section(points: dict[str, list[Point]]) -> str:
    rows = []
    for name, pts in points.items():
        for p in pts:
            if p.outlier or p.flagged:
                why = ", ".join(w for w, on in (("beyond 1.5 IQR", p.outlier), ("QC-flagged", p.flagged)) if on)
                rows.append(([escape(p.study_id), escape(name), f"{p.volume_ml:.2f}", escape(why)], True))
    if not rows:
        return "<section><h2>Outliers and QC-flagged volumes</h2><p>none</p></section>"
    head = ["Study", "Structure", "Volume (mL)", "Why"]
    return "<section><h2>Outliers and QC-flagged volumes</h2>" + html_table(head, rows, numeric={2}) + "</section>"


def _distribution_png(names: Sequence[str], points: dict[str, list[Point]]) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n_rows = -(-len(names) // PANEL_COLUMNS)
    fig = Figure(figsize=(3.3 * PANEL_COLUMNS, 2.5 * n_rows), dpi=90)
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_rows, PANEL_COLUMNS, squeeze=False)
    for ax, name in zip(axes.ravel(), names):
        pts = points[name]
        values = np.array([p.volume_ml for p in pts])
        ax.boxplot(values, positions=[0], widths=0.5, showfliers=False, medianprops={"color": "#1f2a37"})
        jitter = (np.modf(np.arange(len(pts)) * 0.618033988749895)[0] - 0.5) * 0.5  # deterministic
        colours = ["#c0392b" if p.outlier else "#2e86c1" for p in pts]
        ax.scatter(jitter, values, s=16, c=colours, zorder=3)
        flagged = [i for i, p in enumerate(pts) if p.flagged]
        if flagged:
            ax.scatter(jitter[flagged], values[flagged], s=70, facecolors="none", edgecolors="#e67e22",
                       linewidths=1.5, zorder=4)
        ax.set_title(f"{name} (n={len(pts)})", fontsize=9)
        ax.set_xticks([])
        ax.set_xlim(-0.6, 0.6)
        ax.set_ylabel("mL", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(names):]:
        ax.set_axis_off()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()

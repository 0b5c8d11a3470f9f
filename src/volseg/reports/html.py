"""report.html: one self-contained page (pictures embedded as base64 PNG) rendering one Report.

The page is filled from ``templates/report.html`` with :class:`string.Template`; every value from
the report is escaped with :func:`html.escape`. Sections: study summary (input geometry, model,
device, timings, options, fallbacks), pictures, warnings (folded by kind), structures (volumes, HU
statistics, QC flags highlighted), lesions/lymph nodes with their pictures and burden, airway metrics.

Fields added by later schema minor versions (``instances``, ``burden``, ``airway``, ``qc_flags``)
are read defensively: a report without them renders without those sections.
"""
from __future__ import annotations

import base64
import html
import json
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from functools import partial
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

from volseg import __version__
from volseg.io.atomic import write_text
from volseg.labels import LabelTable
from volseg.parallel import map_forked
from volseg.postprocess.qc import is_fov_exempt
from volseg.reports.model import Report
from volseg.reports.pictures import (
    VIEWS,
    DisplayVolumes,
    Picture,
    airway_picture,
    lesion_picture,
    overview_picture,
    overview_pictures,
)
from volseg.reports.warning_folds import WarningGroup, fold_warnings
from volseg.volume import Volume

REPORT_HTML = "report.html"
MAX_LESION_PICTURES = 24
NO_IMAGE_NOTE = ("The input image was not available: pictures show the label map only (re-render with "
                 "--image to draw on the image).")
DISCLAIMER = ("Research use only: automatic segmentation and measurements must be checked by a qualified "
              "reader before any clinical use.")


# ---- defensive access to fields that later schema versions add -------------------------------
def as_dict(item: Any) -> dict[str, Any]:
    if item is None:
        return {}
    if hasattr(item, "model_dump"):
        return item.model_dump()
    return dict(item)


def instances(report: Report) -> list[dict[str, Any]]:
    return [as_dict(i) for i in report.instances]


def qc_flags(row: Any) -> list[str]:
    """A structure's QC flags: its ``qc_flags`` plus those implied by ``touches_fov``/``empty``
    (never ``truncated`` for the body and leftover-tissue classes: they always reach the edge)."""
    flags = list(row.qc_flags)
    if is_fov_exempt(row.name):
        flags = [f for f in flags if f != "truncated"]
    elif row.touches_fov and "truncated" not in flags:
        flags.append("truncated")
    if row.empty and "empty" not in flags:
        flags.append("empty")
    return flags


# ---- pictures ----------------------------------------------------------------------------------
def study_pictures(report: Report, labels: LabelTable, segmentation: Volume, image: Volume | None,
                   *, max_lesions: int = MAX_LESION_PICTURES,
                   overview: Sequence[Picture] | None = None) -> tuple[list[Picture], list[Picture], list[str]]:
    """(overview + airway pictures, lesion pictures, notes) for one study; ``overview``: the overview
    pictures already drawn (:func:`draw_overview`, beside the measuring)."""
    is_ct = report.input.modality == "CT" or any(s.mean_hu is not None for s in report.structures)
    display = DisplayVolumes.build(segmentation, image, is_ct=is_ct)
    notes = [] if image is not None else [NO_IMAGE_NOTE]
    branches = [as_dict(b) for b in as_dict(getattr(report, "airway", None)).get("branches", [])]
    rows = sorted(instances(report), key=lambda i: -(i.get("long_axis_mm") or 0.0))
    views = [] if overview is not None else [partial(overview_picture, display, labels, view) for view in VIEWS]
    jobs: list[Callable[[], Picture | None]] = [*views, partial(airway_picture, display, labels, branches)]
    jobs += [partial(lesion_picture, display, labels, row) for row in rows[:max_lesions]]
    drawn = [*(overview or ()), *map_forked(_draw, jobs)]  # each picture on its own: spread over the cores
    main = [p for p in drawn[:len(VIEWS) + 1] if p is not None]
    lesions = [p for p in drawn[len(VIEWS) + 1:] if p is not None]
    if len(rows) > max_lesions:
        notes.append(f"{len(rows) - max_lesions} smaller lesions are listed in the table but not pictured.")
    return main, lesions, notes


def draw_overview(labels: LabelTable, segmentation: Volume, image: Volume | None, *,
                  is_ct: bool) -> list[Picture]:
    """The overview pictures :func:`study_pictures` draws, from the label map and image alone (so they
    can be drawn before the report exists)."""
    return overview_pictures(DisplayVolumes.build(segmentation, image, is_ct=is_ct), labels)


def _draw(job: Callable[[], Picture | None]) -> Picture | None:
    return job()


def write_report_html(out_dir: str | Path, report: Report, labels: LabelTable, segmentation: Volume,
                      image: Volume | None, *, overview: Sequence[Picture] | None = None) -> Path:
    main, lesions, notes = study_pictures(report, labels, segmentation, image, overview=overview)
    page = render_html(report, labels=labels, pictures=main, lesion_pictures=lesions, notes=notes)
    return write_text(Path(out_dir) / REPORT_HTML, page)


# ---- the page --------------------------------------------------------------------------------------
def render_html(report: Report, *, labels: LabelTable | None = None, pictures: Sequence[Picture] = (),
                lesion_pictures: Sequence[Picture] = (), notes: Sequence[str] = ()) -> str:
    template = Template((resources.files("volseg.reports") / "templates" / "report.html").read_text("utf-8"))
    n_warn = len(fold_warnings(report.warnings))
    n_flagged = sum(1 for s in report.structures if qc_flags(s))
    badge = (f'<span class="badge">{n_warn} warning(s)</span>' if n_warn else '<span class="badge ok">no warnings</span>')
    badge += f'<span class="badge">{n_flagged} structure(s) QC-flagged</span>' if n_flagged else ""
    model = report.provenance.model
    subtitle = (f"{escape(report.input.file_name)} · model {escape(model.name + ' ' + model.version) if model else '—'}"
                f" · created {escape(report.provenance.created_utc)} UTC {badge}")
    body = "\n".join([
        _summary_section(report),
        _pictures_section("Pictures", pictures),
        _warnings_section(report.warnings, notes),
        _structures_section(report, labels),
        _lesions_section(report, lesion_pictures),
        _airway_section(report),
    ])
    footer = (f"volseg {escape(report.provenance.volseg_version)} · report schema {escape(report.schema_version)} · "
              f"page rendered by volseg {escape(__version__)}. {escape(DISCLAIMER)}")
    return template.substitute(title=escape(f"volseg report: {report.study_id}"), subtitle=subtitle, body=body,
                               footer=footer, volseg_version=escape(__version__))


def _summary_section(report: Report) -> str:
    i, p = report.input, report.provenance
    geometry = [
        ("Study", report.study_id), ("Input", f"{i.file_name} ({i.kind})"), ("Modality", i.modality or "—"),
        ("Grid (voxels)", " × ".join(str(n) for n in i.shape)),
        ("Spacing (mm)", " × ".join(f"{s:.4g}" for s in i.spacing_mm)),
        ("Orientation", i.orientation), ("Voxel volume (mm³)", f"{i.voxel_volume_mm3:.4g}"),
    ]
    if i.intensity_min is not None and i.intensity_max is not None:
        geometry.append(("Intensity range", f"{i.intensity_min:g} … {i.intensity_max:g}"))
    if i.series_number is not None or i.n_files:
        number = i.series_number if i.series_number is not None else "?"
        geometry.append(("DICOM series", f"number {number}, {i.n_files or '?'} files"))
    model = p.model
    weights = "; ".join(f"{w.get('file', w.get('name', '?'))} sha256 {str(w.get('sha256', '?'))[:12]}…"
                        for w in (model.weights if model else [])) or "none (rule-based or not recorded)"
    total = sum(p.timings_s.values())
    timings = ", ".join(f"{k} {v:.2f}" for k, v in p.timings_s.items()) + (f" (total {total:.2f})" if p.timings_s else "")
    run = [
        ("Model", f"{model.name} {model.version}" if model else "— (measured an existing label map)"),
        ("Weights", weights), ("Device", p.device or "—"), ("Timings (s)", timings or "—"),
        ("Options", json.dumps(p.options, sort_keys=True, default=str)),
        ("Fallbacks taken", "; ".join(p.fallbacks) or "none"),
        ("volseg", p.volseg_version), ("Environment", ", ".join(f"{k} {v}" for k, v in p.environment.items())),
    ]
    fallback_cls = {"Fallbacks taken"} if p.fallbacks else set()
    return ("<section><h2>Study</h2><div class=\"pictures\">" + _kv_table(geometry) +
            _kv_table(run, highlight=fallback_cls) + "</div></section>")


def _warnings_section(warnings: Sequence[str], notes: Sequence[str]) -> str:
    if not warnings and not notes:
        return ""
    groups = fold_warnings(warnings)
    items = "".join(_warning_item(g) for g in groups)
    items += "".join(f'<li class="note">{escape(n)}</li>' for n in notes)
    count = f"{len(groups)}" + (f", folded from {len(warnings)}" if len(groups) != len(warnings) else "")
    return f'<section class="warnings"><h2>Warnings ({count})</h2><ul>{items}</ul></section>'


def _warning_item(group: WarningGroup) -> str:
    if not group.folded:
        return f"<li>{escape(group.text)}</li>"
    return (f"<li><details><summary>{escape(group.text)}</summary>"
            f'<span class="note">{escape(", ".join(group.names))}</span></details></li>')


def _pictures_section(title: str, pictures: Sequence[Picture]) -> str:
    if not pictures:
        return ""
    figures = "".join(_figure(p) for p in pictures)
    return f'<section><h2>{escape(title)}</h2><div class="pictures">{figures}</div></section>'


def _figure(p: Picture) -> str:
    data = base64.b64encode(p.png).decode("ascii")
    return (f'<figure id="{escape(p.key)}"><img alt="{escape(p.title)}" src="data:image/png;base64,{data}">'
            f"<figcaption><b>{escape(p.title)}</b>: {escape(p.caption)}</figcaption></figure>")


def _structures_section(report: Report, labels: LabelTable | None) -> str:
    unit = _intensity_unit(report)
    short = "HU" if unit == "HU" else "image units"
    head = ["Structure", "Label", "Volume (mL)", "Voxels", f"Mean ({short})", f"SD ({short})", f"P5–P95 ({short})",
            "Components", "Largest component (mL)", "QC"]
    rows = []
    for s in report.structures:
        flags = qc_flags(s)
        colour = labels[s.label].color if labels is not None and s.label in labels else None
        swatch = f'<span class="swatch" style="background: rgb{tuple(colour)}"></span>' if colour else ""
        notes = "".join(f'<div class="note">{escape(n)}</div>' for n in (getattr(s, "qc_notes", None) or []))
        mean, sd, p5, p95 = (_stat(s, k) for k in ("mean", "std", "p5", "p95"))
        p595 = "" if p5 is None or p95 is None else f"{p5:.0f} … {p95:.0f}"
        cells = [swatch + escape(s.display_name or s.name) + f' <span class="note">{escape(s.name)}</span>', str(s.label),
                 _n(s.volume_ml, 2), str(s.voxel_count), _n(mean, 1), _n(sd, 1), p595,
                 str(s.n_components), _n(s.largest_component_ml, 2), flag_badges(flags) + notes]
        rows.append((cells, bool(flags)))
    said = ("Intensities in Hounsfield units." if unit == "HU" else
            f"Intensities in {escape(unit)}: the image is not CT in HU." if unit else "No image: no intensities.")
    return ('<section><h2>Structures</h2>' + html_table(head, rows, numeric={2, 3, 4, 5, 7, 8}) +
            '<div class="note">Volumes of structures flagged <i>truncated</i> are lower bounds (cut by the '
            f"field of view). {said}</div></section>")


def _intensity_unit(report: Report) -> str | None:
    """The unit of the structures' intensity statistics ('HU' for reports older than 1.4.0 with HU)."""
    for s in report.structures:
        unit = getattr(s, "intensity_unit", None) or ("HU" if s.mean_hu is not None else None)
        if unit:
            return unit
    return None


def _stat(row, key: str) -> float | None:
    value = getattr(row, f"{key}_intensity", None)
    return value if value is not None else getattr(row, f"{key}_hu", None)


def _lesions_section(report: Report, pictures: Sequence[Picture]) -> str:
    rows_in = instances(report)
    burden = [as_dict(b) for b in (getattr(report, "burden", None) or [])]
    if not rows_in and not burden:
        return ""
    head = ["Instance", "Class", "Kind", "Host organ", "Volume (mL)", "Long axis (mm)", "Short axis (mm)",
            "Short-axis class", "Station", "Mean (HU)", "RECIST target"]
    rows = []
    pictured = {p.key for p in pictures}
    for r in rows_in:
        link = escape(r.get("instance_id", ""))
        if f"lesion-{r.get('instance_id')}" in pictured:
            link = f'<a href="#lesion-{link}">{link}</a>'
        rows.append(([link, escape(r.get("class_name", "")), escape(r.get("kind", "")), escape(r.get("host_organ") or "—"),
                      _n(r.get("volume_ml"), 2), _n(r.get("long_axis_mm"), 1), _n(r.get("short_axis_mm"), 1),
                      escape(r.get("short_axis_class") or "—"), escape(r.get("station") or "—"), _n(r.get("mean_hu"), 1),
                      "yes" if r.get("recist_target") else ""], False))
    parts = [f"<section><h2>Lesions and lymph nodes ({len(rows_in)})</h2>",
             html_table(head, rows, numeric={4, 5, 6, 9})]
    if burden:
        bhead = ["Class", "Count", "Total volume (mL)", "RECIST target sum (mm)", "RECIST targets"]
        brows = [([escape(b.get("class_name", "")), str(b.get("lesion_count", "")), _n(b.get("total_volume_ml"), 2),
                   _n(b.get("recist_target_sum_mm"), 1), str(b.get("n_recist_targets", ""))], False) for b in burden]
        parts += ["<h2>Burden</h2>", html_table(bhead, brows, numeric={1, 2, 3, 4})]
    if pictures:
        parts.append('<div class="pictures">' + "".join(_figure(p) for p in pictures) + "</div>")
    return "".join(parts) + "</section>"


def _airway_section(report: Report) -> str:
    a = as_dict(getattr(report, "airway", None))
    if not a:
        return ""
    per_gen = ", ".join(f"gen {g}: {n}" for g, n in sorted((a.get("branches_per_generation") or {}).items(),
                                                             key=lambda kv: int(kv[0])))
    items = [("Branches", a.get("branch_count")), ("Maximum generation", a.get("max_generation")),
             ("Branches per generation", per_gen or "—"),
             ("Total centreline length (mm)", _n(a.get("total_centreline_length_mm"), 1)),
             ("Trachea length (mm)", _n(a.get("trachea_length_mm"), 1)),
             ("Trachea diameter (mm)", _n(a.get("trachea_diameter_mm"), 1)),
             ("Lumen volume (mL)", _n(a.get("lumen_volume_ml"), 2)),
             ("Leak suspected", "YES" if a.get("leak_suspected") else "no")]
    highlight = {"Leak suspected"} if a.get("leak_suspected") else set()
    return "<section><h2>Airway tree</h2>" + _kv_table(items, highlight=highlight) + "</section>"


# ---- small HTML helpers -----------------------------------------------------------------------------
def escape(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _n(value: object, digits: int) -> str:
    return "" if value is None else f"{float(value):.{digits}f}"  # type: ignore[arg-type]


def flag_badges(flags: Iterable[str]) -> str:
    soft = {"fragmented"}
    return "".join(f'<span class="flag{" soft" if f in soft else ""}">{escape(f)}</span>' for f in flags)


def _kv_table(items: Sequence[tuple[str, object]], *, highlight: AbstractSet[str] = frozenset()) -> str:
    rows = "".join(f'<tr{" class=qc" if k in highlight else ""}><th>{escape(k)}</th><td>{escape(v)}</td></tr>'
                   for k, v in items)
    return f'<table class="kv">{rows}</table>'


def html_table(head: Sequence[str], rows: Sequence[tuple[Sequence[str], bool]], *, numeric: set[int]) -> str:
    """Cells are HTML already (escaped by the caller); a row's flag marks it as QC-highlighted."""
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = []
    for cells, flagged in rows:
        tds = "".join(f'<td{" class=num" if i in numeric else ""}>{c}</td>' for i, c in enumerate(cells))
        body.append(f'<tr{" class=qc" if flagged else ""}>{tds}</tr>')
    return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(body)}</tbody></table>"

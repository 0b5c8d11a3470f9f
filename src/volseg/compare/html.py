"""comparison.html: one self-contained page (pictures inline as base64 PNG, no network) rendering one
:class:`~volseg.compare.results.Comparison`.

Filled from ``templates/comparison.html`` with :class:`string.Template`; every value is escaped. Sections:
the registration warning (first, when an alignment is poor), the studies (named by folder and study id,
never by patient), the registrations, RECIST 1.1 (sums per time point, nadir, changes, category and the
rule that decided it; targets, lymph nodes), organ changes, and one row per lesion match with its two
pictures side by side (:mod:`volseg.compare.pictures`), then the comparison's warnings.
"""
from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from string import Template

from volseg import __version__
from volseg.compare.pictures import PicturePair, pair_pictures
from volseg.compare.results import Comparison, LesionMatch, RecistAssessment, Registration
from volseg.compare.study_data import StudyData, StudyLoader, read_study_data
from volseg.errors import InputError
from volseg.io.atomic import ensure_writable_dir, write_text
from volseg.reports.html import DISCLAIMER, escape, html_table
from volseg.reports.pictures import Picture

log = logging.getLogger(__name__)

COMPARISON_HTML = "comparison.html"
MAX_PICTURED = 40


def write_comparison_html(out_dir: str | Path, comparison: Comparison, *, loader: StudyLoader | None = None,
                          max_pictured: int = MAX_PICTURED) -> dict[str, Path]:
    """Write ``out_dir/comparison.html`` (atomically), reading each study's voxels through ``loader``
    (default: :func:`~volseg.compare.study_data.read_study_data`, the paths the comparison carries);
    returns {"comparison_html": path}. Shaped like :data:`volseg.compare.outputs.Extra`."""
    pairs, notes = lesion_pictures(comparison, loader or read_study_data, max_pictured=max_pictured)
    page = render_comparison_html(comparison, pairs=pairs, notes=notes)
    return {"comparison_html": write_text(ensure_writable_dir(out_dir) / COMPARISON_HTML, page)}


def lesion_pictures(comparison: Comparison, loader: StudyLoader, *,
                    max_pictured: int = MAX_PICTURED) -> tuple[list[PicturePair | None], list[str]]:
    """(the picture pair of each match, None past ``max_pictured`` or when a study cannot be read; notes).

    A study whose label map or image cannot be read (:class:`InputError`) leaves its matches without
    pictures and the page says so (without the path: folders may name patients); the page is still written.
    """
    studies = _readable(comparison, loader) if comparison.matches else {}
    pairs: list[PicturePair | None] = []
    for i, match in enumerate(comparison.matches):
        before, after = studies[match.from_timepoint], studies[match.to_timepoint]
        if i < max_pictured and before is not None and after is not None:
            pairs.append(pair_pictures(comparison, match, before, after))
        else:
            pairs.append(None)
    notes = [note for data in studies.values() if data is not None for note in data.notes]
    notes += [f"T{t}: no pictures, its label map or image could not be read" for t, d in studies.items() if d is None]
    if len(comparison.matches) > max_pictured:
        notes.append(f"{len(comparison.matches) - max_pictured} lesion change(s) are listed without pictures.")
    log.info("comparison.html: %d lesion change(s) pictured", sum(1 for p in pairs if p is not None))
    return pairs, notes


def _readable(comparison: Comparison, loader: StudyLoader) -> dict[int, StudyData | None]:
    out: dict[int, StudyData | None] = {}
    for study in comparison.studies:
        try:
            out[study.timepoint] = loader(study)
        except InputError as exc:
            log.warning("comparison.html: T%d has no pictures (%s)", study.timepoint, exc)
            out[study.timepoint] = None
    return out


def render_comparison_html(comparison: Comparison, *, pairs: Sequence[PicturePair | None] = (),
                           notes: Sequence[str] = ()) -> str:
    """The page; ``pairs[i]`` holds the pictures of ``comparison.matches[i]`` (None: not pictured)."""
    template = Template((resources.files("volseg.compare") / "templates" / COMPARISON_HTML).read_text("utf-8"))
    names = " → ".join(f"T{s.timepoint} {s.name}" for s in comparison.studies)
    body = "\n".join([
        _alert_section(comparison.registrations),
        _studies_section(comparison),
        _registration_section(comparison.registrations),
        _recist_section(comparison.recist, len(comparison.studies)),
        _organs_section(comparison),
        _lesions_section(comparison, pairs),
        _warnings_section(comparison.warnings, notes),
    ])
    footer = (f"volseg {escape(comparison.volseg_version)} · comparison schema {escape(comparison.schema_version)} · "
              f"created {escape(comparison.created_utc)} UTC · page rendered by volseg {escape(__version__)}. "
              f"{escape(DISCLAIMER)}")
    return template.substitute(title=escape(f"volseg comparison: {names}"), subtitle=_subtitle(comparison),
                               body=body, footer=footer, volseg_version=escape(__version__))


def _subtitle(comparison: Comparison) -> str:
    recist = comparison.recist
    parts = [f"{len(comparison.studies)} studies", f"{len(comparison.matches)} lesion change(s)"]
    text = " · ".join(escape(p) for p in parts)
    if recist is not None:
        text += f' · RECIST 1.1 {_category(recist.category)}'
    poor = sum(1 for r in comparison.registrations if r.quality == "poor")
    text += (f'<span class="badge">{poor} poor registration(s)</span>' if poor
             else '<span class="badge ok">registration good</span>')
    return text


def _alert_section(registrations: Sequence[Registration]) -> str:
    poor = [r for r in registrations if r.quality == "poor"]
    if not poor:
        return ""
    items = "".join(f"<li>T{r.from_timepoint} → T{r.to_timepoint}: {escape(r.warning)}</li>" for r in poor)
    return (f'<section class="alert" id="registration-warning"><h2>Registration quality: poor</h2><ul>{items}</ul>'
            "Matches, new and disappeared lesions across these intervals are to be read with care.</section>")


def _studies_section(comparison: Comparison) -> str:
    head = ["Time point", "Study", "Study id", "Days from baseline", "Model", "Modality", "Grid (voxels)",
            "Spacing (mm)"]
    rows = []
    for s in comparison.studies:
        days = "" if s.days_from_baseline is None else f"{s.days_from_baseline:g} ({s.days_source or '?'})"
        model = " ".join(x for x in (s.model_name, s.model_version) if x) or "—"
        rows.append(([f"T{s.timepoint}" + (" (baseline)" if s.timepoint == 0 else ""), escape(s.name),
                      escape(s.study_id or "—"), escape(days), escape(model), escape(s.modality or "—"),
                      escape(" × ".join(str(n) for n in s.shape) if s.shape else "—"),
                      escape(" × ".join(f"{v:.4g}" for v in s.spacing_mm) if s.spacing_mm else "—")], False))
    return "<section><h2>Studies</h2>" + html_table(head, rows, numeric={3}) + "</section>"


def _registration_section(registrations: Sequence[Registration]) -> str:
    head = ["Interval", "Registered on", "Method", "Initialisation", "Metric", "Rotation (°)", "Translation (mm)",
            "Mean organ Dice", "Centroid residual (mm)", "Quality"]
    rows = []
    for r in registrations:
        metric = "" if r.metric_value is None else f"{r.metric_name or ''} {r.metric_value:.4g}"
        init = f"{r.initialisation} ({r.n_centroid_pairs} organ pairs)" if r.n_centroid_pairs else r.initialisation
        quality = escape(r.quality) + (f'<div class="note">{escape(r.warning)}</div>' if r.warning else "")
        rows.append(([f"T{r.from_timepoint} → T{r.to_timepoint}", escape(r.registered_on), escape(r.method),
                      escape(init), escape(metric.strip()), _n(r.rotation_deg, 1),
                      escape(", ".join(f"{v:.1f}" for v in r.translation_mm)), _n(r.mean_organ_dice, 3),
                      _n(r.centroid_residual_mm, 1), quality], r.quality == "poor"))
    return ("<section><h2>Registration</h2>" + html_table(head, rows, numeric={5, 7, 8}) +
            '<div class="note">The follow-up pictures are taken at the earlier point mapped through this '
            "alignment.</div></section>")


def _recist_section(recist: RecistAssessment | None, n_studies: int) -> str:
    if recist is None:
        return '<section id="recist"><h2>RECIST 1.1</h2><div class="note">No lesion classes: no RECIST.</div></section>'
    last = n_studies - 1
    nadir = "" if recist.nadir_sum_mm is None else f", nadir {recist.nadir_sum_mm:.1f} mm (T{recist.nadir_timepoint})"
    parts = [f'<section id="recist"><h2>RECIST 1.1</h2><p>Response at T{last}: {_category(recist.category)} '
             f'<span class="rule">{escape(recist.rule)}</span></p>',
             f'<p class="note">Baseline sum {recist.baseline_sum_mm:.1f} mm{escape(nadir)}.</p>']
    head = ["Time point", "Sum (mm)", "Change from baseline (%)", "Nadir (mm)", "Change from nadir (%)",
            "Change from nadir (mm)", "New lesions", "Category", "Rule"]
    rows = [([f"T{t.timepoint}", _n(t.sum_mm, 1), _n(t.change_from_baseline_percent, 1),
              "" if t.nadir_sum_mm is None else f"{t.nadir_sum_mm:.1f} (T{t.nadir_timepoint})",
              _n(t.change_from_nadir_percent, 1), _n(t.change_from_nadir_mm, 1), escape(", ".join(t.new_lesion_ids)),
              _category(t.category) if t.category else "—", escape(t.rule or "")], t.category == "PD")
            for t in recist.timepoints]
    parts.append(html_table(head, rows, numeric={1, 2, 3, 4, 5}))
    if recist.targets:
        thead = ["Target", "Class", "Organ", "Measure"] + [f"T{i} (mm)" for i in range(n_studies)]
        trows = [([escape(t.lesion_id), escape(t.class_name), escape(t.organ), escape(t.measure)]
                  + [_n(d, 1) if d is not None else "n/e" for d in t.diameters_mm], False) for t in recist.targets]
        parts += ["<h3>Target lesions</h3>", html_table(thead, trows, numeric=set(range(4, 4 + n_studies)))]
    if recist.lymph_nodes:
        nhead = ["Node", "Role"] + [f"T{i} short axis (mm)" for i in range(n_studies)] + ["Normal at last"]
        nrows = [([escape(n.lesion_id), escape(n.role)] + [_n(v, 1) for v in n.short_axis_mm]
                  + ["yes" if n.normal_at_last else "no"], False) for n in recist.lymph_nodes]
        parts += ["<h3>Lymph nodes</h3>", html_table(nhead, nrows, numeric=set(range(2, 2 + n_studies)))]
    extra = ([f"Non-target lesions: {', '.join(recist.non_target_ids)}"] if recist.non_target_ids else [])
    extra += [f"New lesions: {', '.join(recist.new_lesion_ids)}"] if recist.new_lesion_ids else []
    parts += [f'<div class="note">{escape(text)}</div>' for text in [*extra, *recist.notes]]
    return "".join(parts) + "</section>"


def _organs_section(comparison: Comparison) -> str:
    if not comparison.organs:
        return ""
    head = ["Organ", "Interval", "Volume before (mL)", "Volume after (mL)", "Change (mL)", "Change (%)",
            "Mean before", "Mean after", "Mean change", "Unit", "Note"]
    rows = []
    for o in comparison.organs:
        fov = [f"cut by the field of view at T{t}" for t, cut in ((o.from_timepoint, o.touches_fov_before),
                                                                   (o.to_timepoint, o.touches_fov_after)) if cut]
        note = "; ".join([*([o.note] if o.note else []), *fov])
        rows.append(([escape(o.name), f"T{o.from_timepoint} → T{o.to_timepoint}", _n(o.volume_ml_before, 2),
                      _n(o.volume_ml_after, 2), _n(o.volume_change_ml, 2), _n(o.volume_change_percent, 1),
                      _n(o.mean_intensity_before, 1), _n(o.mean_intensity_after, 1), _n(o.mean_intensity_change, 1),
                      escape(o.intensity_unit or ""), escape(note)], bool(fov)))
    return ('<section id="organs"><h2>Organ changes</h2>' + html_table(head, rows, numeric=set(range(2, 9))) +
            "</section>")


def _lesions_section(comparison: Comparison, pairs: Sequence[PicturePair | None]) -> str:
    if not comparison.matches:
        return '<section id="lesions"><h2>Lesion changes</h2><div class="note">No lesions at any time point.</div></section>'
    rows = []
    for i, match in enumerate(comparison.matches):
        pair = pairs[i] if i < len(pairs) else None
        rows.append(_match_row(i, match, pair))
    return (f'<section id="lesions"><h2>Lesion changes ({len(comparison.matches)})</h2>'
            '<div class="note">Left: the earlier time point at the lesion\'s centre; right: the later time point at '
            "that point mapped through the registration (a new lesion: its centre, mapped back on the left). "
            "The magenta + marks the point; the lesion's class is outlined thicker.</div>"
            + "".join(rows) + "</section>")


def _match_row(i: int, m: LesionMatch, pair: PicturePair | None) -> str:
    ids = (f"T{m.from_timepoint} {', '.join(m.before_ids) or '—'} → T{m.to_timepoint} {', '.join(m.after_ids) or '—'}")
    facts = [f"{m.class_name} ({m.kind})",
             _change("volume", m.volume_ml_before, m.volume_ml_after, m.volume_change_percent, "mL", 2),
             _change("long axis", m.longest_diameter_mm_before, m.longest_diameter_mm_after,
                     m.diameter_change_percent, "mm", 1)]
    if m.doubling_time_days is not None:
        facts.append(f"doubling time {m.doubling_time_days:.0f} days")
    elif m.doubling_time_note:
        facts.append(m.doubling_time_note)
    if m.method:
        match_how = f"matched by {m.method}"
        match_how += f", Dice {m.dice:.2f}" if m.dice is not None else ""
        match_how += f", centroids {m.centroid_distance_mm:.1f} mm apart" if m.centroid_distance_mm is not None else ""
        facts.append(match_how)
    head = (f'<h3><span class="status {escape(m.status)}">{escape(m.status)}</span> {escape(ids)}</h3>'
            f'<div class="note">{escape(" · ".join(f for f in facts if f))}</div>')
    if pair is None:
        return f'<div class="pair unpictured" id="match-{i}">{head}</div>'
    sides = _figure(pair.before, pair.before_note) + _figure(pair.after, pair.after_note)
    return f'<div class="pair" id="match-{i}">{head}<div class="sides">{sides}</div></div>'


def _figure(p: Picture | None, note: str) -> str:
    if p is None:
        return f'<figure class="missing"><figcaption>{escape(note or "no picture")}</figcaption></figure>'
    data = base64.b64encode(p.png).decode("ascii")
    return (f'<figure><img alt="{escape(p.title)}" src="data:image/png;base64,{data}">'
            f"<figcaption><b>{escape(p.title)}</b>: {escape(p.caption)}</figcaption></figure>")


def _warnings_section(warnings: Sequence[str], notes: Sequence[str]) -> str:
    if not warnings and not notes:
        return ""
    items = "".join(f"<li>{escape(w)}</li>" for w in warnings)
    items += "".join(f'<li class="note">{escape(n)}</li>' for n in notes)
    return f'<section class="warnings"><h2>Warnings ({len(warnings)})</h2><ul>{items}</ul></section>'


def _change(what: str, before: float | None, after: float | None, percent: float | None, unit: str,
            digits: int) -> str:
    if before is None and after is None:
        return ""
    text = f"{what} {_n(before, digits) or '—'} → {_n(after, digits) or '—'} {unit}"
    return text + (f" ({percent:+.1f} %)" if percent is not None else "")


def _category(category: str | None) -> str:
    return f'<span class="cat {escape(category)}">{escape(category)}</span>' if category else ""


def _n(value: float | None, digits: int) -> str:
    return "" if value is None else f"{float(value):.{digits}f}"

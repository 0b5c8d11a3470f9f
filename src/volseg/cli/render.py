"""Rich renderings of API results. Tables of data go to stdout, notes to stderr."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from rich.table import Table

from volseg.cli.console import err, note, out, verbosity

if TYPE_CHECKING:
    from rich.console import JustifyMethod

FORMATS = ("table", "tsv", "json")


def check_format(fmt: str) -> str:
    """``fmt`` if it is one of :data:`FORMATS`, else a usage error naming the choices."""
    from volseg.errors import UsageError, unknown_choice_hint

    if fmt not in FORMATS:
        raise UsageError(f"unknown output format {fmt!r}", hint=unknown_choice_hint(fmt, FORMATS))
    return fmt


def print_tsv(header, rows) -> None:
    """Tab-separated values on stdout: a header line, then one line per row, nothing cut."""
    stream = out.file  # raw: Rich would expand the tabs
    for row in [header, *rows]:
        cells = ("" if v is None else str(v).replace("\t", " ").replace("\n", " ") for v in row)
        stream.write("\t".join(cells) + "\n")
    stream.flush()


def _fmt(value, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def print_volumetry(report) -> None:
    """The study's volumes as a table on stdout (not with -q: report.json and the CSVs hold them)."""
    if verbosity.quiet:
        return
    table = Table(title=f"{report.study_id}: volumes", title_justify="left")
    unit = next((s.intensity_unit for s in report.structures if s.intensity_unit), None)
    mean_column = "mean_hu" if unit in (None, "HU") else f"mean ({unit})"
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("structure", "left"), ("volume_ml", "right"), (mean_column, "right"), ("components", "right"),
        ("flags", "left"))
    for col, justify in columns:
        table.add_column(col, justify=justify, overflow="fold")  # whole names, folded when narrow
    for s in report.structures:
        flags = ", ".join(f for f, on in (("empty", s.empty), ("cut by FOV", "truncated" in s.qc_flags)) if on)
        mean = s.mean_hu if unit in (None, "HU") else s.mean_intensity
        table.add_row(s.name, _fmt(s.volume_ml, 2), _fmt(mean), str(s.n_components), flags)
    out.print(table)


def print_failures(failures, total: int) -> None:
    for f in failures:
        err.print(f"volseg: error: {f.error.one_line()}", markup=False, highlight=False, soft_wrap=True)
    if total > 1:
        err.print(f"{len(failures)} of {total} studies failed", style="bold red")


def print_demo(demo) -> None:
    report = demo.result.report
    table = Table(title="classic-ct on the built-in phantom: measured vs true volumes", title_justify="left")
    for col in ("structure", "true_ml", "measured_ml", "difference_%", "dice"):
        table.add_column(col, justify="left" if col == "structure" else "right")
    for s in report.structures:
        true = demo.true_volumes_ml.get(s.name)
        diff = "" if not true else f"{100.0 * (s.volume_ml - true) / true:+.2f}"
        dice = demo.dice.get(s.name)
        table.add_row(s.name, _fmt(true, 2), _fmt(s.volume_ml, 2), diff, _fmt(dice, 4))
    out.print(table)


_SERIES_COLUMNS = ("number", "modality", "images", "rows×columns", "description", "uid")


def print_info(info, *, fmt: str = "table") -> None:
    """Series found and the image read: a table, TSV (series rows, then key/value rows) or JSON."""
    from dataclasses import asdict

    if fmt == "json":
        payload: dict[str, Any] = {"series": [asdict(s) for s in info.series]}
        if info.image is not None:
            payload["image"] = _image_summary(info.image)
        out.print_json(json.dumps(payload))
        return
    rows = [(s.number or "", s.modality or "", s.n_images, f"{s.rows}×{s.columns}", s.description or "", s.uid)
            for s in info.series] if len(info.series) > 1 else []
    if fmt == "tsv":
        if rows:
            print_tsv(_SERIES_COLUMNS, rows)
        if info.image is not None:
            if rows:
                out.file.write("\n")
            print_tsv(("key", "value"), _image_rows(_image_summary(info.image)))
        return
    if rows:
        table = Table(title="DICOM series (choose one with --series UID-or-number)", title_justify="left")
        for col in _SERIES_COLUMNS:
            table.add_column(col, overflow="fold", no_wrap=col != "description")
        for row in rows:
            table.add_row(*(str(v) for v in row))
        out.print(table)
    if info.image is not None:
        _print_image(_image_summary(info.image))


def _image_summary(image) -> dict:
    from volseg.reports.build import input_summary

    summary = input_summary(image).model_dump()
    summary["warnings"] = list(image.source.warnings)
    summary["series_uid"] = image.source.series_uid
    return summary


def _image_rows(summary: dict) -> list[tuple[str, str]]:
    rows = []
    for key, value in summary.items():
        if value in (None, [], ()):
            continue
        if isinstance(value, (tuple, list)) and value and isinstance(value[0], float):
            value = " × ".join(f"{v:.4g}" for v in value)
        rows.append((key, str(value)))
    return rows


def _print_image(summary: dict) -> None:
    table = Table(show_header=False, title=summary["file_name"], title_justify="left")
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in _image_rows(summary):
        if key != "file_name":
            table.add_row(key, value)
    out.print(table)


def human_size(size_bytes: int | None, *, needs_weights: bool = True) -> str:
    """'48.3 MB'; '?' when the publisher gives no size; '-' for built-in models."""
    if not needs_weights:
        return "-"
    if size_bytes is None:
        return "?"
    for unit, factor in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size_bytes >= factor:
            return f"{size_bytes / factor:.1f} {unit}"
    return f"{size_bytes} B"


def _commercial(flag) -> str:
    return {True: "yes", False: "no", None: "unknown"}[flag]


_MODEL_COLUMNS = ("name", "title", "modality", "classes", "licence", "commercial", "size", "installed")


def _model_row(s) -> tuple[str, ...]:
    e = s.entry
    installed = "built-in" if not e.needs_weights else ("yes" if s.installed else "no")
    return (e.name, e.title, e.modality, str(len(e.classes)), e.licence, _commercial(e.commercial_use),
            human_size(e.size_bytes, needs_weights=e.needs_weights), installed)


def print_models(statuses, *, fmt: str = "table") -> None:
    """Every model grouped by task: licence, commercial use, download size, installed state."""
    from volseg.segmenters.catalogue import TASK_GROUPS

    if fmt == "tsv":
        print_tsv(("task", *_MODEL_COLUMNS), [(s.entry.task, *_model_row(s))
                                              for s in sorted(statuses, key=lambda s: (s.entry.task, s.entry.name))])
        return
    if fmt == "json":
        rows = [{"name": s.entry.name, "version": s.entry.version, "task": s.entry.task,
                 "modality": s.entry.modality, "classes": len(s.entry.classes), "licence": s.entry.licence,
                 "commercial_use": s.entry.commercial_use, "size_bytes": s.entry.size_bytes,
                 "needs_weights": s.entry.needs_weights, "installed": s.installed, "title": s.entry.title}
                for s in statuses]
        out.print_json(json.dumps(rows))
        return
    groups: dict[str, list] = {}
    for s in statuses:
        groups.setdefault(s.entry.task, []).append(s)
    for task in [t for t in TASK_GROUPS if t in groups]:
        table = Table(title=task.replace("_", " "), title_justify="left")
        table.add_column("name", no_wrap=True, min_width=max(len(s.entry.name) for s in groups[task]))
        table.add_column("title", overflow="fold")
        for col in _MODEL_COLUMNS[2:]:
            table.add_column(col, justify="right" if col in ("classes", "size") else "left", no_wrap=True,
                             overflow="fold")
        for s in sorted(groups[task], key=lambda s: s.entry.name):
            table.add_row(*_model_row(s))
        out.print(table)


def print_model_detail(status, *, as_json: bool = False) -> None:
    """One entry: facts, input expectations, weights, classes, citation, sources and notes."""
    e = status.entry
    if as_json:
        out.print_json(e.model_dump_json())
        return
    facts = Table(show_header=False, title=f"{e.name} {e.version}: {e.title}", title_justify="left")
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column(overflow="fold")
    spacing = "model's own"
    if e.input.spacing_mm:
        spacing = " × ".join(f"{v:g}" for v in e.input.spacing_mm) + " mm"
    intensity = e.input.intensity
    preset = intensity.kind + (f" {list(intensity.window)}" if intensity.window else "")
    preset += f" → {list(intensity.output_range)}" if intensity.output_range else ""
    rows = [("task", e.task), ("modality", e.modality), ("region", e.region), ("backend", e.backend),
            ("input spacing", spacing), ("orientation", e.input.orientation or "as stored"),
            ("intensity", preset + (f" ({intensity.description})" if intensity.description else "")),
            ("licence", f"{e.licence} (commercial use: {_commercial(e.commercial_use)})"),
            ("download", human_size(e.size_bytes, needs_weights=e.needs_weights)
             + f" in {len(e.weights)} file(s)" if e.needs_weights else "none (built in)"),
            ("installed", "built-in" if not e.needs_weights else str(status.path or "no")),
            ("citation", e.citation)]
    if e.sliding_window:
        sw = e.sliding_window
        patch = list(sw.patch_size) if sw.patch_size else "from plans"
        rows.append(("sliding window", f"patch {patch}, overlap {sw.overlap}, blending {sw.blending}, "
                                       f"mirroring {sw.mirroring}"))
    if e.cascade:
        rows.append(("cascade", f"crops to {', '.join(e.cascade.classes)} of {e.cascade.model} first"))
    for key, value in rows:
        facts.add_row(key, str(value))
    out.print(facts)
    classes = Table(title=f"{len(e.classes)} classes", title_justify="left")
    for col in ("index", "name", "display name", "colour", "SNOMED type"):
        classes.add_column(col, justify="right" if col == "index" else "left")
    for c in e.label_table().values():
        code = next((x.snomed_type for x in e.classes if x.index == c.index), None)
        classes.add_row(str(c.index), c.name, c.display_name, "#%02x%02x%02x" % c.color, code or "")
    out.print(classes)
    for source in e.sources:
        out.print(f"source: {source}", markup=False, highlight=False, soft_wrap=True)
    if e.notes:
        out.print(f"notes: {e.notes}", markup=False, highlight=False)


def print_install_results(results) -> None:
    for r in results:
        if r.path is None:
            note(f"{r.name}: built in, nothing to install")
        elif r.already_installed:
            note(f"{r.name} {r.version}: already installed at {r.path}")
        else:
            note(f"{r.name} {r.version}: installed {len(r.files)} verified file(s) at {r.path}")
        if r.recorded:
            note(f"  sha256 of {len(r.recorded)} unpinned file(s) recorded in the lock file "
                 "(`volseg models lock` exports it)")


def print_verify_reports(reports) -> None:
    if not reports:
        note("no models installed")
        return
    table = Table(title="verification", title_justify="left")
    for col in ("model", "version", "files", "result"):
        table.add_column(col, overflow="fold")
    for r in reports:
        more = f" (+{len(r.problems) - 1})" if len(r.problems) > 1 else ""
        result = "ok" if r.ok else f"FAILED: {r.problems[0]}{more}"
        table.add_row(r.name, r.version, str(len(r.checks)), result)
    out.print(table)

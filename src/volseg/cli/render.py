"""Rich renderings of API results. Tables of data go to stdout, notes to stderr."""
from __future__ import annotations

import json

from rich.table import Table

from volseg.cli.console import err, out


def _fmt(value, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def print_volumetry(report) -> None:
    table = Table(title=f"{report.study_id}: volumes", title_justify="left")
    for col, justify in (("structure", "left"), ("volume_ml", "right"), ("mean_hu", "right"),
                         ("components", "right"), ("flags", "left")):
        table.add_column(col, justify=justify)
    for s in report.structures:
        flags = ", ".join(f for f, on in (("empty", s.empty), ("cut by FOV", s.touches_fov)) if on)
        table.add_row(s.name, _fmt(s.volume_ml, 2), _fmt(s.mean_hu), str(s.n_components), flags)
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


def print_info(info, *, as_json: bool) -> None:
    from dataclasses import asdict

    if as_json:
        payload = {"series": [asdict(s) for s in info.series]}
        if info.image is not None:
            payload["image"] = _image_summary(info.image)
        out.print_json(json.dumps(payload))
        return
    if len(info.series) > 1:
        table = Table(title="DICOM series (choose one with --series UID-or-number)", title_justify="left")
        for col in ("number", "modality", "images", "rows×columns", "description", "uid"):
            table.add_column(col)
        for s in info.series:
            table.add_row(str(s.number or ""), s.modality or "", str(s.n_images), f"{s.rows}×{s.columns}",
                          s.description or "", s.uid)
        out.print(table)
    if info.image is not None:
        _print_image(_image_summary(info.image))


def _image_summary(image) -> dict:
    from volseg.reports.build import input_summary

    summary = input_summary(image).model_dump()
    summary["warnings"] = list(image.source.warnings)
    summary["series_uid"] = image.source.series_uid
    return summary


def _print_image(summary: dict) -> None:
    table = Table(show_header=False, title=summary["file_name"], title_justify="left")
    for key, value in summary.items():
        if key == "file_name" or value in (None, [], ()):
            continue
        if isinstance(value, (tuple, list)) and value and isinstance(value[0], float):
            value = " × ".join(f"{v:.4g}" for v in value)
        table.add_row(key, str(value))
    out.print(table)


def print_models(entries) -> None:
    groups: dict[str, list] = {}
    for entry in entries:
        groups.setdefault(entry.task, []).append(entry)
    for task in sorted(groups):
        table = Table(title=task.replace("_", " "), title_justify="left")
        for col in ("name", "title", "modality", "classes", "licence"):
            table.add_column(col)
        for e in sorted(groups[task], key=lambda e: e.name):
            table.add_row(e.name, e.title, e.modality, str(len(e.classes)), e.licence)
        out.print(table)

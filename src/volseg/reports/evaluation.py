"""evaluation.csv and evaluation.html: one row per study × structure, units in the column names.

Empty cells mean "undefined": surface distances when exactly one of the two masks is empty, recall
without reference lesions, precision without predicted lesions, detection columns of classes that
are not lesions or airways.
"""
from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path

from volseg.io.atomic import write_text
from volseg.reports.tables import to_csv

EVALUATION_COLUMNS = (
    "study_id", "structure", "pred_label", "ref_label", "pred_volume_ml", "ref_volume_ml",
    "dice", "hd95_mm", "assd_mm",
    "ref_lesions", "pred_lesions", "detected_lesions", "lesion_recall", "lesion_precision",
    "false_positive_lesions", "lesion_min_overlap_dice",
    "ref_centreline_mm", "detected_centreline_mm", "tree_length_detected", "ref_branches",
    "branches_detected",
)
_SUMMARY = ("study_id", "structure", "dice", "hd95_mm", "assd_mm", "lesion_recall", "lesion_precision",
            "false_positive_lesions", "tree_length_detected", "branches_detected")


def evaluation_rows(study_id: str, scores: Sequence) -> list[dict[str, object]]:
    """CSV rows of one study's :class:`~volseg.postprocess.evaluate_maps.StructureScore` list."""
    rows = []
    for s in scores:
        row: dict[str, object] = {
            "study_id": study_id, "structure": s.structure, "pred_label": _int(s.pred_label),
            "ref_label": _int(s.ref_label), "pred_volume_ml": _num(s.pred_volume_ml),
            "ref_volume_ml": _num(s.ref_volume_ml), "dice": _num(s.dice), "hd95_mm": _num(s.hd95_mm),
            "assd_mm": _num(s.assd_mm),
        }
        if s.lesions is not None:
            d = s.lesions
            row.update(ref_lesions=d.n_reference, pred_lesions=d.n_predicted, detected_lesions=d.n_detected,
                       lesion_recall=_num(d.recall), lesion_precision=_num(d.precision),
                       false_positive_lesions=d.false_positives, lesion_min_overlap_dice=_num(d.min_overlap))
        if s.airway is not None:
            a = s.airway
            row.update(ref_centreline_mm=_num(a.reference_length_mm), detected_centreline_mm=_num(a.detected_length_mm),
                       tree_length_detected=_num(a.tree_length_detected), ref_branches=a.n_reference_branches,
                       branches_detected=_num(a.branches_detected))
        rows.append({c: row.get(c, "") for c in EVALUATION_COLUMNS})
    return rows


def write_evaluation_csv(rows: Sequence[dict[str, object]], path: str | Path) -> Path:
    return write_text(path, to_csv(list(rows), EVALUATION_COLUMNS))


def write_evaluation_html(rows: Sequence[dict[str, object]], path: str | Path, *,
                          notes: Sequence[str] = ()) -> Path:
    """A self-contained page: the summary columns of every row, then the notes."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in _SUMMARY)
    body = "\n".join("<tr>" + "".join(f"<td>{html.escape(str(r.get(c, '')))}</td>" for c in _SUMMARY) + "</tr>"
                     for r in rows)
    notes_html = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>volseg evaluation</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}td:nth-child(-n+2),th{{text-align:left}}</style>
</head><body>
<h1>Segmentation vs reference</h1>
<p>Dice; hd95_mm: 95th-percentile Hausdorff distance; assd_mm: average symmetric surface distance
(mm, on the physical grid). Lesions: detected when a predicted lesion overlaps with Dice &ge; the
minimum overlap. Airways: fraction of the reference centreline length, and of its branches, inside the
prediction. Empty cells: undefined (one mask empty, or not a lesion/airway class).</p>
<table><thead><tr>{head}</tr></thead><tbody>
{body}
</tbody></table>
{f"<h2>Notes</h2><ul>{notes_html}</ul>" if notes_html else ""}
</body></html>
"""
    return write_text(path, page)


def _num(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.6g}"


def _int(value: int | None) -> object:
    return "" if value is None else value

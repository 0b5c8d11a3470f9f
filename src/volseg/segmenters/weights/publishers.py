"""Which publisher's folder layout a catalogue entry's archives unpack to, and which reference each
model path follows.

``-m NAME`` runs a catalogued model through volseg's reproduction of its publisher's pipeline
(TotalSegmentator's reorientation, resampling, step size, part merge ...). ``--model PATH`` on a
plain nnU-Net trained-model folder follows nnU-Net's own predictor semantics instead, even when the
folder holds a publisher's weights: :func:`identify_path` says which entry such a folder is.
"""
from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from volseg.segmenters.catalogue import ModelEntry, WeightFile

#: what ``--model PATH`` on a plain nnU-Net trained-model folder follows
PATH_REFERENCE = ("nnU-Net's own predictor semantics (the plans' spacing, the image as stored, "
                  "no publisher pre- or post-processing)")

_ARCHIVE_SUFFIX = re.compile(r"\.(zip|tar\.gz|tgz|tar)$", re.IGNORECASE)


def publisher(entry: ModelEntry) -> str:
    """The program whose pipeline the entry reproduces (from its backend and weight URLs)."""
    urls = " ".join(w.url for w in entry.weights).lower()
    if "totalsegmentator" in urls:
        return "TotalSegmentator"
    if "mrsegmentator" in urls:
        return "MRSegmentator"
    return {"raidionics": "Raidionics", "monai_bundle": "MONAI bundle", "blast_ct": "BLAST-CT",
            "classic": "volseg"}.get(entry.backend, entry.name)


def model_reference(entry: ModelEntry) -> str:
    """One line: the reference ``-m NAME`` follows, with the steps volseg reproduces around the network."""
    if entry.backend == "classic":
        return "volseg's own rule-based pipeline (no network)"
    steps = ["its pre-processing, crop and reconstruction"] if entry.backend == "raidionics" else []
    if entry.input.orientation:
        steps.append(f"{entry.input.orientation} reorientation")
    if entry.input.spacing_mm:
        steps.append("resampling to " + " × ".join(f"{v:g}" for v in entry.input.spacing_mm) + " mm")
    sw = entry.sliding_window
    if sw is not None and sw.overlap is not None:
        steps.append(f"tile step {1.0 - sw.overlap:g}")
    if sw is not None and sw.mirroring is not None:
        steps.append("mirroring" if sw.mirroring else "no mirroring")
    if len(entry.parts) > 1:
        steps.append(f"merge of {len(entry.parts)} parts")
    if entry.cascade is not None:
        steps.append(f"crop to {', '.join(entry.cascade.classes)} of {entry.cascade.model}")
    if entry.postprocess:
        steps.append("its post-processing")
    return f"{publisher(entry)} pipeline" + (f": {', '.join(steps)}" if steps else "")


def archive_top(wf: WeightFile) -> str | None:
    """The one top-level folder an archive unpacks to (``Dataset297_…``, ``CT_Lungs``,
    ``wholeBody_ct_segmentation``), or None when its members lie at the archive's root."""
    if wf.members:
        firsts = {PurePosixPath(m).parts[0] for m in wf.members}
        deep = all(len(PurePosixPath(m).parts) > 1 for m in wf.members)
        return firsts.pop() if deep and len(firsts) == 1 else None
    stem = _ARCHIVE_SUFFIX.sub("", wf.name)
    stem = re.sub(r"^Raidionics-", "", stem)
    stem = re.sub(r"(-ONNX)?-v\d+$", "", stem)
    return re.sub(r"_v\d+(\.\d+)*$", "", stem) or None


def member_dirs(entry: ModelEntry) -> set[PurePosixPath]:
    """Every folder path an entry's archives are known to unpack (``Dataset297_…/nnUNetTrainer…``)."""
    dirs: set[PurePosixPath] = set()
    for wf in entry.weights:
        if wf.archive is None:
            continue
        top = archive_top(wf)
        if top:
            dirs.add(PurePosixPath(top))
        for m in wf.members:
            parent = PurePosixPath(m).parent
            while parent.parts and parent.name.startswith("fold_"):
                parent = parent.parent
            while parent.parts:
                dirs.add(parent)
                parent = parent.parent
    return dirs


def identify_path(path: Path) -> list[ModelEntry]:
    """Catalogue entries whose publisher's layout ``path`` (a model folder or file) belongs to."""
    from volseg.segmenters import catalogue

    folder = path if path.is_dir() else path.parent
    parts = folder.resolve().parts
    found = []
    for entry in catalogue.load_catalogue().values():
        for d in member_dirs(entry):
            if len(d.parts) <= len(parts) and tuple(parts[-len(d.parts):]) == d.parts and _specific(d):
                found.append(entry)
                break
    return found


def _specific(d: PurePosixPath) -> bool:
    """A folder path distinctive enough to name a model (not a generic name such as ``weights``)."""
    return len(d.parts) > 1 or bool(re.match(r"^(Dataset\d{3}_|CT_|MRI_|wholeBody)", d.parts[0]))

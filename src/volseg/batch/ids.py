"""Study ids without identifiers (``--anonymize-ids`` / ``--id-map``).

Input folders are often named after patients, and study ids come from input paths. With
``--anonymize-ids`` each study is renamed ``study-0001``, ``study-0002``… in the sorted order of the
inputs' relative paths; ``--id-map FILE.csv`` (columns ``path,study_id``) gives the ids instead. The
mapping is written to ``OUT/study_ids.csv`` — a private file: it links the ids back to the paths —
and read back by the next run, so a resumed run gives each input the id it had.
"""
from __future__ import annotations

import csv
import io
import logging
import re
from dataclasses import replace
from pathlib import Path

from volseg.batch.discover import RESERVED_IDS, Study
from volseg.errors import InputError, UsageError

log = logging.getLogger(__name__)

ID_MAP = "study_ids.csv"
_AUTO = re.compile(r"^study-(\d+)$")
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def input_key(study: Study) -> str:
    """The mapping's ``path`` column: the relative path (``#<series uid>`` when a folder holds several)."""
    return study.rel_path if study.series is None else f"{study.rel_path}#{study.series}"


def apply_ids(studies: list[Study], out_dir: Path, *, id_map: str | Path | None = None) -> list[Study]:
    """``studies`` renamed (sorted by new id) and the mapping written to ``OUT/study_ids.csv``."""
    persisted = Path(out_dir) / ID_MAP
    given = read_map(Path(id_map)) if id_map is not None else {}
    known = read_map(persisted) if persisted.is_file() else {}
    mapping = {**known, **given}
    keys = [input_key(s) for s in studies]
    if id_map is not None:
        missing = [k for k, s in zip(keys, studies) if k not in mapping and s.rel_path not in mapping]
        if missing:
            raise UsageError(f"{len(missing)} input(s) not in the id map, e.g. the {_ordinal(keys, missing[0])}",
                             path=id_map, hint="give a study_id for every input path (relative to the input folder)")
    else:
        mapping = _assign(keys, mapping)
    renamed = [replace(s, study_id=mapping.get(k) or mapping[s.rel_path]) for k, s in zip(keys, studies)]
    ids = [s.study_id for s in renamed]
    if len(set(ids)) != len(ids):
        raise UsageError("two inputs have the same study_id in the id map", path=id_map or persisted)
    _write_map(persisted, {k: s.study_id for k, s in zip(keys, renamed)}, previous=known)
    return sorted(renamed, key=lambda s: s.study_id)


def _ordinal(keys: list[str], key: str) -> str:
    return f"input #{sorted(keys).index(key) + 1} in sorted order"  # never the path: it may name a patient


def _assign(keys: list[str], mapping: dict[str, str]) -> dict[str, str]:
    numbers = [int(m.group(1)) for v in mapping.values() if (m := _AUTO.match(v))]
    n = max(numbers, default=0)
    out = dict(mapping)
    for key in sorted(keys):
        if key not in out:
            n += 1
            out[key] = f"study-{n:04d}"
    return out


def read_map(path: Path) -> dict[str, str]:
    """``path`` → ``study_id`` from a CSV with those two columns."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read the id map: {exc.strerror or exc}", path=path) from exc
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not {"path", "study_id"} <= set(reader.fieldnames):
        raise UsageError("the id map needs the columns path,study_id", path=path)
    mapping: dict[str, str] = {}
    for row in reader:
        key, study_id = (row.get("path") or "").strip(), (row.get("study_id") or "").strip()
        if not key:
            continue
        if not _SAFE.match(study_id) or study_id in RESERVED_IDS:
            raise UsageError(f"invalid study_id {study_id!r} (line {reader.line_num})", path=path,
                             hint="use letters, digits, '.', '_' and '-', starting with a letter or digit")
        mapping[key.strip("/")] = study_id
    return mapping


def _write_map(path: Path, mapping: dict[str, str], *, previous: dict[str, str]) -> None:
    """Keep earlier rows (inputs gone since may come back) and add this run's."""
    from volseg.io.atomic import write_text

    rows = {**previous, **mapping}
    if rows == previous and path.is_file():
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", "study_id"])
    for key, study_id in sorted(rows.items(), key=lambda kv: kv[1]):
        writer.writerow([key, study_id])
    write_text(path, buffer.getvalue())
    log.info("study ids: %d inputs mapped in %s (private: it links ids to input paths)", len(mapping), path.name)

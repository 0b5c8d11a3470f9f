"""Parity harness: volseg's catalogued models against each publisher's own program on the same weights.

``python -m benchmarks.parity`` prints the parity table (Markdown) and writes it as JSON. Each peer is a
module here exposing ``rows(work: pathlib.Path) -> list[dict]`` (keys in :data:`COLUMNS`):
``totalseg`` (TotalSegmentator), ``raidionics``, ``monai``, ``blast`` (BLAST-CT), ``mrsegmentator``,
``nnunet_predict`` (nnU-Net's own predictor on a folder given by path) and ``totalseg_subtasks``;
``--peers`` picks some (default: all).
"""
COLUMNS = ("model", "peer", "peer_version", "input", "agreement_pct", "near_ties",
           "disagreements_all_near_ties", "same_grid", "same_labels", "notes")


def installed_version(venv, distribution: str) -> str | None:
    """The version of ``distribution`` installed in the peer's venv (None: no venv, or not installed)."""
    import pathlib
    import subprocess

    python = pathlib.Path(venv) / "bin" / "python"
    if not python.exists():
        return None
    out = subprocess.run([str(python), "-c", f"import importlib.metadata as m; print(m.version({distribution!r}))"],
                         capture_output=True, text=True)
    return out.stdout.strip() or None

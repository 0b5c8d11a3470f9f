"""Parity harness: volseg's catalogued models against each publisher's own program on the same weights.

``python -m benchmarks.parity`` prints the parity table (Markdown) and writes it as JSON. Each peer is a
module here exposing ``rows(work: pathlib.Path) -> list[dict]`` (keys in :data:`COLUMNS`):
``totalseg`` (TotalSegmentator) always, ``raidionics`` and ``monai`` when present.
"""
COLUMNS = ("model", "peer", "peer_version", "input", "agreement_pct", "near_ties",
           "disagreements_all_near_ties", "same_grid", "same_labels", "notes")

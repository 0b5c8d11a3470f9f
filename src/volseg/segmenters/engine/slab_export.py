"""Codes and output labels of the final rows of a band, as the sliding window moves down axis 0.

Each step decodes the model rows that became final and exports every output row whose model rows
(``lo``…``hi`` along axis 0, and the row after ``lo`` that the mixed-cube test looks at) are all
coded, with the same functions as the whole-volume export, on views of the band. Per voxel the
arithmetic is the same; only the choice between per-voxel corners and dense resampling in
:func:`~volseg.segmenters.engine.export.exact_labels` is made per slab rather than once for the
volume (both compute the same resampled scores, up to float rounding).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from volseg.segmenters.base import ProgressCallback, no_progress
from volseg.segmenters.engine.export import (
    AffineHead,
    LabelDecoder,
    exact_labels,
    model_grid_codes,
    nearest_labels,
)
from volseg.segmenters.engine.resample import AxisMap
from volseg.segmenters.engine.sliding_window import Blend

if TYPE_CHECKING:
    import torch

    from volseg.segmenters.engine.band import Band


@dataclass(frozen=True)
class _Rows(AxisMap):
    """Some output rows of an axis-0 map, indices relative to a slab; keeps the whole map's kind."""

    whole_two_tap: bool = False

    @property
    def two_tap(self) -> bool:
        return self.whole_two_tap

    @property
    def identity(self) -> bool:
        return False


class SlabExporter:
    """Holds the codes (model grid) and labels (output grid) filled in as rows become final."""

    def __init__(self, decoder: LabelDecoder, head: AffineHead | None, maps: list[AxisMap],
                 keep: Sequence[slice], *, exact: bool, device: torch.device,
                 progress: ProgressCallback = no_progress) -> None:
        import torch

        self.decoder, self.head, self.maps, self.exact, self.progress = decoder, head, maps, exact, progress
        self.keep = tuple(keep)
        self.offset = int(self.keep[0].start or 0)
        self.model_shape = tuple(int(s.stop - (s.start or 0)) for s in self.keep)
        self.codes = torch.empty(self.model_shape, dtype=decoder.code_dtype, device=device)
        self.coded = 0  # model rows decoded so far
        self.next_row = 0  # output rows exported so far
        out_shape = tuple(m.n_out for m in maps)
        self.out = torch.empty(out_shape, dtype=decoder.label_dtype, device=device) if exact else None
        self.need = np.maximum.accumulate(maps[0].hi) if exact else None  # last model row each output row needs
        self.scored = 0.0

    def first_needed(self, default: int) -> int:
        """The first padded row whose scores are still needed (``default`` if none is)."""
        rows = [self.coded + self.offset] if self.coded < self.model_shape[0] else []
        if self.exact and self.next_row < self.maps[0].n_out:
            rows.append(int(self.maps[0].lo[self.next_row]) + self.offset)
        return min(rows) if rows else default

    def advance(self, band: Band, final: int, *, last: bool) -> None:
        """Padded rows below ``final`` can receive no more windows: decode them and export what can be."""
        end = self.model_shape[0] if last else int(np.clip(final - self.offset, 0, self.model_shape[0]))
        if end > self.coded:
            sums, weight_sum = band.rows(self.coded + self.offset, end + self.offset)
            keep = (slice(0, end - self.coded), *self.keep[1:])
            self.codes[self.coded:end] = model_grid_codes(Blend(sums, weight_sum, 0, 1), keep, self.decoder,
                                                          self.head)
            self.coded = end
        if self.exact:
            self._export(band, last=last)

    def _export(self, band: Band, *, last: bool) -> None:
        out, need = self.out, self.need
        if out is None or need is None:
            raise RuntimeError("SlabExporter: only an exact exporter exports output rows")
        m = self.maps[0]
        stop = m.n_out if last else int(np.searchsorted(need, self.coded, side="left"))
        if stop <= self.next_row:
            return
        a = self.next_row
        r0, r1 = int(m.lo[a]), int(need[stop - 1]) + 1
        rows = _Rows(m.lo[a:stop] - r0, m.hi[a:stop] - r0, m.w_lo[a:stop], m.w_hi[a:stop],
                     m.nearest[a:stop] - r0, r1 - r0, whole_two_tap=m.two_tap)
        sums, weight_sum = band.rows(r0 + self.offset, r1 + self.offset)
        stats: dict[str, float] = {}
        out[a:stop] = exact_labels(self.codes[r0:r1], Blend(sums, weight_sum, 0, 1),
                                        (slice(0, r1 - r0), *self.keep[1:]), [rows, *self.maps[1:]],
                                        self.decoder, self.head, stats=stats)
        self.scored += stats["scored_fraction"] * (stop - a)
        self.next_row = stop
        self.progress("export", stop, m.n_out)

    @property
    def scored_fraction(self) -> float:
        return self.scored / max(1, self.maps[0].n_out) if self.exact else 0.0

    def labels(self) -> torch.Tensor:
        """Labels on the output grid (after the last ``advance``)."""
        if self.out is not None:  # exact: filled in by ``advance``
            return self.out
        return nearest_labels(self.decoder.labels(self.codes), self.maps)

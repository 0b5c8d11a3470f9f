"""A rolling band of blended window sums: the rows of the model grid that windows still reach.

Windows run in nnU-Net's order, slowest axis first, so once every window starting at a given row of
axis 0 has run, the rows above the next start can receive no more windows: they are final. The band
keeps only the rows from the first one still needed to the end of the current windows — about one
patch deep — so its memory is classes × patch depth × plane, whatever the depth of the volume.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


class Band:
    """Weighted sums (K, rows, H, W) and their weight sum (rows, H, W) for padded rows start…start+rows."""

    def __init__(self, channels: int, rows: int, plane: tuple[int, ...], device: torch.device) -> None:
        import torch

        self.start = 0
        self.sums = torch.zeros((channels, rows, *plane), dtype=torch.float32, device=device)
        self.weight_sum = torch.zeros((rows, *plane), dtype=torch.float32, device=device)

    @property
    def capacity(self) -> int:
        return int(self.weight_sum.shape[0])

    def cover(self, first: int, end: int) -> None:
        """Hold padded rows first…end: rows below ``first`` are dropped, new rows start at zero."""
        if end - first > self.capacity:
            self._grow(end - first)
        shift = first - self.start
        if shift <= 0:
            return
        live = max(0, self.capacity - shift)
        for j in range(0, live, shift):  # chunks of ``shift`` rows never overlap their source
            n = min(shift, live - j)
            self.sums[:, j:j + n].copy_(self.sums[:, j + shift:j + shift + n])
            self.weight_sum[j:j + n].copy_(self.weight_sum[j + shift:j + shift + n])
        self.sums[:, live:].zero_()
        self.weight_sum[live:].zero_()
        self.start = first

    def rows(self, first: int, end: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Views of the sums and weight sum of padded rows first…end (which the band must hold)."""
        if first < self.start or end > self.start + self.capacity:
            raise ValueError(f"rows {first}…{end} are outside the band {self.start}…{self.start + self.capacity}")
        a, b = first - self.start, end - self.start
        return self.sums[:, a:b], self.weight_sum[a:b]

    def _grow(self, rows: int) -> None:
        import torch

        sums = torch.zeros((self.sums.shape[0], rows, *self.sums.shape[2:]), dtype=self.sums.dtype,
                           device=self.sums.device)
        weight_sum = torch.zeros((rows, *self.weight_sum.shape[1:]), dtype=self.weight_sum.dtype,
                                 device=self.weight_sum.device)
        sums[:, :self.capacity] = self.sums
        weight_sum[:self.capacity] = self.weight_sum
        self.sums, self.weight_sum = sums, weight_sum

"""MONAI's bundle pipeline around the network, as the bundle's own transforms run it.

A bundle's ``preprocessing`` / ``inferer`` / ``postprocessing`` (e.g. wholeBody_ct_segmentation:
Orientationd, Spacingd(bilinear), NormalizeIntensityd, ScaleIntensityd, SlidingWindowInferer,
Activationsd, AsDiscreted(argmax), Invertd(nearest)) differ from the nnU-Net-style window
pipeline in four ways, each measured in ``benchmarks/parity/monai.py``:

* **grid**: ``Spacingd`` keeps the first voxel centre and the exact target spacing; the new shape is
  ``round((n − 1)·s/t + 1)`` (MONAI ``compute_shape_offset``, ``scale_extent=False``) and voxel k
  samples the input at ``k·t/s``, clamped to the last voxel (padding mode 'border');
* **order**: the intensity transforms run *after* resampling (on the resampled values);
* **windows**: MONAI's ``sliding_window_inference`` (its window starts, Gaussian importance map with
  σ = 0.125·roi, replicate padding of images smaller than the window);
* **export**: argmax on the model grid, then ``Invertd(nearest_interp=True)``: input voxel i takes
  the label of model voxel ``round(i·s/t)``.
"""
from __future__ import annotations

import numpy as np


def grid_shape(n: int, spacing: float, target: float) -> int:
    """MONAI ``Spacing``'s output size along one axis (voxel centres kept, ``scale_extent=False``)."""
    return max(1, int(np.round((n - 1) * spacing / target + 1.0)))


def spacing_matrix(n: int, spacing: float, target: float) -> np.ndarray:
    """(m, n) bilinear weights of ``Spacingd``: model voxel k samples input position ``k·t/s``
    (border padding beyond the last voxel)."""
    m = grid_shape(n, spacing, target)
    pos = np.clip(np.arange(m) * (target / spacing), 0.0, n - 1)
    lo = np.minimum(np.floor(pos).astype(int), n - 1)
    hi = np.minimum(lo + 1, n - 1)
    w = pos - lo
    matrix = np.zeros((m, n))
    matrix[np.arange(m), lo] += 1.0 - w
    matrix[np.arange(m), hi] += w
    return matrix


def invert_indices(n: int, m: int, spacing: float, target: float) -> np.ndarray:
    """For each of the ``n`` input voxels, the model voxel ``Invertd(nearest)`` reads."""
    return np.clip(np.round(np.arange(n) * (spacing / target)).astype(int), 0, m - 1)


def labels_on_input(array: np.ndarray, spacing: tuple[float, ...], *, target: tuple[float, ...] | None,
                    intensity, predictor, roi: tuple[int, ...], overlap: float, window_batch: int,
                    device) -> tuple[np.ndarray, dict]:
    """Argmax labels of ``predictor`` on exactly the grid of ``array`` (network axes, RAS or as
    stored), computed the MONAI bundle way; returns them with the model grid's shape."""
    import torch
    from monai.inferers import sliding_window_inference

    from volseg.segmenters.engine.resample import apply_separable

    x = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(device)[None]
    target = tuple(target) if target is not None else tuple(spacing)
    matrices = {d + 1: spacing_matrix(n, s, t) for d, (n, s, t) in enumerate(zip(array.shape, spacing, target))
                if not (s == t)}
    x = apply_separable(x, matrices) if matrices else x
    x = intensity.apply(x.contiguous())
    model_shape = tuple(int(v) for v in x.shape[1:])
    with torch.no_grad():
        scores = sliding_window_inference(x[None], roi_size=tuple(roi), sw_batch_size=window_batch,
                                          predictor=predictor, overlap=overlap, mode="gaussian",
                                          sigma_scale=0.125, padding_mode="replicate")
    codes = torch.argmax(torch.as_tensor(scores)[0], dim=0).cpu().numpy()
    idx = [invert_indices(n, m, s, t) for n, m, s, t in zip(array.shape, model_shape, spacing, target)]
    return codes[np.ix_(*idx)], {"model_grid_shape": list(model_shape)}

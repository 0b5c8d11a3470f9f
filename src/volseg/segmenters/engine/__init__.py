"""The inference engine shared by every backend: sliding windows, blending, precision, fallbacks,
resampling between grids and the way labels return to exactly the input grid.

Backends supply a predictor callable (windows → logits or features) and the model's geometry; the
engine does the rest. Modules: :mod:`.settings` (EngineSettings), :mod:`.tiling` and
:mod:`.gaussian` (nnU-Net's window grid and blending weights), :mod:`.sliding_window` (blending),
:mod:`.precision` (autocast), :mod:`.oom` (out-of-memory fallbacks), :mod:`.infer` (all of these in
one call), :mod:`.preprocess` (intensity normalisation, cropping), :mod:`.resample` (separable
resampling matrices) and :mod:`.export` (codes on the model grid, back to the input grid).
:mod:`.stream` does windows, codes and export in one pass with the class scores in a rolling
:mod:`.band` about one patch deep (:mod:`.slab_export`), so memory does not grow with classes ×
model-grid volume.
"""
from volseg.segmenters.engine.settings import EngineSettings

__all__ = ["EngineSettings"]

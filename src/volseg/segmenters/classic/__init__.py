"""The built-in rule-based CT segmenter ``classic-ct`` (backend ``classic``); see :mod:`.segmenter`."""
from volseg.segmenters.classic.segmenter import ClassicCT, check_ct, load, segment_masks

__all__ = ["ClassicCT", "check_ct", "load", "segment_masks"]

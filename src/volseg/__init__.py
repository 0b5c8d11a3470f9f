"""volseg: volumetric medical image segmentation, measurements and standardised reports."""
from __future__ import annotations

import os

__version__ = "0.1.0"

__all__ = ["__version__"]

# PyTorch's CPU allocator asks for transparent huge pages for its large blocks (read once, at its
# first allocation: so here, before any torch import). A 3-D U-Net's activations are hundreds of MB
# allocated afresh for every window; in 4 KB pages each window cost ~1 M page faults (27 % of the
# process's CPU time was the kernel's on the full-size `total` run). With huge pages: 16× fewer faults,
# ~12 % less CPU per window here (benchmarks/bench_scale_network.py). THP_MEM_ALLOC_ENABLE=0 turns it off.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

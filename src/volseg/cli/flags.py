"""Options shared by several commands (Typer option definitions, reused as parameter defaults)."""
from __future__ import annotations

import typer

STEP = typer.Option(None, "--step", min=0.05, max=1.0,
                    help="Sliding-window step as a fraction of the patch, e.g. 0.5 = 50 % overlap "
                         "(default: the model's; nnU-Net's tile_step_size).")
TTA = typer.Option(None, "--tta/--no-tta",
                   help="Mirroring test-time augmentation (up to 8× slower; default: the model's, "
                        "off for most).")
PRECISION = typer.Option(None, "--precision",
                         help="auto (fp16 on CUDA, bf16 on CPUs with native bf16) | fp32 | bf16 | fp16.")
EXPORT = typer.Option(None, "--export",
                      help="How labels return to the input grid: exact (nnU-Net's probability "
                           "resampling, default) | nearest (faster).")

"""The per-run log file ``OUT/logs/batch-<UTC time>[-shard<i>of<n>]-<pid>.log`` (no patient data).

For the duration of a batch a file handler is attached to the ``volseg`` logger at INFO, without
changing what the console shows: console handlers keep the level they had.
"""
from __future__ import annotations

import datetime as _dt
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from volseg.batch.layout import LOGS
from volseg.batch.shard import Shard

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_path(out_dir: Path, shard: Shard) -> Path:
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    part = f"-shard{shard.index}of{shard.count}" if shard.count > 1 else ""
    return Path(out_dir) / LOGS / f"batch-{stamp}{part}-{os.getpid()}.log"


@contextmanager
def run_log(path: Path | None) -> Iterator[Path | None]:
    if path is None:
        yield None
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger("volseg")
    previous = logger.level
    effective = logger.getEffectiveLevel()
    pinned = [h for h in logger.handlers if h.level == logging.NOTSET]
    for handler in pinned:  # keep the console as it was while the logger opens up to INFO
        handler.setLevel(effective)
    handler = logging.FileHandler(path, encoding="utf-8", delay=False)
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.setLevel(logging.INFO)
    logger.addHandler(handler)
    logger.setLevel(min(effective, logging.INFO))
    try:
        yield path
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.setLevel(previous)
        for h in pinned:
            h.setLevel(logging.NOTSET)

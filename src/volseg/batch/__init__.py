"""The cohort engine behind ``volseg batch``: a folder of studies, resumable and fault-isolated.

* :func:`run_batch` (also ``volseg.api.batch``): discover → shard → plan → run → summarise.
* :mod:`~volseg.batch.discover`: studies and their ids · :mod:`~volseg.batch.shard`: ``--shard i/n``
* :mod:`~volseg.batch.records`: completion / failure records · :mod:`~volseg.batch.layout`: folders
* :mod:`~volseg.batch.local` and :mod:`~volseg.batch.ray_executor`: the executors
* :mod:`~volseg.batch.slurm`: the ``sbatch`` array script

Names are imported lazily so that reader processes (which import this package) start quickly.
"""
from __future__ import annotations

_EXPORTS = {
    "run_batch": "volseg.batch.engine",
    "BatchOptions": "volseg.batch.options",
    "BatchEvent": "volseg.batch.events",
    "BatchSummary": "volseg.batch.events",
    "FailedStudy": "volseg.batch.events",
    "Study": "volseg.batch.discover",
    "discover_studies": "volseg.batch.discover",
    "Shard": "volseg.batch.shard",
    "parse_shard": "volseg.batch.shard",
    "shard_from_env": "volseg.batch.shard",
    "slurm_script": "volseg.batch.slurm",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'volseg.batch' has no attribute {name!r}")

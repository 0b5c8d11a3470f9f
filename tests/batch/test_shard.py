"""--shard i/n and its defaults from SLURM job-array variables."""
from __future__ import annotations

import pytest

from volseg.batch.shard import ALL, Shard, parse_shard, resolve_shard, shard_from_env
from volseg.errors import UsageError


def test_parse_shard():
    assert parse_shard("0/3") == Shard(0, 3)
    assert parse_shard(" 2 / 3 ") == Shard(2, 3)
    for bad in ("3/3", "1", "a/b", "-1/2", "0/0", ""):
        with pytest.raises(UsageError, match="invalid shard"):
            parse_shard(bad)


@pytest.mark.parametrize("n_items", [0, 1, 5, 6, 7, 20])
@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_every_item_in_exactly_one_balanced_shard(n_items, count):
    items = [f"s{i:02d}" for i in range(n_items)]
    parts = [Shard(i, count).select(items) for i in range(count)]
    flat = [x for part in parts for x in part]
    assert sorted(flat) == items and len(flat) == len(set(flat))
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1


def test_slurm_array_variables():
    env = {"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "4", "SLURM_ARRAY_TASK_COUNT": "3"}
    assert shard_from_env(env) == Shard(1, 3)  # --array=4-6: tasks 4, 5, 6 → shards 0, 1, 2
    assert shard_from_env({"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "4"}) == Shard(0, 4)
    stepped = {"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_STEP": "2",
               "SLURM_ARRAY_TASK_MAX": "6"}  # --array=0-6:2 → tasks 0 2 4 6
    assert shard_from_env(stepped) == Shard(2, 4)
    assert shard_from_env({}) is None
    with pytest.raises(UsageError, match="outside the array"):
        shard_from_env({"SLURM_ARRAY_TASK_ID": "9", "SLURM_ARRAY_TASK_COUNT": "3"})
    with pytest.raises(UsageError, match="SLURM_ARRAY_TASK_COUNT"):
        shard_from_env({"SLURM_ARRAY_TASK_ID": "1"})


def test_explicit_shard_wins_over_slurm():
    env = {"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "3"}
    assert resolve_shard("2/5", env) == Shard(2, 5)
    assert resolve_shard(None, env) == Shard(1, 3)
    assert resolve_shard(None, {}) == ALL

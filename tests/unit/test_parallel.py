"""volseg.parallel.map_forked and start_forked: the plain loop's (or call's) results, order and
exceptions, on several processes."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from volseg import parallel
from volseg.parallel import map_forked, start_forked, worker_count

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="workers are forked on Linux only")


def _pid_and_square(x: int) -> tuple[int, int]:
    return os.getpid(), x * x


@linux_only
def test_results_in_order_and_computed_in_other_processes():
    got = map_forked(_pid_and_square, range(11), workers=3)
    assert [v for _, v in got] == [x * x for x in range(11)]
    pids = {pid for pid, _ in got}
    assert os.getpid() in pids and len(pids) == 3  # this process and two forks, round-robin shares
    assert [pid for pid, _ in got][0::3] == [os.getpid()] * 4


@linux_only
def test_shared_array_is_read_not_copied_into_arguments():
    big = np.arange(2_000_000, dtype=np.int64)  # seen by the forks through fork, never pickled
    got = map_forked(lambda k: int(big[k::4].sum()), range(4), workers=2)
    assert got == [int(big[k::4].sum()) for k in range(4)]


def test_one_worker_is_the_plain_loop(monkeypatch):
    monkeypatch.setenv(parallel.WORKERS_ENV, "1")
    got = map_forked(_pid_and_square, range(5))
    assert got == [(os.getpid(), x * x) for x in range(5)]


def test_worker_count_from_env_and_affinity(monkeypatch):
    monkeypatch.setenv(parallel.WORKERS_ENV, "3")
    assert worker_count() == 3
    monkeypatch.setenv(parallel.WORKERS_ENV, "many")
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1, 2, 3, 4, 5, 6, 7}, raising=False)
    assert worker_count() == parallel.MAX_WORKERS  # a bad value: the cores, capped
    monkeypatch.delenv(parallel.WORKERS_ENV)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {5}, raising=False)
    assert worker_count() == 1  # one core allowed (SLURM, taskset): nothing forked


def _fails_on_seven(x: int) -> int:
    if x == 7:
        raise ValueError("seven is bad input")
    return x


@linux_only
def test_an_exception_in_a_fork_is_raised_here_as_the_loop_would():
    with pytest.raises(ValueError, match="seven is bad input"):
        map_forked(_fails_on_seven, range(10), workers=2)  # 7 is in the fork's share (odd items)


@linux_only
def test_an_exception_in_this_process_stops_the_forks():
    with pytest.raises(ValueError, match="seven is bad input"):
        map_forked(_fails_on_seven, range(10), workers=4)  # 7 % 4 == 3: a fork's; 0 here
    with pytest.raises(ValueError):
        map_forked(_fails_on_seven, [7, 1, 2, 3], workers=4)  # here: the forks are stopped
    assert not [c for c in __import__("multiprocessing").active_children() if c.name == "volseg-worker"]


_PARENT = os.getpid()


def _dies_in_fork(x: int) -> int:
    if os.getpid() != _PARENT:
        os._exit(3)  # a worker killed without an answer (out of memory, a signal)
    return x + 1


@linux_only
def test_a_worker_that_dies_has_its_share_computed_here():
    assert map_forked(_dies_in_fork, range(6), workers=2) == [x + 1 for x in range(6)]


def test_no_fork_where_forking_is_refused(monkeypatch):
    monkeypatch.setattr(parallel.sys, "platform", "darwin")
    assert map_forked(_pid_and_square, range(4), workers=4) == [(os.getpid(), x * x) for x in range(4)]


# ---- start_forked: one call beside this process's next steps ------------------------------------
@linux_only
def test_start_forked_computes_in_a_child_while_this_process_goes_on(monkeypatch):
    monkeypatch.setenv(parallel.WORKERS_ENV, "2")
    with start_forked(lambda: _pid_and_square(9)) as pending:
        here = _pid_and_square(3)
        pid, value = pending.result()
    assert value == 81 and pid != os.getpid() and here == (os.getpid(), 9)
    assert pending.result() == (pid, 81)  # asked again: the same answer, no second child


def test_start_forked_with_one_worker_computes_here_when_asked(monkeypatch):
    monkeypatch.setenv(parallel.WORKERS_ENV, "1")
    calls = []
    pending = start_forked(lambda: calls.append(os.getpid()) or len(calls))
    assert calls == []  # nothing computed until asked
    assert pending.result() == 1 and calls == [os.getpid()]


@linux_only
def test_start_forked_raises_the_childs_exception_here(monkeypatch):
    monkeypatch.setenv(parallel.WORKERS_ENV, "2")
    with pytest.raises(ValueError, match="seven is bad input"):
        with start_forked(lambda: _fails_on_seven(7)) as pending:
            pending.result()


@linux_only
def test_a_stopped_child_removes_its_temp_file(monkeypatch, tmp_path):
    """Left early (the caller failed): the child is stopped and unwinds, so an atomic write it was
    doing leaves neither the file nor its temp file."""
    import time

    from volseg.io.atomic import atomic_path

    monkeypatch.setenv(parallel.WORKERS_ENV, "2")

    def slow_write():
        with atomic_path(tmp_path / "out.bin") as tmp:
            tmp.write_bytes(b"partial")
            time.sleep(60)

    with pytest.raises(RuntimeError, match="caller failed"):
        with start_forked(slow_write):
            deadline = time.monotonic() + 30
            while not list(tmp_path.iterdir()) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert [p.name.startswith(".tmp-") for p in tmp_path.iterdir()] == [True]
            raise RuntimeError("caller failed")
    assert list(tmp_path.iterdir()) == []
    assert not [c for c in __import__("multiprocessing").active_children() if c.name == "volseg-worker"]


@linux_only
def test_a_working_child_beside_takes_one_worker(monkeypatch):
    import time

    monkeypatch.setenv(parallel.WORKERS_ENV, "3")
    with start_forked(lambda: time.sleep(30)) as pending:
        assert pending.working()
        assert len({pid for pid, _ in map_forked(_pid_and_square, range(6))}) == 2  # 3 workers, 1 taken
        pending.cancel()
    assert len({pid for pid, _ in map_forked(_pid_and_square, range(6))}) == 3
    with start_forked(lambda: 7) as done:
        deadline = time.monotonic() + 30
        while done.working() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not done.working()  # finished: its answer read, the child reaped, the worker free again
        assert not [c for c in __import__("multiprocessing").active_children() if c.name == "volseg-worker"]
        assert len({pid for pid, _ in map_forked(_pid_and_square, range(6))}) == 3
        assert done.result() == 7
    monkeypatch.setenv(parallel.WORKERS_ENV, "2")
    with start_forked(lambda: time.sleep(30)) as outer:
        with start_forked(lambda: os.getpid()) as inner:  # no worker left: computed here
            assert inner.result() == os.getpid()
        outer.cancel()
    assert not list(parallel._BESIDE)

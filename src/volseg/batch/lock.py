"""One batch at a time per output folder (per shard): ``OUT/.volseg-lock[-<i>of<n>]``.

The lock is an ``fcntl.flock`` on the file, so the kernel drops it when a run ends or crashes: a
stale lock file never blocks anyone. The last holder removes the file; whoever locked the removed
file meanwhile notices (it is no longer the file at that path) and locks the new one. The file records who holds it (pid, host, start time) so the
second run can say so. A run of every study takes ``.volseg-lock`` exclusively; a shard of a SLURM
array takes it shared (shards of one array write into the same folder by design) and its own
``.volseg-lock-<i>of<n>`` exclusively, so two runs of the same shard exclude each other, different
shards do not, and a full run excludes every shard.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from volseg.batch.shard import Shard
from volseg.errors import OutputError

log = logging.getLogger(__name__)

LOCK = ".volseg-lock"
POLL_S = 2.0


def lock_names(shard: Shard) -> list[tuple[str, bool]]:
    """(lock file name, exclusive) to take, in order, for this shard."""
    if shard.count == 1:
        return [(LOCK, True)]
    return [(LOCK, False), (f"{LOCK}-{shard.index}of{shard.count}", True)]


@contextmanager
def output_lock(out_dir: Path, shard: Shard, *, wait: bool = False, poll_s: float = POLL_S,
                on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold this shard's locks on ``out_dir`` for the block; raise :class:`OutputError` (exit 6)
    naming the holder when another run holds them, or poll until free with ``wait``."""
    try:
        import fcntl  # noqa: F401
    except ImportError:  # pragma: no cover - not POSIX: no locking
        log.warning("output folder not locked: file locks need a POSIX system")
        yield
        return
    with ExitStack() as stack:
        for name, exclusive in lock_names(shard):
            stack.enter_context(_hold(Path(out_dir) / name, exclusive=exclusive, wait=wait, poll_s=poll_s,
                                      on_wait=on_wait))
        yield


@contextmanager
def _hold(path: Path, *, exclusive: bool, wait: bool, poll_s: float, on_wait) -> Iterator[None]:
    import fcntl

    told = False
    while True:
        fd = _open(path)
        acquired = False
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
            acquired = True
        except BlockingIOError:
            who = holder(path)
            if not wait:
                os.close(fd)
                raise OutputError(f"the output folder is in use by another volseg batch ({who})",
                                  path=path.parent, hint="wait for it to end, or rerun with --wait") from None
            if not told and on_wait is not None:
                on_wait(who)
            told = True
        if acquired and _same_file(fd, path):
            break
        os.close(fd)  # locked a file its last holder had just removed: take the new one
        if not acquired:
            time.sleep(poll_s)
    try:
        if exclusive:
            _record(fd)
        else:  # no exclusive holder now: whatever a crashed full run recorded is stale
            os.ftruncate(fd, 0)
        yield
    finally:
        _release(fd, path)


def _open(path: Path) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise OutputError(f"cannot create the lock file: {exc.strerror or exc}", path=path) from exc


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except OSError:
        return False


def _release(fd: int, path: Path) -> None:
    """Remove the lock file when nobody else holds it (the output folder stays as it was), unlock."""
    import fcntl

    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a shared holder: only if it is the last
            os.unlink(path)
        except OSError:  # other shards still hold it, or it is already gone
            pass
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _record(fd: int) -> None:
    info = {"pid": os.getpid(), "host": socket.gethostname(),
            "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, (json.dumps(info) + "\n").encode())
    os.fsync(fd)


def holder(path: Path) -> str:
    """Who holds the lock at ``path``, as recorded in it ("shards of an array" for a shared lock)."""
    try:
        info = json.loads(Path(path).read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        info = {}
    if not info.get("pid"):
        shards = sorted(p.name[len(LOCK) + 1:] for p in Path(path).parent.glob(f"{LOCK}-*of*") if _busy(p))
        return f"shards {', '.join(shards)} of an array run" if shards else "holder unknown"
    return f"pid {info['pid']} on {info.get('host', '?')} since {info.get('started', '?')}"


def _busy(path: Path) -> bool:
    """Whether some process holds a lock on ``path`` now."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)

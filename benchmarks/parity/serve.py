"""A loopback HTTP server (127.0.0.1, a free port) over one folder, for ``VOLSEG_MIRROR``."""
from __future__ import annotations

import contextlib
import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # requests are not the table's business
        pass


@contextlib.contextmanager
def serve(folder: Path):
    """Yield the base URL of a server on 127.0.0.1 serving ``folder``; stopped on exit."""
    handler = functools.partial(_Quiet, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()

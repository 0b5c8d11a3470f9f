"""A small threaded HTTP file server on 127.0.0.1 for download tests.

Serves files from a folder, honours ``Range: bytes=N-`` (206 + Content-Range), can ignore Range
for chosen paths, can cut the connection after N bytes of the first response for a path, and
records every request (path and Range header) so tests can assert what the client asked for.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote


@dataclass
class ServerState:
    root: Path
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    cut_after: dict[str, int] = field(default_factory=dict)  # path → bytes sent before closing (once)
    ignore_range: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(state: ServerState):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # one request per connection: a cut is a closed socket

        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server API)
            rel = unquote(self.path.split("?", 1)[0]).lstrip("/")
            range_header = self.headers.get("Range")
            with state.lock:
                state.requests.append((rel, range_header))
                cut = state.cut_after.pop(rel, None)
            path = (state.root / rel).resolve()
            if not path.is_relative_to(state.root.resolve()) or not path.is_file():
                self.send_error(404, "Not Found")
                return
            data = path.read_bytes()
            start = 0
            if range_header and rel not in state.ignore_range:
                start = int(range_header.split("=", 1)[1].split("-", 1)[0])
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            self.wfile.write(body if cut is None else body[:cut])
            self.wfile.flush()

    return Handler


class FileServer:
    def __init__(self, root: Path) -> None:
        self.state = ServerState(root)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state))
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)

    def __enter__(self) -> "FileServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, rel: str) -> str:
        return f"{self.base_url}/{rel}"

    @property
    def requests(self) -> list[tuple[str, str | None]]:
        return list(self.state.requests)

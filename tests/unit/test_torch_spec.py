"""tools/torch_spec.sh: which PyTorch build the set-up installs (never CUDA wheels without a driver)."""
from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import REPO

SCRIPT = REPO / "tools" / "torch_spec.sh"


def _fake_tool(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def _run(tmp_path: Path, *, driver: bool, system: str = "Linux", index: str, **env: str):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    _fake_tool(bin_dir, "uname", f"echo {system}")
    if driver:
        _fake_tool(bin_dir, "nvidia-smi", "echo 'GPU 0: NVIDIA H100'")
    # only our fakes and the basic tools: a real nvidia-smi on the test machine must not leak in
    path = f"{bin_dir}:/usr/bin:/bin"
    full_env = {"PATH": path, "PYTHON": sys.executable, "VOLSEG_TORCH_CPU_INDEX": index, **env}
    done = subprocess.run(["bash", str(SCRIPT)], env=full_env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.split(), done.stderr


@pytest.fixture()
def cpu_index(tmp_path: Path):
    """A loopback 'simple' index that answers for /torch/, like PyTorch's CPU wheel index."""
    root = tmp_path / "index"
    (root / "torch").mkdir(parents=True)
    (root / "torch" / "index.html").write_text("<html><body></body></html>")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def _closed_port_url() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_no_driver_uses_the_cpu_index(tmp_path, cpu_index):
    args, message = _run(tmp_path, driver=False, index=cpu_index)
    assert args == ["torch==2.13.0", "--index-url", cpu_index]
    assert "CPU build" in message


def test_no_driver_and_no_cpu_index_falls_back_to_the_default_index(tmp_path):
    url = _closed_port_url()
    args, message = _run(tmp_path, driver=False, index=url)
    assert args == ["torch==2.13.0"]
    assert "cannot be reached" in message


def test_driver_gets_the_default_cuda_build(tmp_path, cpu_index):
    args, message = _run(tmp_path, driver=True, index=cpu_index)
    assert args == ["torch==2.13.0"]
    assert "CUDA" in message


def test_macos_needs_no_cpu_index(tmp_path, cpu_index):
    args, _ = _run(tmp_path, driver=False, system="Darwin", index=cpu_index)
    assert args == ["torch==2.13.0"]


def test_user_choice_wins(tmp_path, cpu_index):
    args, _ = _run(tmp_path, driver=False, index=cpu_index, VOLSEG_TORCH="torch==2.4.1")
    assert args == ["torch==2.4.1"]


def test_install_script_uses_the_decision():
    text = (REPO / "tools" / "install.sh").read_text()
    assert "tools/torch_spec.sh" in text
    assert os.access(SCRIPT, os.X_OK)

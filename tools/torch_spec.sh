#!/usr/bin/env bash
# Decide how PyTorch is installed; prints the pip install arguments, one per line (install.sh runs them).
#
#   VOLSEG_TORCH="torch==X"       use exactly this requirement, from the default index (your choice wins)
#   an NVIDIA driver (nvidia-smi)  the default index's build of torch: CUDA wheels on Linux
#   no NVIDIA driver               PyTorch's CPU wheel index (never the multi-GB CUDA libraries);
#                                  if that index cannot be reached, the default index (a local mirror
#                                  or a wheel folder that pip is configured with), saying so
#   VOLSEG_TORCH_CPU_INDEX=URL     another CPU wheel index (e.g. an internal mirror of it)
#
# macOS wheels on the default index are CPU/MPS builds already, so no index is chosen there.
set -euo pipefail
PY=${PYTHON:-python3}
TORCH_REQ=${VOLSEG_TORCH_VERSION_SPEC:-torch==2.13.0}
CPU_INDEX=${VOLSEG_TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}

say() { echo "[volseg] $*" >&2; }

reachable() {  # is a pip "simple" index answering for torch? (5 s, no retries)
  "$PY" - "$1" <<'PYEOF' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(sys.argv[1].rstrip("/") + "/torch/", timeout=5).close()
PYEOF
}

if [ -n "${VOLSEG_TORCH:-}" ]; then
  say "PyTorch: $VOLSEG_TORCH (VOLSEG_TORCH)"
  echo "$VOLSEG_TORCH"
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  say "PyTorch: NVIDIA driver found, installing the CUDA build ($TORCH_REQ)"
  echo "$TORCH_REQ"
elif [ "$(uname -s)" = "Darwin" ]; then
  say "PyTorch: macOS build ($TORCH_REQ)"
  echo "$TORCH_REQ"
elif reachable "$CPU_INDEX"; then
  say "PyTorch: no NVIDIA driver, installing the CPU build from $CPU_INDEX"
  echo "$TORCH_REQ"
  echo "--index-url"
  echo "$CPU_INDEX"
else
  say "PyTorch: no NVIDIA driver and $CPU_INDEX cannot be reached; installing $TORCH_REQ from the default index"
  say "  (pip's configured index or wheel folder; on Linux, PyPI itself would give the CUDA build: set"
  say "   VOLSEG_TORCH_CPU_INDEX to a reachable mirror of the CPU index to avoid that)"
  echo "$TORCH_REQ"
fi

#!/usr/bin/env bash
# Create .venv (if missing) and install volseg into it with the given extras.
#
#   tools/install.sh            # runtime only
#   tools/install.sh test       # runtime + every optional backend + test tools
#
# PyTorch is installed first and then pinned, so no other package can swap it for another build.
# tools/torch_spec.sh decides which build: without an NVIDIA driver the CPU build from PyTorch's CPU
# wheel index (never the multi-GB CUDA wheels); with `nvidia-smi` working, the CUDA build.
# Override with VOLSEG_TORCH="torch==X".
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VOLSEG_VENV:-.venv}
EXTRAS=${1:-}

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
  mapfile -t TORCH_ARGS < <(PYTHON="$VENV/bin/python" tools/torch_spec.sh)
  "${PIP[@]}" install -q "${TORCH_ARGS[@]}"
fi
TORCH_VERSION=$("$VENV/bin/python" -W ignore -c "import torch; print(torch.__version__.split('+')[0])" 2>/dev/null)
echo "torch==$TORCH_VERSION" > "$VENV/constraints.txt"

TARGET="."
[ -n "$EXTRAS" ] && TARGET=".[$EXTRAS]"
echo "[volseg] installing volseg$([ -n "$EXTRAS" ] && echo "[$EXTRAS]") (torch pinned to $TORCH_VERSION)" >&2
PIP_CONSTRAINT="$VENV/constraints.txt" "${PIP[@]}" install -q -e "$TARGET"

#!/usr/bin/env bash
# Create .venv (if missing) and install volseg into it with the given extras.
#
#   tools/install.sh            # runtime only
#   tools/install.sh test       # runtime + every optional backend + test tools
#
# PyTorch is installed first and then pinned, so no other package can swap it for another build:
# on a machine without an NVIDIA driver it is the CPU build (never the multi-GB CUDA wheels);
# with `nvidia-smi` present it is the default (CUDA) build. Override with VOLSEG_TORCH="torch==X".
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VOLSEG_VENV:-.venv}
EXTRAS=${1:-}

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

if [ -n "${VOLSEG_TORCH:-}" ]; then
  TORCH_SPEC=$VOLSEG_TORCH
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  TORCH_SPEC="torch"
else
  TORCH_SPEC="torch==2.13.0"            # resolves to the CPU wheel on CPU-only machines
fi
if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
  echo "[volseg] installing PyTorch ($TORCH_SPEC)" >&2
  "${PIP[@]}" install -q "$TORCH_SPEC"
fi
TORCH_VERSION=$("$VENV/bin/python" -W ignore -c "import torch; print(torch.__version__.split('+')[0])" 2>/dev/null)
echo "torch==$TORCH_VERSION" > "$VENV/constraints.txt"

TARGET="."
[ -n "$EXTRAS" ] && TARGET=".[$EXTRAS]"
echo "[volseg] installing volseg$([ -n "$EXTRAS" ] && echo "[$EXTRAS]") (torch pinned to $TORCH_VERSION)" >&2
PIP_CONSTRAINT="$VENV/constraints.txt" "${PIP[@]}" install -q -e "$TARGET"

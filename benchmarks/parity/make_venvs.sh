#!/usr/bin/env bash
# The peers' own virtual environments for the parity harness (`python -m benchmarks.parity`), made from
# the package registry, never sharing packages with volseg's:
#
#   bash benchmarks/parity/make_venvs.sh                 # all four
#   bash benchmarks/parity/make_venvs.sh totalseg        # TotalSegmentator 2.18 (+ the nnU-Net it pins)
#   bash benchmarks/parity/make_venvs.sh raidionics      # raidionicsseg (Raidionics' back-end, onnxruntime)
#   bash benchmarks/parity/make_venvs.sh blast           # blast-ct (BLAST-CT's own network code and CLI)
#   bash benchmarks/parity/make_venvs.sh mrsegmentator   # MRSegmentator 2.0 (see make_mrsegmentator)
#
# Where: VOLSEG_PEER_TS_VENV (default /work/peers/ts-venv), VOLSEG_PEER_RAIDIONICS_VENV (default
# /work/peers/raidionics-venv), VOLSEG_PEER_BLAST_VENV (default /work/peers/blast-venv), VOLSEG_PEER_MRSEG_VENV
# (default /work/peers/mrseg-venv); an existing venv with its peer installed is kept. PyTorch is installed
# first, as tools/torch_spec.sh decides for volseg (the CPU build where there is no NVIDIA driver), and
# pinned while the peer installs, so pip cannot swap in another build.
set -euo pipefail
cd "$(dirname "$0")/../.."
TS_VENV=${VOLSEG_PEER_TS_VENV:-/work/peers/ts-venv}
RAID_VENV=${VOLSEG_PEER_RAIDIONICS_VENV:-/work/peers/raidionics-venv}
BLAST_VENV=${VOLSEG_PEER_BLAST_VENV:-/work/peers/blast-venv}
BLAST_SPEC=${VOLSEG_PEER_BLAST_SPEC:-blast-ct==2.1.*}
MRSEG_VENV=${VOLSEG_PEER_MRSEG_VENV:-/work/peers/mrseg-venv}
TS_SPEC=${VOLSEG_PEER_TS_SPEC:-TotalSegmentator==2.18.*}
PY=${PYTHON:-python3}

fresh() {  # VENV MODULE: make VENV unless MODULE already imports there
  if [ -x "$1/bin/python" ] && "$1/bin/python" -c "import $2" 2>/dev/null; then
    echo "[parity] $1: $2 already installed"; return 1
  fi
  "$PY" -m venv "$1"
  "$1/bin/python" -m pip install -q --upgrade pip
}

torch_first() {  # VENV: install torch as volseg's installer would; prints the requirement to pin
  mapfile -t args < <(PYTHON="$1/bin/python" tools/torch_spec.sh)
  "$1/bin/python" -m pip install -q "${args[@]}"
  echo "${args[0]}"
}

make_totalseg() {
  fresh "$TS_VENV" totalsegmentator || return 0
  pin=$(torch_first "$TS_VENV")
  "$TS_VENV/bin/python" -m pip install -q "$TS_SPEC" "$pin"
  "$TS_VENV/bin/python" -c "import importlib.metadata as m; print('[parity] TotalSegmentator', m.version('TotalSegmentator'), 'nnunetv2', m.version('nnunetv2'))"
}

make_raidionics() {
  fresh "$RAID_VENV" raidionicsseg || return 0
  "$RAID_VENV/bin/python" -m pip install -q raidionicsseg onnxruntime
  "$RAID_VENV/bin/python" -c "import importlib.metadata as m; print('[parity] raidionicsseg', m.version('raidionicsseg'))"
}

make_blast() {
  fresh "$BLAST_VENV" blast_ct || return 0
  pin=$(torch_first "$BLAST_VENV")
  "$BLAST_VENV/bin/python" -m pip install -q "$BLAST_SPEC" "$pin"
  "$BLAST_VENV/bin/python" -c "import importlib.metadata as m; print('[parity] blast-ct', m.version('blast-ct'))"
}

make_mrsegmentator() {  # its pins (torch <= 2.10, nnunetv2 <= 2.8.0) have no CPU torch build in every
  # index: torch as for volseg, nnunetv2 2.8.0 (its newest allowed), then mrsegmentator without its pins
  fresh "$MRSEG_VENV" mrsegmentator || return 0
  pin=$(torch_first "$MRSEG_VENV")
  "$MRSEG_VENV/bin/python" -m pip install -q "nnunetv2==2.8.0" pydicom highdicom tqdm "$pin"
  "$MRSEG_VENV/bin/python" -m pip install -q --no-deps "mrsegmentator==2.0.*"
  "$MRSEG_VENV/bin/python" -c "import importlib.metadata as m; print('[parity] mrsegmentator', m.version('mrsegmentator'), 'nnunetv2', m.version('nnunetv2'))"
}

for peer in "${@:-totalseg raidionics blast mrsegmentator}"; do
  for p in $peer; do
    case "$p" in
      totalseg) make_totalseg ;;
      raidionics) make_raidionics ;;
      blast) make_blast ;;
      mrsegmentator) make_mrsegmentator ;;
      *) echo "unknown peer $p (totalseg, raidionics, blast, mrsegmentator)" >&2; exit 2 ;;
    esac
  done
done

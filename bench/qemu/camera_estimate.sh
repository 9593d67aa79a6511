#!/bin/sh
# Guest instructions per frame of Vigil's per-frame CPU path (camera mode, no model) on arm64, under
# qemu-aarch64 with bench/qemu/insn_count.c: two replays of the same recorded model outputs, F1 and F2
# frames; (count(F2) - count(F1)) / (F2 - F1) is the marginal cost of a frame (start-up, imports and
# first-frame work cancel out). Needs: qemu-user (Debian's, plugins enabled), an arm64 root with
# python3.11 (ROOT, e.g. debootstrap --foreign --arch=arm64 --variant=minbase --include=python3.11 bookworm
# ROOT), the arm64 wheels of numpy, opencv-python-headless, pydantic, pyyaml, flatbuffers in SITE
# (pip install --target SITE --platform manylinux2014_aarch64 --only-binary=:all: ...) and outputs
# recorded on this machine: python bench/frame_cpu.py --mode file --frames 80 --record OUT.npz
#   sh bench/qemu/camera_estimate.sh ROOT SITE OUT.npz [F1 F2]
set -eu
ROOT=$1 SITE=$2 OUTPUTS=$3 F1=${4:-10} F2=${5:-60}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PLUGIN=$(mktemp -d)/insn_count.so
cc -shared -fPIC -O2 -o "$PLUGIN" "$HERE/insn_count.c"
count() {
    cd "$REPO" && OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 PYTHONPATH="$SITE:$REPO" \
        qemu-aarch64 -cpu cortex-a53 -plugin "$PLUGIN" -L "$ROOT" "$ROOT/usr/bin/python3.11" bench/frame_cpu.py \
        --mode camera --replay "$OUTPUTS" --frames "$1" --threads 1 2>&1 >/dev/null | sed -n 's/^guest instructions: //p'
}
N1=$(count "$F1")
N2=$(count "$F2")
echo "guest instructions: $N1 ($F1 frames), $N2 ($F2 frames)"
echo "per frame: $(( (N2 - N1) / (F2 - F1) ))"

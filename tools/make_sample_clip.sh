#!/usr/bin/env bash
# Rebuild samples/vtest.mp4 from OpenCV's vtest.avi as shipped in Debian's
# opencv-doc package. Dev-time only; needs a Debian/Ubuntu host with apt,
# dpkg-deb and ffmpeg (`apt-get install -y ffmpeg`).
#
# Usage: tools/make_sample_clip.sh [path/to/opencv-doc_*.deb]
#   Without an argument the .deb is fetched with `apt-get download opencv-doc`
#   (the result was produced from bookworm's 4.6.0+dfsg-12).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${REPO_ROOT}/samples/vtest.mp4"
AVI_IN_DEB="./usr/share/doc/opencv-doc/examples/data/vtest.avi"
EXPECTED_AVI_SHA256="45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf"

for tool in dpkg-deb ffmpeg sha256sum; do
    command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 1; }
done

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

if [[ $# -ge 1 ]]; then
    DEB="$(realpath "$1")"
else
    (cd "$WORK" && apt-get download opencv-doc)
    DEB="$(ls "$WORK"/opencv-doc_*_all.deb)"
fi
echo "using $DEB"

(cd "$WORK" && dpkg-deb --fsys-tarfile "$DEB" | tar -x "$AVI_IN_DEB")
AVI="$WORK/$AVI_IN_DEB"

actual="$(sha256sum "$AVI" | cut -d' ' -f1)"
if [[ "$actual" != "$EXPECTED_AVI_SHA256" ]]; then
    echo "warning: vtest.avi sha256 is $actual, expected $EXPECTED_AVI_SHA256" >&2
fi

# All 795 frames, 768x576, constant 10 fps, H.264 High / yuv420p, no audio,
# no container metadata, moov atom at the front.
mkdir -p "$(dirname "$OUT")"
ffmpeg -v error -y -i "$AVI" \
    -map 0:v:0 -an -sn -map_metadata -1 \
    -c:v libx264 -preset slow -crf 26 -pix_fmt yuv420p -r 10 \
    -movflags +faststart \
    "$OUT"

frames="$(ffprobe -v error -count_frames -select_streams v:0 \
    -show_entries stream=nb_read_frames -of csv=p=0 "$OUT")"
size="$(stat -c %s "$OUT")"
echo "wrote $OUT: $frames frames, $size bytes"
echo "sha256 $(sha256sum "$OUT" | cut -d' ' -f1)"
if [[ "$frames" != "795" ]]; then
    echo "error: expected 795 frames" >&2
    exit 1
fi
if (( size > 5 * 1024 * 1024 )); then
    echo "error: clip larger than 5 MiB" >&2
    exit 1
fi

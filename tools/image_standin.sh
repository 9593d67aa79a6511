#!/bin/sh
# Build and measure the camera image (linux/arm64) with podman where neither Docker nor Docker Hub is
# reachable: a stand-in for python:3.11-slim-bookworm is made from Debian's own packages.
#
#   sudo tools/image_standin.sh            # base (both arches), arm64 build, measurements, a run under qemu
#   sudo tools/image_standin.sh base       # only the stand-in bases, imported as $BASE (amd64 and arm64)
#   sudo tools/image_standin.sh build      # only the arm64 build from the Dockerfile
#   sudo tools/image_standin.sh measure    # only the measurements of the built image
#   sudo tools/image_standin.sh run        # vigil --help, check-model and a few frames under qemu
#   sudo BASE=python:3.11-slim-bookworm tools/image_standin.sh build measure   # on the real base
#
# Slow (an arm64 debootstrap and pip under qemu: tens of minutes on 2 cores), so CI does not run it.
# Needs root and Debian's podman, buildah, mmdebstrap, qemu-user-static and binfmt-support (the
# qemu-aarch64 binfmt entry with the F flag, so that RUN steps work in a chroot).
#
# The stand-in, against python:3.11-slim-bookworm (debian:bookworm-slim + Python 3.11 built into
# /usr/local, pip, setuptools, wheel, no .pyc files):
#   - same: Debian bookworm, minbase variant (Essential + apt), the slim image's dpkg excludes (no
#     docs but copyright files, man pages, info, locales), ca-certificates, netbase, tzdata; Python
#     3.11 with pip, setuptools and wheel installed by pip into /usr/local (so the Dockerfile's pip
#     uninstall works); no .pyc files; `python`, `pip` on PATH; ENV PATH and LANG as the image sets.
#   - differs: Python is Debian's python3.11 (3.11.2 plus Debian's patches, in /usr/lib and
#     /usr/bin) rather than 3.11.x from python.org in /usr/local; its shared libraries are Debian's
#     package set (libpython3.11-stdlib's dependencies) rather than the ones docker-library keeps by
#     ldd; EXTERNALLY-MANAGED is deleted (the official image has none); ensurepip has no bundled
#     wheels; site-packages is /usr/local/lib/python3.11/dist-packages (Debian's layout) instead of
#     site-packages.
set -eu

BASE=${BASE:-localhost/py311-standin:bookworm}
IMAGE=${IMAGE:-localhost/vigil:arm64-standin}
OUT=${OUT:-out/standin}
SUITE=bookworm
MIRROR=${MIRROR:-http://deb.debian.org/debian}
NICE="nice -n 19"
# CA bundle pip uses to reach PyPI, in the base's setup and in the build's RUN steps (a bind mount: it
# lands in no layer). The host's, so that a TLS-inspecting proxy the host trusts works too.
CA=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
cd "$(dirname "$0")/.."

say() { printf '== %s\n' "$*"; }
die() { printf 'image_standin: %s\n' "$*" >&2; exit 1; }

check() {
    [ "$(id -u)" = 0 ] || die "run as root (mmdebstrap and podman's chroot isolation)"
    for t in podman mmdebstrap; do command -v $t >/dev/null || die "$t missing: apt-get install podman buildah mmdebstrap qemu-user-static binfmt-support"; done
    if [ "$(uname -m)" != aarch64 ]; then
        [ -e /proc/sys/fs/binfmt_misc/status ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
        grep -q '^flags: .*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null \
            || update-binfmts --enable qemu-aarch64 2>/dev/null \
            || die "no qemu-aarch64 binfmt entry with the F flag: apt-get install qemu-user-static binfmt-support"
    fi
}

# The commands run inside the new root file system, in a clean environment (the host's PIP_*,
# REQUESTS_CA_BUNDLE and the like would point pip at the host's paths).
# Under qemu for arm64.
PATH_IN=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
PYSETUP='set -e
rm -f /usr/lib/python3.11/EXTERNALLY-MANAGED
set -- /usr/share/python-wheels/pip-*.whl
python3 "$1/pip" install --no-cache-dir --no-compile --disable-pip-version-check "pip==24.0" "setuptools==65.5.1" "wheel==0.45.1"
apt-get purge -y -q python3.11-venv python3-pip-whl python3-setuptools-whl
apt-get autoremove -y -q --purge
ln -sf /usr/bin/python3 /usr/local/bin/python
find /usr/lib/python3 /usr/lib/python3.11 /usr/local -depth -name __pycache__ -type d -exec rm -rf {} +
rm -rf /var/lib/apt/lists/* /var/cache/apt/* /root/.cache /tmp/*'

base_one() {  # $1: amd64 or arm64
    arch=$1 tar="$OUT/py311-standin-$1.tar"
    mkdir -p "$OUT"
    say "stand-in base for $arch: $tar"
    $NICE mmdebstrap ${MMDEBSTRAP_OPTS:-} --variant=minbase --arch="$arch" --mode=root --format=tar \
        --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr --aptopt='APT::Install-Recommends "false"' \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/groff/*' \
        --dpkgopt='path-exclude=/usr/share/info/*' --dpkgopt='path-exclude=/usr/share/lintian/*' \
        --dpkgopt='path-exclude=/usr/share/linda/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
        --include=ca-certificates,netbase,tzdata,python3,python3-distutils,python3.11-venv \
        --customize-hook="cp '$CA' \"\$1/tmp/host-ca.crt\"" \
        --customize-hook="chroot \"\$1\" env -i PATH=$PATH_IN HOME=/root LANG=C.UTF-8 PIP_CERT=/tmp/host-ca.crt sh -c '$PYSETUP'" \
        "$SUITE" "$tar" "$MIRROR"
    podman rmi -f "$BASE-$arch" >/dev/null 2>&1 || true
    podman import --arch "$arch" --os linux \
        --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' "$tar" "$BASE-$arch" >/dev/null
}

base() {
    for a in ${ARCHES:-amd64 arm64}; do base_one "$a"; done
    # One name for both: the Dockerfile's build stage asks for $BUILDPLATFORM, the runtime stage arm64.
    podman manifest rm "$BASE" >/dev/null 2>&1 || podman rmi -f "$BASE" >/dev/null 2>&1 || true
    podman manifest create "$BASE" >/dev/null
    podman manifest add "$BASE" "containers-storage:$BASE-amd64" >/dev/null
    podman manifest add "$BASE" "containers-storage:$BASE-arm64" >/dev/null
    for a in amd64 arm64; do
        podman image exists "$BASE-$a" || continue
        printf '%s: %s bytes\n' "$BASE-$a" "$(podman image inspect --format '{{.Size}}' "$BASE-$a")"
    done
}

# podman 4.3 ran the build stage (FROM --platform=$BUILDPLATFORM) on arm64 too, under qemu: slower,
# the same pure-Python wheel.
build() {
    say "podman build --platform linux/arm64 on $BASE"
    mkdir -p "$OUT"
    printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' > "$OUT/pip.conf"
    case $BASE in localhost/*) pull=never ;; *) pull=missing ;; esac
    $NICE podman build --isolation chroot --format docker --platform linux/arm64 --pull=$pull \
        -v "$CA:/etc/ssl/certs/ca-certificates.crt:ro" -v "$PWD/$OUT/pip.conf:/etc/pip.conf:ro" \
        --build-arg PYTHON_IMAGE="$BASE" -t "$IMAGE" .
}

measure() {
    say "layers of $IMAGE (podman history, bytes)"
    podman history --format json "$IMAGE" | python3 -c 'import json, sys
for h in json.load(sys.stdin):
    print(h["size"], h["CreatedBy"][:100], sep="\t")'
    podman image inspect --format 'image size (layer sum, bytes): {{.Size}}' "$IMAGE"
    save="$OUT/vigil-arm64.tar"
    podman save --format docker-archive -o "$save" "$IMAGE"
    printf 'podman save (docker-archive, uncompressed): %s bytes\n' "$(stat -c %s "$save")"
    printf 'gzip -6 of it (what a registry would send): %s bytes\n' "$(gzip -6 -c "$save" | wc -c)"
    rm -f "$save"
    mnt=$(podman image mount "$IMAGE")
    printf 'du of the mounted image (apparent size, bytes): %s\n' "$(du -sb "$mnt" | cut -f1)"
    printf 'du of the mounted image (disk blocks, KiB): %s\n' "$(du -sk "$mnt" | cut -f1)"
    podman image unmount "$IMAGE" >/dev/null
    say "tools/image_size.py, inside the image"
    in_image python - --inside < tools/image_size.py
}

# Run a command in a container of $IMAGE, under qemu through binfmt: chroot into the container's
# mounted file system, with the image's environment, as uid 1000 (USER). Not `podman run`: crun
# cannot set its rlimits inside the unprivileged container this was written in. /sys is left out on
# purpose: with the x86 host's CPU topology there, XNNPACK's cpuinfo crashed `vigil run` under qemu.
in_image() {
    ctr=$(podman create --platform linux/arm64 "$IMAGE")
    mnt=$(podman mount "$ctr")
    mount -t proc proc "$mnt/proc"
    mount --rbind /dev "$mnt/dev"
    [ -z "${SAMPLES:-}" ] || { mkdir -p "$mnt/samples"; mount --bind -o ro "$SAMPLES" "$mnt/samples"; }
    env_args=$(podman image inspect --format '{{range .Config.Env}}{{.}} {{end}}' "$IMAGE")
    rc=0
    # shellcheck disable=SC2086  # the image's ENV words (no spaces in their values)
    chroot --userspec=1000:1000 "$mnt" env -i HOME=/home/vigil $env_args sh -c 'cd /home/vigil && exec "$@"' sh "$@" || rc=$?
    [ -z "${SAMPLES:-}" ] || umount "$mnt/samples"
    umount -R "$mnt/dev"; umount "$mnt/proc"
    podman umount "$ctr" >/dev/null; podman rm "$ctr" >/dev/null
    return $rc
}

run() {
    say "under qemu: vigil --help, vigil check-model, a few frames of vigil run"
    in_image vigil --help | head -20
    in_image vigil check-model /models/nanodet_int8_pertensor.tflite
    SAMPLES=$PWD/samples in_image vigil run --no-progress --source /samples/vtest.mp4 --max-frames 5 \
        --jsonl - --set api.enabled=false
}

check
[ $# -gt 0 ] || set -- base build measure run
for step in "$@"; do
    case $step in
        base|build|measure|run) $step ;;
        *) die "unknown step '$step' (base, build, measure, run; none means all four)" ;;
    esac
done

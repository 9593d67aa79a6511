"""Check a `docker save` archive before it goes into the camera package, with no Docker engine.

    python tools/image_archive.py verify ARCHIVE --ref REPO:TAG --id sha256:… [--arch arm64]
    python tools/image_archive.py id ARCHIVE --ref REPO:TAG

`verify` checks that the archive holds REPO:TAG, that the image's id (the sha256 of its config,
which is what `docker image inspect` shows after `docker load` and what the config's layer
digests hang off) is the pinned one, that every layer in the archive has the digest the config
names (so no layer was swapped), and the platform. `id` prints the id. Exit 0 when all is well,
1 with one line saying what is wrong, 2 on bad usage.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sys
import tarfile
from dataclasses import dataclass
from typing import IO

_CHUNK = 1 << 20


class ArchiveError(Exception):
    """The archive is not the image it should be."""


@dataclass(frozen=True)
class Image:
    """One image of an archive: its id, tags, platform and layer digests."""

    id: str
    tags: tuple[str, ...]
    os: str
    architecture: str
    diff_ids: tuple[str, ...]


def _sha256(stream: IO[bytes]) -> str:
    h = hashlib.sha256()
    while block := stream.read(_CHUNK):
        h.update(block)
    return "sha256:" + h.hexdigest()


def _member(tar: tarfile.TarFile, name: str) -> IO[bytes]:
    try:
        f = tar.extractfile(name)
    except KeyError:
        f = None
    if f is None:
        raise ArchiveError(f"{name} named by manifest.json is not in the archive")
    return f


def _layer_digest(tar: tarfile.TarFile, name: str) -> str:
    """Digest of the uncompressed layer (the config's diff_id), whether stored plain or gzipped."""
    with _member(tar, name) as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    with _member(tar, name) as f:
        if gzipped:
            with gzip.GzipFile(fileobj=f) as g:
                return _sha256(g)
        return _sha256(f)


def read_image(path: str, ref: str, check_layers: bool = True) -> Image:
    """The image tagged `ref` in the archive at `path`; its layers checked against its config."""
    try:
        tar = tarfile.open(path)
    except (OSError, tarfile.TarError) as e:
        raise ArchiveError(f"{path}: not a readable image archive ({e})") from None
    with tar:
        try:
            entries = json.load(_member(tar, "manifest.json"))
        except json.JSONDecodeError as e:
            raise ArchiveError(f"{path}: manifest.json is not JSON ({e})") from None
        entry = next((e for e in entries if ref in (e.get("RepoTags") or [])), None)
        if entry is None:
            tags = sorted(t for e in entries for t in e.get("RepoTags") or [])
            raise ArchiveError(f"{path} holds no image tagged {ref} (it has: {', '.join(tags) or 'no tags'})")
        raw = _member(tar, entry["Config"]).read()
        config = json.loads(raw)
        diff_ids = tuple((config.get("rootfs") or {}).get("diff_ids") or [])
        layers = entry.get("Layers") or []
        if len(layers) != len(diff_ids):
            raise ArchiveError(f"{ref}: the archive has {len(layers)} layers, its config names {len(diff_ids)}")
        if check_layers:
            for n, (layer, want) in enumerate(zip(layers, diff_ids)):
                got = _layer_digest(tar, layer)
                if got != want:
                    raise ArchiveError(f"{ref}: layer {n} ({layer}) is {got}, the config says {want}")
        return Image(
            id="sha256:" + hashlib.sha256(raw).hexdigest(),
            tags=tuple(entry.get("RepoTags") or ()),
            os=config.get("os", ""),
            architecture=config.get("architecture", ""),
            diff_ids=diff_ids,
        )


def verify(path: str, ref: str, image_id: str, arch: str | None = None) -> Image:
    """The image tagged `ref` if it is the pinned `image_id` (and built for `arch`); else ArchiveError."""
    if not image_id.startswith("sha256:") or len(image_id) != 71:
        raise ArchiveError(f"no pinned image id for {ref} (got {image_id!r}; want sha256:<64 hex digits>)")
    image = read_image(path, ref)
    if image.id != image_id:
        raise ArchiveError(f"{path}: {ref} is {image.id}, the pinned image is {image_id}")
    if arch and (image.os, image.architecture) != ("linux", arch):
        raise ArchiveError(f"{path}: {ref} is built for {image.os}/{image.architecture}, not linux/{arch}")
    return image


def main(argv: list[str] | None = None) -> int:
    """Command line: verify or id (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verify", help="the archive holds the pinned image")
    v.add_argument("archive")
    v.add_argument("--ref", required=True)
    v.add_argument("--id", required=True, dest="image_id")
    v.add_argument("--arch", help="e.g. arm64 for the camera")
    i = sub.add_parser("id", help="print the id of the image tagged --ref")
    i.add_argument("archive")
    i.add_argument("--ref", required=True)
    i.add_argument("--arch")
    args = parser.parse_args(argv)
    try:
        if args.command == "verify":
            image = verify(args.archive, args.ref, args.image_id, args.arch)
            print(f"{args.archive}: {args.ref} is {image.id} ({image.os}/{image.architecture}, "
                  f"{len(image.diff_ids)} layers checked)")
        else:
            image = read_image(args.archive, args.ref)
            if args.arch and (image.os, image.architecture) != ("linux", args.arch):
                raise ArchiveError(f"{args.archive}: {args.ref} is built for {image.os}/{image.architecture}, "
                                   f"not linux/{args.arch}")
            print(image.id)
    except (ArchiveError, KeyError, ValueError) as e:
        print(f"image archive: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

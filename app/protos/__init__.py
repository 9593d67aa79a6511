"""Vigil's own .proto files for ACAP Runtime and the Python modules generated from them.

The generated `*_pb2.py` / `*_pb2_grpc.py` modules are never committed. They are built
with grpcio-tools either into this package (`python -m app.protos`, run by `make protos`
and by the Docker build, so the image needs no grpcio-tools) or, on first use in a
checkout, into a cache directory keyed by the hash of the .proto sources. A stamp file
holding that hash tells whether in-package modules are current.
"""
from __future__ import annotations

import hashlib
import importlib
import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path
from types import SimpleNamespace

from app.errors import VigilError

log = logging.getLogger(__name__)

PROTO_DIR = Path(__file__).resolve().parent
# The include root: imports in the .proto files are written "app/protos/x.proto", so the
# generated modules import each other as `app.protos.x_pb2` wherever they are written.
INCLUDE_ROOT = PROTO_DIR.parents[1]
PROTO_NAMES = ("tensorflow", "tensorflow_serving", "videocapture", "keyvaluestore")
STAMP = "_generated.sha256"
_lock = threading.Lock()
_loaded: SimpleNamespace | None = None


class ProtoError(VigilError):
    """The gRPC modules are missing and cannot be generated here."""

    exit_code = 3


def sources() -> list[Path]:
    """The .proto files, in a fixed order."""
    return [PROTO_DIR / f"{name}.proto" for name in PROTO_NAMES]


def digest() -> str:
    """sha256 over the names and contents of the .proto files."""
    h = hashlib.sha256()
    for p in sources():
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def generate(out_root: Path) -> Path:
    """Run grpcio-tools' protoc for every .proto; modules land in out_root/app/protos. Returns that dir."""
    try:  # build-time only (make protos, the Docker build, a checkout's first use): not in the image
        import grpc_tools
        from grpc_tools import protoc
    except ImportError:
        raise ProtoError(
            "the ACAP Runtime gRPC modules are not built and grpcio-tools is not installed: "
            "pip install grpcio-tools (or run `make protos` where it is)"
        ) from None
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    out_root.mkdir(parents=True, exist_ok=True)
    rel = [str(p.relative_to(INCLUDE_ROOT)) for p in sources()]
    args = [
        "grpc_tools.protoc", f"-I{INCLUDE_ROOT}", f"-I{well_known}",
        f"--python_out={out_root}", f"--grpc_python_out={out_root}", *rel,
    ]
    if protoc.main(args) != 0:
        raise ProtoError(f"protoc failed on {', '.join(rel)}")
    out_dir = out_root / "app" / "protos"
    (out_dir / STAMP).write_text(digest() + "\n")
    return out_dir


def build_in_package() -> Path:
    """Generate the modules next to the .proto files (for images and installs)."""
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = generate(Path(tmp))
        for f in out_dir.iterdir():
            if f.name.endswith((".py", STAMP)):
                (PROTO_DIR / f.name).write_bytes(f.read_bytes())
    return PROTO_DIR


def _current(directory: Path, want: str) -> bool:
    stamp = directory / STAMP
    return stamp.is_file() and stamp.read_text().strip() == want


def cache_dir() -> Path:
    """Where modules generated at first use are kept ($XDG_CACHE_HOME/vigil/protos)."""
    base = os.environ.get("VIGIL_PROTO_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vigil" / "protos"
    return Path(base)


def _locate() -> Path:
    want = digest()
    if _current(PROTO_DIR, want):
        return PROTO_DIR
    cached = cache_dir() / want[:16] / "app" / "protos"
    if not _current(cached, want):
        log.info("generating ACAP Runtime gRPC modules into %s", cached.parents[1])
        root = cached.parents[1]
        root.parent.mkdir(parents=True, exist_ok=True)
        # build beside the target and rename, so concurrent first uses never see half a tree
        tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=".tmp-"))
        generate(tmp)
        try:
            os.rename(tmp, root)
        except OSError:  # another process won the race; its tree is as good as ours
            shutil.rmtree(tmp, ignore_errors=True)
    return cached


def load() -> SimpleNamespace:
    """The generated modules as attributes: tensorflow_pb2, tensorflow_serving_pb2(_grpc), videocapture_pb2(_grpc), …"""
    global _loaded
    with _lock:
        if _loaded is None:
            directory = _locate()
            if directory != PROTO_DIR and str(directory) not in __path__:
                __path__.append(str(directory))  # noqa: F821 - a package's own __path__
            mods = {}
            for name in PROTO_NAMES:
                mods[f"{name}_pb2"] = importlib.import_module(f"{__name__}.{name}_pb2")
                try:
                    mods[f"{name}_pb2_grpc"] = importlib.import_module(f"{__name__}.{name}_pb2_grpc")
                except ModuleNotFoundError:
                    pass
            _loaded = SimpleNamespace(**mods)
        return _loaded

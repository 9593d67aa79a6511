"""Where the camera image's bytes go: installed size per Python package, and the total.

    python tools/image_size.py --image vigil:0.1.0 --engine podman   # a built image
    python tools/image_size.py --wheels                               # no engine: arm64 wheels

--image runs this file inside the image (`ENGINE run --rm -i --entrypoint python IMAGE -`) and
prints the whole file system's size (uncompressed, as `docker image ls` counts it, less /proc,
/sys and /dev), Python's site-packages per distribution, and the rest. --wheels needs no engine:
it downloads the linux/arm64 wheels of the runtime dependencies in pyproject.toml for CPython
3.11 (at the versions image-constraints.txt pins, as the Dockerfile installs them), installs them
into a temporary folder as pip would in the image (.pyc files included) and
prints the same per-distribution table; the base image is not in that number.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(globals().get("__file__", ".")).resolve().parent.parent  # no __file__ when piped into the image
# manylinux tags a Debian bookworm (glibc 2.36) arm64 image can install
ARM64_PLATFORMS = [f"manylinux_2_{v}_aarch64" for v in (17, 26, 27, 28, 31, 34, 35, 36)] + ["manylinux2014_aarch64"]
MB = 1e6


def tree_size(top: str, skip: tuple[str, ...] = ()) -> int:
    """Bytes of the regular files under top (hard links once), not descending into skip."""
    total, seen = 0, set()
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if os.path.join(folder, d) not in skip]
        for name in files:
            try:
                st = os.lstat(os.path.join(folder, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


def per_distribution(site: str) -> list[tuple[str, str, int]]:
    """(name, version, bytes of the files its RECORD lists) for each distribution in site."""
    from importlib.metadata import distributions

    rows = []
    for dist in distributions(path=[site]):
        size = 0
        for f in dist.files or []:
            p = Path(dist.locate_file(f))
            if p.is_file():
                size += p.stat().st_size
        rows.append((dist.metadata["Name"], dist.version, size))
    return sorted(rows, key=lambda r: -r[2])


def tests_size(site: str) -> int:
    """Bytes in the packages' own tests/ folders."""
    total = 0
    for folder, dirs, _ in os.walk(site):
        if "tests" in dirs:
            total += tree_size(os.path.join(folder, "tests"))
            dirs.remove("tests")
    return total


def print_table(rows: list[tuple[str, str, int]], site_bytes: int, total: int | None, tests: int) -> None:
    width = max([len(r[0]) for r in rows] + [12])
    print(f"{'package':<{width}}  {'version':<12} {'MB':>8}")
    for name, version, size in rows:
        print(f"{name:<{width}}  {version:<12} {size / MB:>8.1f}")
    listed = sum(r[2] for r in rows)
    print(f"{'site-packages, all':<{width}}  {'':<12} {site_bytes / MB:>8.1f}"
          f"   ({(site_bytes - listed) / MB:.1f} not in any RECORD, {tests / MB:.1f} in tests/ folders,"
          " which the Dockerfile deletes)")
    if total is not None:
        print(f"{'rest of the image':<{width}}  {'':<12} {(total - site_bytes) / MB:>8.1f}"
              "   (Debian, Python, models, config)")
        print(f"{'image, uncompressed':<{width}}  {'':<12} {total / MB:>8.1f}")


def inside() -> int:
    """Run in the image: the table for its own file system."""
    import sysconfig

    site = sysconfig.get_path("purelib")
    total = tree_size("/", skip=("/proc", "/sys", "/dev"))
    print_table(per_distribution(site), tree_size(site), total, tests_size(site))
    return 0


def runtime_requirements() -> list[str]:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project["dependencies"] + project["optional-dependencies"]["camera"]  # the image installs [camera]


def from_wheels() -> int:
    """Download and install the arm64 wheels into a temporary folder; the table for that."""
    tags = [a for p in ARM64_PLATFORMS for a in ("--platform", p)]
    common = ["--only-binary=:all:", *tags, "--python-version", "3.11", "--implementation", "cp",
              "--abi", "cp311", "--abi", "abi3", "--abi", "none"]
    with tempfile.TemporaryDirectory() as tmp:
        wheels, site = Path(tmp) / "wheels", Path(tmp) / "site"
        pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
        subprocess.run([*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT)],
                       check=True)
        subprocess.run([*pip, "download", "-q", *common, "-d", str(wheels), "-c", str(ROOT / "image-constraints.txt"),
                        *runtime_requirements()], check=True)
        subprocess.run([*pip, "install", "-q", "--no-deps", "--no-index", "--target", str(site), *common,
                        *map(str, sorted(wheels.glob("*.whl")))], check=True)
        print("linux/arm64 wheels of pyproject.toml's runtime dependencies, installed for CPython 3.11 "
              "(base image not included)")
        print_table(per_distribution(str(site)), tree_size(str(site)), None, tests_size(str(site)))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command line: --image with --engine, --wheels, or --inside (what --image runs in the image)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--image", help="a built image, e.g. vigil:0.1.0")
    mode.add_argument("--wheels", action="store_true", help="no engine: the arm64 wheels only")
    mode.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--engine", default="docker", help="docker or podman")
    args = ap.parse_args(argv)
    if args.inside:
        return inside()
    if args.wheels:
        return from_wheels()
    script = Path(__file__).read_text().split('\nif __name__ == "__main__":')[0] + "\nsys.exit(inside())\n"
    cmd = [args.engine, "run", "--rm", "-i", "--user", "0", "--entrypoint", "python", args.image, "-"]
    return subprocess.run(cmd, input=script, text=True).returncode


if __name__ == "__main__":
    sys.exit(main())

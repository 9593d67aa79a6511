"""tools/image_size.py (make image-size): per-package sizes from RECORD files, without an engine."""
from __future__ import annotations

import subprocess

from tools import image_size


def fake_site(tmp_path):
    site = tmp_path / "site"
    (site / "pkg" / "tests").mkdir(parents=True)
    (site / "pkg" / "__init__.py").write_bytes(b"x" * 1000)
    (site / "pkg" / "tests" / "test_a.py").write_bytes(b"y" * 300)
    info = site / "pkg-1.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pkg\nVersion: 1.2\n")
    (info / "RECORD").write_text("pkg/__init__.py,,\npkg/tests/test_a.py,,\npkg-1.2.dist-info/METADATA,,\n"
                                 "pkg-1.2.dist-info/RECORD,,\n")
    return site


def test_sizes_per_distribution_come_from_its_record_and_tests_folders_are_counted(tmp_path, capsys):
    site = fake_site(tmp_path)
    (site / "stray.bin").write_bytes(b"z" * 500)
    rows = image_size.per_distribution(str(site))
    meta = (site / "pkg-1.2.dist-info" / "METADATA").stat().st_size
    record = (site / "pkg-1.2.dist-info" / "RECORD").stat().st_size
    assert rows == [("pkg", "1.2", 1300 + meta + record)]
    assert image_size.tests_size(str(site)) == 300
    image_size.print_table(rows, image_size.tree_size(str(site)), 10_000_000, image_size.tests_size(str(site)))
    out = capsys.readouterr().out
    assert "pkg" in out and "0.0 not in any RECORD" in out and "image, uncompressed" in out


def test_image_mode_runs_this_file_inside_the_image_as_root(monkeypatch):
    seen = {}

    def fake_run(cmd, input=None, text=None):
        seen.update(cmd=cmd, script=input)
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(image_size.subprocess, "run", fake_run)
    assert image_size.main(["--image", "vigil:0.1.0", "--engine", "podman"]) == 0
    assert seen["cmd"] == ["podman", "run", "--rm", "-i", "--user", "0", "--entrypoint", "python", "vigil:0.1.0", "-"]
    assert seen["script"].rstrip().endswith("sys.exit(inside())") and "def main(" in seen["script"]
    compile(seen["script"], "<image>", "exec")
    assert not any(ln.startswith("if __name__") for ln in seen["script"].splitlines())  # it would parse argv

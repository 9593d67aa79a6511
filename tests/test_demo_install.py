"""`make demo` installs the runtime only; `make test` (and `make venv`) everything the tests need, also
after a demo-only install; a laptop install without the camera extra says what is missing."""
from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT


def make_n(target: str, venv) -> str:
    return subprocess.run(["make", "-n", "--no-print-directory", target, f"VENV={venv}"], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout


def test_demo_installs_the_runtime_without_extras_and_test_adds_them(tmp_path):
    venv = tmp_path / "venv"
    demo = make_n("demo", venv)
    assert "pip install --quiet --no-compile -e ." in demo and ".[" not in demo
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    (venv / ".installed-runtime").touch()  # a venv `make demo` made
    assert "pip install" not in make_n("demo", venv)
    test = make_n("test", venv)
    assert "pip install --quiet -e '.[camera,test,bench,quantize]'" in test
    (venv / ".installed").touch()  # then one `make test` made: the demo takes it as it is
    assert "pip install" not in make_n("demo", venv) and "pip install -e" not in make_n("test", venv)
    os.utime(venv / ".installed", (1, 1))  # older than pyproject.toml: the demo brings everything up to date,
    demo = make_n("demo", venv)  # never a runtime-only install over a full venv
    assert "pip install --quiet -e '.[camera,test,bench,quantize]'" in demo and "--no-compile -e ." not in demo


def test_without_the_camera_extra_acap_runtime_is_one_line():
    code = ("import sys; sys.modules['grpc'] = None  # as in a venv `make demo` made\n"
            "from app.cli import main; sys.exit(main(sys.argv[1:]))")
    for argv in (["emulator"], ["run", "--source", "acap-runtime", "--max-frames", "1", "--no-progress"]):
        p = subprocess.run([sys.executable, "-c", code, *argv], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert p.returncode == 2, p.stderr
        lines = [ln for ln in p.stderr.splitlines() if ln.startswith("vigil:")]
        assert len(lines) == 1 and "pip install -e '.[camera]'" in lines[0] and "Traceback" not in p.stderr

"""The camera package's shell scripts (acap/) run by real shells against a stub `docker` on PATH.

The stub records every call and keeps the "loaded" images in a folder, so install, start, stop and
uninstall are checked without a camera or a container engine; tools/image_archive.py (the bundle
step's check of an image archive) is checked on archives made here.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tools import image_archive

ACAP_DIR = ROOT / "acap"
VIGIL_REF = "vigil:0.1.0"
RUNTIME_REF = "axisecp/acap-runtime:2.0.0-aarch64-containerized"
VIGIL_ID = "sha256:" + "1" * 64
RUNTIME_ID = "sha256:" + "2" * 64

STUB = r"""#!/bin/bash
# stub docker: one line per call in $STUB_STATE/calls; images are files in $STUB_STATE/images
echo "$*" >> "$STUB_STATE/calls"
key() { printf '%s' "$1" | tr '/:' '__'; }
case "$1 $2" in
  "load -i")
    [ -f "$3" ] || { echo "open $3: no such file or directory" >&2; exit 1; }
    # a stub archive is lines of "<ref> <id>"; anything else is a corrupt archive
    grep -qE '^[^ ]+ sha256:' "$3" || { echo "unexpected EOF" >&2; exit 1; }
    while read -r ref id; do
      printf '%s' "$id" > "$STUB_STATE/images/$(key "$ref")"; echo "Loaded image: $ref"
    done < "$3" ;;
  "image inspect")
    ref="${@: -1}"
    [ -f "$STUB_STATE/images/$(key "$ref")" ] || { echo "Error: No such image: $ref" >&2; exit 1; }
    cat "$STUB_STATE/images/$(key "$ref")"; echo ;;
  "image rm")
    rm "$STUB_STATE/images/$(key "$3")" 2>/dev/null || { echo "Error: No such image: $3" >&2; exit 1; } ;;
  "compose "*) ;;
  *) echo "stub docker: unexpected call: $*" >&2; exit 99 ;;
esac
"""

# the system's sh (dash on Debian, often busybox or bash elsewhere) and bash, each once
SHELLS = list({os.path.realpath(shutil.which(s)): s for s in ("sh", "bash") if shutil.which(s)}.values())


class Camera:
    """An installed package folder, a stub docker on PATH and what the stub was asked."""

    def __init__(self, root: Path, shell: str):
        self.shell = shell
        self.pkg = root / "pkg"
        self.state = root / "docker"
        (self.state / "images").mkdir(parents=True)
        (self.state / "calls").touch()
        bin_dir = root / "bin"
        bin_dir.mkdir()
        (bin_dir / "docker").write_text(STUB)
        (bin_dir / "docker").chmod(0o755)
        self.pkg.mkdir()
        for name in ("vigil", "check-images", "postinstall.sh", "preuninstall.sh", "env.config"):
            shutil.copy2(ACAP_DIR / name, self.pkg / name)
        config = (self.pkg / "env.config").read_text()
        config = re.sub(r"(?m)^VIGIL_IMAGE_ID=.*$", f"VIGIL_IMAGE_ID={VIGIL_ID}", config)
        (self.pkg / "env.config").write_text(config)
        self.env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "STUB_STATE": str(self.state)}

    def archive(self, name: str, ref: str, image_id: str) -> None:
        (self.pkg / name).write_text(f"{ref} {image_id}\n")

    def load(self, ref: str, image_id: str) -> None:
        (self.state / "images" / ref.replace("/", "_").replace(":", "_")).write_text(image_id)

    def has(self, ref: str) -> bool:
        return (self.state / "images" / ref.replace("/", "_").replace(":", "_")).exists()

    def calls(self) -> list[str]:
        return (self.state / "calls").read_text().splitlines()

    def run(self, script: str) -> subprocess.CompletedProcess:
        return subprocess.run([self.shell, str(self.pkg / script)], env=self.env, cwd="/", capture_output=True,
                              text=True, timeout=60)

    def start(self, script: str = "vigil") -> subprocess.Popen:
        """The script running in the background; its stderr lines collect in self.log."""
        proc = subprocess.Popen([self.shell, str(self.pkg / script)], env=self.env, cwd="/", text=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.log: list[str] = []
        self.reader = threading.Thread(target=lambda: self.log.extend(iter(proc.stderr.readline, "")), daemon=True)
        self.reader.start()
        return proc

    def wait_for_log(self, text: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in ln for ln in self.log):
            assert time.monotonic() < deadline, f"no log line with {text!r}; log: {self.log}"
            time.sleep(0.02)

    def wait_for_call(self, pattern: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not any(re.search(pattern, c) for c in self.calls()):
            assert time.monotonic() < deadline, f"no call matching {pattern!r}; calls: {self.calls()}"
            time.sleep(0.02)


@pytest.fixture(params=SHELLS)
def camera(tmp_path, request) -> Camera:
    return Camera(tmp_path, request.param)


def stop(camera: Camera, proc: subprocess.Popen) -> tuple[int, str]:
    """SIGTERM, as the camera sends when the app is stopped; (exit code, stderr)."""
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=20)
    camera.reader.join(timeout=20)
    return code, "".join(camera.log)


INSPECT_VIGIL = f"image inspect --format {{{{.Id}}}} {VIGIL_REF}"
INSPECT_RUNTIME = f"image inspect --format {{{{.Id}}}} {RUNTIME_REF}"


# -- postinstall.sh ---------------------------------------------------------------------------------
def test_postinstall_loads_both_bundled_images_and_checks_they_are_there(camera):
    camera.archive("vigil-image.tar", VIGIL_REF, VIGIL_ID)
    camera.archive("acap-runtime-image.tar", RUNTIME_REF, RUNTIME_ID)
    r = camera.run("postinstall.sh")
    assert r.returncode == 0, r.stderr
    assert camera.calls() == ["load -i vigil-image.tar", "load -i acap-runtime-image.tar", INSPECT_VIGIL,
                              INSPECT_RUNTIME]
    assert camera.has(VIGIL_REF) and camera.has(RUNTIME_REF)
    assert not any(c.startswith(("pull", "compose")) for c in camera.calls())  # nothing from a registry


def test_postinstall_fails_naming_the_acap_runtime_archive_when_the_package_lacks_it(camera):
    camera.archive("vigil-image.tar", VIGIL_REF, VIGIL_ID)
    r = camera.run("postinstall.sh")
    assert r.returncode == 1
    assert "acap-runtime-image.tar is not in the package" in r.stderr
    assert f"image {RUNTIME_REF} is missing" in r.stderr
    assert camera.calls() == ["load -i vigil-image.tar", INSPECT_VIGIL, INSPECT_RUNTIME]


def test_postinstall_fails_when_docker_cannot_load_an_archive(camera):
    camera.archive("vigil-image.tar", VIGIL_REF, VIGIL_ID)
    (camera.pkg / "acap-runtime-image.tar").write_text("truncated")
    r = camera.run("postinstall.sh")
    assert r.returncode == 1
    assert "docker load -i acap-runtime-image.tar failed" in r.stderr and RUNTIME_REF in r.stderr


# -- check-images -------------------------------------------------------------------------------------
@pytest.mark.parametrize("present, code", [((VIGIL_REF, RUNTIME_REF), 0), ((RUNTIME_REF,), 1), ((VIGIL_REF,), 2),
                                           ((), 3)])
def test_check_images_exit_code_says_which_image_is_missing(camera, present, code):
    for ref in present:
        camera.load(ref, VIGIL_ID if ref == VIGIL_REF else RUNTIME_ID)
    r = camera.run("check-images")
    assert r.returncode == code
    for ref in (VIGIL_REF, RUNTIME_REF):
        assert (f"image {ref} is missing" in r.stderr) == (ref not in present)


def test_check_images_warns_but_passes_when_an_image_is_not_the_one_shipped(camera):
    camera.load(VIGIL_REF, "sha256:" + "9" * 64)
    camera.load(RUNTIME_REF, RUNTIME_ID)
    r = camera.run("check-images")
    assert r.returncode == 0
    assert f"WARNING: Vigil's image {VIGIL_REF} is sha256:{'9' * 64}, the package carries {VIGIL_ID}" in r.stderr


# -- the wrapper (acap/vigil) -------------------------------------------------------------------------
def test_wrapper_checks_images_runs_compose_and_takes_it_down_on_sigterm(camera):
    camera.load(VIGIL_REF, VIGIL_ID)
    camera.load(RUNTIME_REF, RUNTIME_ID)
    proc = camera.start()
    camera.wait_for_call(r"^compose .* up")
    code, err = stop(camera, proc)
    assert code == 0, err
    assert camera.calls() == [INSPECT_VIGIL, INSPECT_RUNTIME, "compose --env-file ./env.config up --remove-orphans",
                              "compose --env-file ./env.config down"]


def test_wrapper_without_acap_runtime_image_starts_vigil_alone_and_logs_what_is_missing(camera):
    camera.load(VIGIL_REF, VIGIL_ID)
    proc = camera.start()
    camera.wait_for_call(r"^compose .* up --no-deps vigil$")
    camera.wait_for_log("starting without the inference server")
    code, err = stop(camera, proc)
    assert code == 0
    assert f"image {RUNTIME_REF} is missing" in err and "starting without the inference server" in err
    ups = [c for c in camera.calls() if " up" in c]
    assert ups == ["compose --env-file ./env.config up --no-deps acap_dl-models",
                   "compose --env-file ./env.config up --no-deps vigil"]


def test_wrapper_without_vigil_image_starts_nothing_and_says_so(camera):
    camera.load(RUNTIME_REF, RUNTIME_ID)
    proc = camera.start()
    camera.wait_for_log("not starting")  # then it idles until the camera stops it
    code, err = stop(camera, proc)
    assert code == 0
    assert f"image {VIGIL_REF} is missing" in err and "not starting" in err
    assert not any(" up" in c for c in camera.calls())


# -- preuninstall.sh ----------------------------------------------------------------------------------
def test_preuninstall_removes_containers_volumes_and_both_images(camera):
    camera.load(VIGIL_REF, VIGIL_ID)
    camera.load(RUNTIME_REF, RUNTIME_ID)
    r = camera.run("preuninstall.sh")
    assert r.returncode == 0, r.stderr
    assert camera.calls() == ["compose --env-file ./env.config down --volumes", f"image rm {VIGIL_REF}",
                              f"image rm {RUNTIME_REF}"]
    assert not camera.has(VIGIL_REF) and not camera.has(RUNTIME_REF)


def test_preuninstall_succeeds_when_the_images_are_already_gone(camera):
    r = camera.run("preuninstall.sh")
    assert r.returncode == 0
    assert camera.calls()[-2:] == [f"image rm {VIGIL_REF}", f"image rm {RUNTIME_REF}"]


# -- what the scripts rely on ---------------------------------------------------------------------------
def test_camera_compose_never_pulls_and_gives_vigil_the_socket_group():
    doc = yaml.safe_load((ROOT / "docker-compose.acap.yml").read_text())
    for name, svc in doc["services"].items():
        assert svc.get("pull_policy") == "never", name
    assert doc["services"]["vigil"]["group_add"] == ["0"]  # ACAP Runtime's socket is root:root 0660
    assert "user" not in doc["services"]["inference-server"]  # so it runs as its image's root


def test_image_user_and_group_ids_agree():
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    run = next(ln for ln in text.splitlines() if ln.startswith("RUN") and "useradd" in ln)
    gid = re.search(r"groupadd --gid (\d+) vigil", run).group(1)
    uid = re.search(r"useradd --uid (\d+) --gid (\d+) ", run)
    user = re.findall(r"(?m)^USER (\S+)", text)[-1]
    assert uid.group(1) == uid.group(2) == gid and user == f"{uid.group(1)}:{gid}"
    assert "--system" not in run  # a system group would get an id below 1000


def test_package_env_config_names_both_images_and_their_pins():
    env = dict(ln.split("=", 1) for ln in (ACAP_DIR / "env.config").read_text().splitlines()
               if ln and not ln.startswith("#"))
    assert env["INFERENCE_SERVER_IMAGE"] == RUNTIME_REF
    assert {"VIGIL_IMAGE", "VIGIL_IMAGE_ID", "INFERENCE_SERVER_IMAGE_ID"} <= set(env)


# -- tools/image_archive.py ---------------------------------------------------------------------------
def _tar_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_archive(path: Path, ref: str, arch: str = "arm64", gzip_layers: bool = False,
                 tamper: bool = False) -> str:
    """A `docker save`-style archive of a two-layer image; returns the image id."""
    layers = [_tar_bytes({"etc/hello": b"hello\n"}), _tar_bytes({"usr/bin/app": b"#!/bin/sh\n"})]
    config = json.dumps({"architecture": arch, "os": "linux", "rootfs": {
        "type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(x).hexdigest() for x in layers]}}).encode()
    digest = hashlib.sha256(config).hexdigest()
    stored = [gzip.compress(x) if gzip_layers else x for x in layers]
    if tamper:
        stored[1] = _tar_bytes({"usr/bin/app": b"#!/bin/sh\nevil\n"})
    files = {f"blobs/sha256/{digest}": config}
    names = []
    for x in stored:
        name = f"blobs/sha256/{hashlib.sha256(x).hexdigest()}"
        files[name] = x
        names.append(name)
    files["manifest.json"] = json.dumps([{"Config": f"blobs/sha256/{digest}", "RepoTags": [ref],
                                          "Layers": names}]).encode()
    path.write_bytes(_tar_bytes(files))
    return "sha256:" + digest


@pytest.mark.parametrize("gzip_layers", [False, True])
def test_image_archive_verify_accepts_the_pinned_image(tmp_path, gzip_layers, capsys):
    image_id = make_archive(tmp_path / "a.tar", RUNTIME_REF, gzip_layers=gzip_layers)
    assert image_archive.main(["verify", str(tmp_path / "a.tar"), "--ref", RUNTIME_REF, "--id", image_id,
                               "--arch", "arm64"]) == 0
    assert "2 layers checked" in capsys.readouterr().out
    assert image_archive.main(["id", str(tmp_path / "a.tar"), "--ref", RUNTIME_REF]) == 0
    assert capsys.readouterr().out.strip() == image_id


@pytest.mark.parametrize("case, message", [
    ("other id", "the pinned image is"),
    ("no pin", "no pinned image id"),
    ("amd64", "built for linux/amd64, not linux/arm64"),
    ("other tag", "holds no image tagged"),
    ("tampered layer", "layer 1"),
    ("not a tar", "not a readable image archive"),
])
def test_image_archive_verify_refuses_anything_but_the_pinned_image(tmp_path, case, message, capsys):
    path = tmp_path / "a.tar"
    image_id = make_archive(path, "other:1" if case == "other tag" else RUNTIME_REF,
                            arch="amd64" if case == "amd64" else "arm64", tamper=case == "tampered layer")
    if case == "not a tar":
        path.write_text("not a tar")
    pin = {"other id": "sha256:" + "0" * 64, "no pin": ""}.get(case, image_id)
    assert image_archive.main(["verify", str(path), "--ref", RUNTIME_REF, "--id", pin, "--arch", "arm64"]) == 1
    assert message in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_acap_verifies_the_runtime_archive_before_building_and_bundles_both_images():
    r = subprocess.run(["make", "-C", str(ROOT), "acap"], capture_output=True, text=True)
    assert r.returncode != 0 and "usage: make acap ACAP_RUNTIME_TAR=" in r.stdout
    plan = subprocess.run(["make", "-n", "-C", str(ROOT), "acap", "ACAP_RUNTIME_TAR=/x/rt.tar"], capture_output=True,
                          text=True).stdout.splitlines()
    verify = next(i for i, ln in enumerate(plan) if "image_archive.py verify /x/rt.tar" in ln)
    build = next(i for i, ln in enumerate(plan) if "docker buildx build" in ln)
    assert verify < build and f"--ref {RUNTIME_REF}" in plan[verify] and "--arch arm64" in plan[verify]
    assert any("cp /x/rt.tar out/acap/acap-runtime-image.tar" in ln for ln in plan)
    assert any("acap/check-images" in ln for ln in plan if ln.startswith("cp "))
    build_line = next(ln for ln in plan if "acap-build ." in ln)
    # acap-build packs the manifest's own files; everything else the scripts use must be named
    added = set(re.findall(r"-a (\S+?)'?(?:\s|$)", build_line))
    assert added == {"vigil-image.tar", "acap-runtime-image.tar", "docker-compose.yml", "env.config", "check-images"}
    assert any("VIGIL_IMAGE_ID=" in ln and "image_archive.py id" in ln for ln in plan)
    pull = subprocess.run(["make", "-n", "-C", str(ROOT), "acap-runtime-archive"], capture_output=True,
                          text=True).stdout
    assert f"docker pull --platform linux/arm64 {RUNTIME_REF}" in pull and f"--ref {RUNTIME_REF}" in pull
    assert "INFERENCE_SERVER_IMAGE_ID" in pull  # with no pin it says which id to check and commit

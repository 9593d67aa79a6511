"""The run options shared by `vigil run` and `vigil bench`, and how they become one validated Config:
defaults < YAML file < VIGIL_… environment < camera parameters < command-line flags."""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path

from app.config import Config, check_labels, load_config, resolve_labels
from app.config_input import parse_scalar
from app.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def find_file(value: str) -> str:
    """A relative path as given when it exists here, else relative to the project root (bundled files)."""
    p = Path(value)
    if p.is_absolute() or p.exists() or "://" in value or value.strip().isdigit():
        return value
    bundled = PROJECT_ROOT / p
    return str(bundled) if bundled.exists() else value


def add_run_options(p: argparse.ArgumentParser, feed: bool = True) -> None:
    """The options of `vigil run`; `feed=False` leaves out the outputs a benchmark has no use for
    (--save-video, --mqtt, --api). An option left out keeps the config's value (config/default.yaml)."""
    p.add_argument("--config", "-c", help="YAML config (default: VIGIL_CONFIG, else the built-in defaults, "
                   "see config/default.yaml)")
    p.add_argument("--source", "-s", help="video file, rtsp://… URL, camera index, or 'acap-runtime' (the camera) "
                   "(default: the config's source.uri)")
    p.add_argument("--model", "-m", help=".tflite model; a <model>.yaml beside it brings its decoder settings "
                   "(default: the config's model.path)")
    p.add_argument("--backend", choices=["tflite", "acap-runtime"],
                   help="inference backend (acap-runtime: the camera's inference server) "
                        "(default: the config's model.backend, tflite)")
    p.add_argument("--device", help="inference device (acap-runtime: cpu, artpec7, artpec8, cv25) "
                   "(default: the config's model.backend.device)")
    p.add_argument("--fps", type=float, help="process at most this many frames per second of video time "
                   "(default: the config's source.fps, every frame)")
    p.add_argument("--loop", action="store_true", default=None, help="loop a video file")
    p.add_argument("--threads", type=int, help="threads of each interpreter (default: the config's model.backend.threads, "
                   "by default the CPUs this process may use shared among the interpreters)")
    p.add_argument("--interpreters", type=int, help="interpreters, each running a frame of its own at once (default: "
                   "the config's model.backend.interpreters, by default one per CPU this process may use, at most 2)")
    p.add_argument("--jsonl", help="write per-frame tracked objects as JSON Lines ('-' = stdout) "
                   "(default: the config's output.jsonl, none)")
    if feed:
        p.add_argument("--save-video", help="write annotated video (.mp4/.avi) or latest image (.jpg/.png) "
                       "(default: the config's output.video, none)")
    p.add_argument("--max-frames", type=int, help="stop after this many frames (default: run to the end)")
    if feed:
        p.add_argument("--mqtt", metavar="HOST[:PORT]", help="publish the metadata feed to this MQTT broker "
                       "(default: the config's mqtt section, off; port 1883)")
        p.add_argument("--api", metavar="[HOST:]PORT", help="serve the status page and HTTP API "
                       "(default: the config's api section, off; host 127.0.0.1)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config key, e.g. --set decoder.score_threshold=0.6 (repeatable; default: none)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def overrides(args) -> dict:
    """The config keys the flags of `args` set (dotted keys)."""
    out = {}
    flag_keys = {
        "source": "source.uri", "model": "model.path", "fps": "source.fps", "loop": "source.loop",
        "jsonl": "output.jsonl", "save_video": "output.video",
        "backend": "model.backend.type", "device": "model.backend.device", "threads": "model.backend.threads",
        "interpreters": "model.backend.interpreters",
    }
    if getattr(args, "source", None) == "acap-runtime":  # the camera's stream, not a file of that name
        flag_keys["source"] = "source.type"
    for attr, key in flag_keys.items():
        value = getattr(args, attr, None)
        if value is not None:
            out[key] = value
    out.update(feed_flags(args))
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        if not all(part.strip() for part in key.split(".")):  # `.x=1`, `source..uri=x`: a dot too many
            raise ConfigError(f"--set: {key.strip()!r} is not a config key (a dot with nothing on one side), e.g. "
                              f"--set decoder.score_threshold=0.6")
        out[key.strip()] = parse_scalar(value)
    if getattr(args, "no_progress", False):
        out["output.progress"] = False
    max_frames = getattr(args, "max_frames", None)
    if max_frames is not None and max_frames < 1:
        raise ConfigError(f"--max-frames must be at least 1 (got {max_frames}); leave it out to run to the end")
    return out


def feed_flags(args) -> dict:
    """--mqtt HOST[:PORT] and --api [HOST:]PORT as config overrides."""
    out = {}
    mqtt = getattr(args, "mqtt", None)
    if mqtt:
        if mqtt.startswith("["):  # [IPv6]:port
            host, _, port = mqtt[1:].partition("]")
            port = port.removeprefix(":")
        elif mqtt.count(":") <= 1:
            host, _, port = mqtt.partition(":")
        else:
            host, port = "", "x"
        if port and not port.isdigit():
            raise ConfigError(f"--mqtt expects HOST[:PORT], got {mqtt!r}")
        out.update({"mqtt.enabled": True, "mqtt.host": host or "127.0.0.1"})
        if port:
            out["mqtt.port"] = int(port)
    api = getattr(args, "api", None)
    if api:
        host, _, port = api.rpartition(":")
        if not port.isdigit():
            raise ConfigError(f"--api expects [HOST:]PORT, got {api!r}")
        out.update({"api.enabled": True, "api.port": int(port)})
        if host:
            out["api.host"] = host.strip("[]")
    return out


def load(args) -> Config:
    """The validated Config for these arguments, with bundled-file lookup for relative paths."""
    return load_with_parameters(args)[0]


def config_path(args) -> str | None:
    """--config, else VIGIL_CONFIG; a VIGIL_CONFIG naming no file says so (nobody typed that path here)."""
    if args.config:
        return args.config
    path = os.environ.get("VIGIL_CONFIG")
    if path and not Path(path).is_file():
        raise ConfigError(f"environment variable VIGIL_CONFIG={path}: config file not found"
                          f"{' (it is a directory)' if Path(path).is_dir() else ''}; set it to a YAML file or unset it")
    return path


@dataclass
class ConfigLayers:
    """Every layer of the configuration but the site file (config_input.LAYERS), so that the config can be
    made again with another site tree: at start, and for each change saved on site."""

    path: str | None
    flags: dict
    params: dict = field(default_factory=dict)  # camera parameters as dotted keys

    def build(self, site: dict | None) -> Config:
        """The validated Config with `site` laid over, bundled files found (ConfigError when invalid)."""
        cfg = load_config(self.path, self.flags, params=self.params, site=site)
        cfg.model.path = find_file(cfg.model.path)
        if hasattr(cfg.source, "uri"):  # a file source: bundled samples are found from anywhere
            cfg.source.uri = find_file(cfg.source.uri)
        if isinstance(cfg.model.labels, str):
            cfg.model.labels = find_file(cfg.model.labels)
        return cfg

    def check(self, site: dict | None) -> Config:
        """build(), then the checks a start makes before anything runs."""
        return startup_checks(self.build(site))


def startup_checks(cfg: Config) -> Config:
    """`cfg` once the checks a start makes before anything runs pass: label names, TLS files."""
    check_labels(cfg, resolve_labels(cfg.model.labels, cfg.model.path))
    if cfg.mqtt.enabled and cfg.mqtt.tls.enabled:
        from app.publish.connection import make_client  # paho: only with MQTT over TLS

        make_client(cfg.mqtt, "check", "check")
    return cfg


def load_with_parameters(args) -> tuple[Config, dict | None]:
    """(Config, the raw camera parameter values it used, or None when parameters are off)."""
    cfg, camera, _, _ = load_site(args)
    return cfg, camera


def load_site(args) -> tuple[Config, dict | None, ConfigLayers, "SiteFile"]:
    """The Config of `args` with every layer, the camera parameter values (None when off), the other
    layers (to make it again with a changed site tree) and the site file that was laid over."""
    from app.site import SiteFile, site_path

    layers = ConfigLayers(config_path(args), overrides(args))
    base = layers.build(None)
    camera = None
    if base.acap_runtime.parameters:
        # camera parameters (the app's settings page) override file and environment; flags still win
        from app.acap import params as acap_params  # grpc: only on a camera that uses its parameters

        camera = acap_params.fetch(base.acap_runtime)
        layers.params = acap_params.overrides(camera, base.preprocess.planner.type, base.decoder.score_threshold)
    site = SiteFile.open(site_path(base.site.file, base.state.file), layers.check)
    return layers.build(site.tree), camera, layers, site


def check_parameters(args, camera: dict[str, str]) -> None:
    """ConfigError when these camera parameter values would not make a valid config."""
    from app.acap import params as acap_params  # grpc: only on a camera that uses its parameters

    layers = ConfigLayers(config_path(args), overrides(args))
    base = layers.build(None)
    layers.params = acap_params.overrides(camera, base.preprocess.planner.type, base.decoder.score_threshold)
    layers.build(None)

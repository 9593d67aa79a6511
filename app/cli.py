"""The `vigil` command: run the pipeline, benchmark it. User errors become one line and an exit code."""
from __future__ import annotations

import argparse
import logging
import sys
from datetime import datetime, timezone
from pathlib import Path

from app import __version__
from app.errors import VigilError

log = logging.getLogger("vigil")
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def find_file(value: str) -> str:
    """A relative path as given when it exists here, else relative to the project root (bundled files)."""
    p = Path(value)
    if p.is_absolute() or p.exists() or "://" in value or value.strip().isdigit():
        return value
    bundled = PROJECT_ROOT / p
    return str(bundled) if bundled.exists() else value


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", help="YAML config (default: built-in defaults, see config/default.yaml)")
    p.add_argument("--source", "-s", help="video file, rtsp://… URL, camera index, or 'acap-runtime' (the camera)")
    p.add_argument("--model", "-m", help=".tflite model")
    p.add_argument("--backend", choices=["tflite", "acap-runtime"],
                   help="inference backend (acap-runtime: the camera's inference server)")
    p.add_argument("--device", help="inference device (acap-runtime: cpu, artpec7, artpec8, cv25)")
    p.add_argument("--fps", type=float, help="process at most this many frames per second of video time")
    p.add_argument("--loop", action="store_true", default=None, help="loop a video file")
    p.add_argument("--threads", type=int, help="interpreter threads")
    p.add_argument("--jsonl", help="write per-frame tracked objects as JSON Lines ('-' = stdout)")
    p.add_argument("--save-video", help="write annotated video (.mp4/.avi) or latest image (.jpg/.png)")
    p.add_argument("--max-frames", type=int, help="stop after this many frames")
    p.add_argument("--mqtt", metavar="HOST[:PORT]", help="publish the metadata feed to this MQTT broker")
    p.add_argument("--api", metavar="[HOST:]PORT", help="serve the status page and HTTP API (default host 127.0.0.1)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config key, e.g. --set decoder.score_threshold=0.6 (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _overrides(args) -> dict:
    from app.config import _parse_scalar
    from app.errors import ConfigError

    out = {}
    flag_keys = {
        "source": "source.uri", "model": "model.path", "fps": "source.fps", "loop": "source.loop",
        "jsonl": "output.jsonl", "save_video": "output.video",
        "backend": "model.backend.type", "device": "model.backend.device", "threads": "model.backend.threads",
    }
    if getattr(args, "source", None) == "acap-runtime":  # the camera's stream, not a file of that name
        flag_keys["source"] = "source.type"
    for attr, key in flag_keys.items():
        value = getattr(args, attr, None)
        if value is not None:
            out[key] = value
    out.update(_feed_flags(args))
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        out[key.strip()] = _parse_scalar(value)
    if getattr(args, "no_progress", False):
        out["output.progress"] = False
    max_frames = getattr(args, "max_frames", None)
    if max_frames is not None and max_frames < 1:
        raise ConfigError(f"--max-frames must be at least 1 (got {max_frames}); leave it out to run to the end")
    return out


def _feed_flags(args) -> dict:
    """--mqtt HOST[:PORT] and --api [HOST:]PORT as config overrides."""
    from app.errors import ConfigError

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


def load(args):
    """The validated Config for these arguments, with bundled-file lookup for relative paths."""
    return load_with_parameters(args)[0]


def load_with_parameters(args):
    """(Config, the raw camera parameter values it used, or None when parameters are off)."""
    import os

    from app.config import load_config

    cfg = load_config(args.config or os.environ.get("VIGIL_CONFIG"), _overrides(args))
    camera = None
    if cfg.acap_runtime.parameters:
        # camera parameters (the app's settings page) override file and environment; flags still win
        from app.acap import params as acap_params

        camera = acap_params.fetch(cfg.acap_runtime)
        cfg = load_config(args.config or os.environ.get("VIGIL_CONFIG"),
                          {**acap_params.overrides(camera), **_overrides(args)})
    cfg.model.path = find_file(cfg.model.path)
    if hasattr(cfg.source, "uri"):  # a file source: bundled samples are found from anywhere
        cfg.source.uri = find_file(cfg.source.uri)
    if isinstance(cfg.model.labels, str):
        cfg.model.labels = find_file(cfg.model.labels)
    return cfg, camera


def cmd_run(args) -> int:
    import signal
    import threading

    from app.memory import tune_malloc

    tune_malloc()  # before any thread starts: frame buffers go back to the OS (app/memory.py)
    terminated = threading.Event()
    stop = threading.Event()

    def on_sigterm(*_) -> None:
        terminated.set()
        stop.set()

    if threading.current_thread() is threading.main_thread():
        # `docker stop` / systemd send SIGTERM: finish cleanly (end events, MQTT offline) instead of dying
        signal.signal(signal.SIGTERM, on_sigterm)
    while True:
        changed = _run_once(args, stop)
        if not changed:
            return 0
        # a setting changed in the camera's web page: everything was closed cleanly; start again
        stop.clear()
        if terminated.is_set():  # SIGTERM came meanwhile (checked after the clear, so none is lost)
            return 0
        print(f"vigil: camera parameters changed ({', '.join(changed)}); starting again to apply them",
              file=sys.stderr, flush=True)


def _run_once(args, stop) -> list[str]:
    """Load the config and run the pipeline until it ends or `stop`; the camera parameters that
    changed meanwhile (then the caller runs again), else []."""
    from app import pipeline

    cfg, camera = load_with_parameters(args)
    logging.getLogger().setLevel(cfg.log_level.upper() if not args.debug else "DEBUG")
    bar = None
    progress = None
    if cfg.output.progress:
        from tqdm import tqdm

        def progress(done: int, total: int | None) -> None:
            nonlocal bar
            if bar is None:
                bar = tqdm(total=total, unit="frame", desc="vigil", file=sys.stderr, dynamic_ncols=True)
            bar.update(1)

    changed: list[str] = []
    watch = None
    if camera is not None and cfg.acap_runtime.parameter_poll > 0:
        from app.acap.params import ParameterWatch

        def on_change(names: list[str]) -> None:
            changed.extend(names)
            stop.set()

        watch = ParameterWatch(cfg.acap_runtime, camera, cfg.acap_runtime.parameter_poll, on_change).start()
    try:
        summary = pipeline.run(cfg, max_frames=args.max_frames, progress=progress, stop=stop)
    finally:
        if bar is not None:
            bar.close()
        if watch is not None:
            watch.close()
    print_summary(summary)
    return changed


def print_summary(summary) -> None:
    """The end-of-run lines on stderr."""
    err = sys.stderr
    print(f"vigil: {summary.frames} frames in {summary.seconds:.1f} s ({summary.fps:.1f} fps), "
          f"{summary.model_runs_per_frame} model run(s) per frame", file=err)
    print(f"vigil: {summary.detections} detections, {summary.tracks} tracks seen, "
          f"{summary.dropped} frames dropped, {summary.skipped} skipped by the fps cap", file=err)
    print(f"vigil: output: {', '.join(summary.outputs) if summary.outputs else 'none (use --jsonl / --save-video)'}",
          file=err)
    if summary.feed:
        ev = summary.feed["events"]
        line = f"vigil: events: {ev.get('new', 0)} new, {ev.get('update', 0)} update, {ev.get('end', 0)} end"
        m = summary.feed.get("mqtt")
        if m:
            left = m.get("undelivered", {})
            line += (f"; mqtt {m['broker']}: {m['sent']} messages delivered, {sum(m['dropped'].values())} dropped, "
                     f"{sum(left.values())} undelivered at exit ({left.get('critical', 0)} new/end), "
                     f"{m['reconnects']} reconnects")
        print(line, file=err)


def cmd_bench(args) -> int:
    from app.bench import main as bench_main

    return bench_main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vigil", description="Video analytics for Axis cameras and laptops.")
    parser.add_argument("--version", action="version", version=f"vigil {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run the pipeline on a video file, stream or camera")
    _add_run_options(p)
    p.set_defaults(func=cmd_run)
    b = sub.add_parser("bench", help="measure raw invoke rate vs end-to-end pipeline rate, per-stage times")
    _add_run_options(b)
    b.add_argument("--invokes", type=int, default=300, help="raw interpreter invokes to time")
    b.add_argument("--baseline", action="append", metavar="CONFIG",
                   help="also run this config on the same source and frames and print the speed ratio "
                        "(e.g. config/blazepose.yaml); repeatable")
    b.set_defaults(func=cmd_bench)
    from app import device_cli

    device_cli.add_commands(sub)
    for command in sub.choices.values():  # `vigil run --debug` as well as `vigil --debug run`
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help="show tracebacks and debug logs")
    return parser


class LogFormatter(logging.Formatter):
    """Log lines stamped in ISO 8601 UTC (2026-05-04T13:02:11.345Z), to line up with a broker's log."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging API
        t = datetime.fromtimestamp(record.created, timezone.utc)
        return f"{t:%Y-%m-%dT%H:%M:%S}.{int(record.msecs):03d}Z"


def setup_logging() -> None:
    """INFO and up to stderr, each line with its time, level and logger."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])


def main(argv: list[str] | None = None) -> int:
    from app.device_cli import attach_negative_values

    parser = build_parser()
    args = parser.parse_args(attach_negative_values(sys.argv[1:] if argv is None else list(argv)))
    setup_logging()
    try:
        return args.func(args)
    except VigilError as e:
        if args.debug:  # the traceback too, and still the documented exit code
            import traceback

            traceback.print_exc()
        kind = {2: "config error", 3: "model error", 4: "source error", 5: "inference server error"}.get(
            e.exit_code, "error")
        print(f"vigil: {kind}: {e}", file=sys.stderr)
        return e.exit_code
    except BrokenPipeError:
        # the reader of our stdout went away (`vigil … | head`): a normal end for a command-line tool
        from app.sinks.jsonl import quiet_stdout

        quiet_stdout()
        return 0
    except KeyboardInterrupt:
        print("vigil: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

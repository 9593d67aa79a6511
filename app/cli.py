"""The `vigil` command: run the pipeline, benchmark it. User errors become one line and an exit code."""
from __future__ import annotations

import argparse
import errno
import logging
import signal
import sys
import threading
import traceback
from datetime import datetime, timezone

from app import __version__, bench, cli_help, device_cli
from app.device_cli import attach_negative_values
from app.errors import ConfigError, VigilError
from app.fleet import cli as fleet_cli
from app.memory import tune_malloc
from app.restart import Restart
from app.run_options import add_run_options, check_parameters, load_site

log = logging.getLogger("vigil")


def cmd_run(args) -> int:
    tune_malloc()  # before any thread starts: frame buffers go back to the OS (app/memory.py)
    terminated = threading.Event()
    stop = threading.Event()
    restart = Restart(stop)

    def on_sigterm(*_) -> None:
        terminated.set()
        stop.set()

    if threading.current_thread() is threading.main_thread():
        # `docker stop` / systemd send SIGTERM: finish cleanly (end events, MQTT offline) instead of dying
        signal.signal(signal.SIGTERM, on_sigterm)
        # SIGHUP (`kill -HUP`, `systemctl reload`, a closed terminal): the daemon convention, read the
        # configuration again; the run ends as cleanly as on SIGTERM and the next one starts
        signal.signal(signal.SIGHUP, lambda *_: restart.request("SIGHUP (reload the configuration)"))
    runs = 0
    loaded = None
    while True:
        runs += 1
        try:
            loaded = load_site(args)
        except ConfigError as e:
            if loaded is None:
                raise
            # a reload that found a broken file: say so, and keep running as before rather than stop
            print(f"vigil: config error: {e}; running on with the configuration read before", file=sys.stderr,
                  flush=True)
        _run_once(args, restart, runs, loaded)
        reasons = restart.take()
        if not reasons:
            return 0
        # everything was closed cleanly; start again
        stop.clear()
        if terminated.is_set():  # SIGTERM came meanwhile (checked after the clear, so none is lost)
            return 0
        print(f"vigil: {'; '.join(dict.fromkeys(reasons))}; starting again to apply them", file=sys.stderr,
              flush=True)


def _run_once(args, restart: Restart, run: int, loaded) -> None:
    """Run the pipeline with the loaded (config, camera, layers, site) until it ends or `restart.stop`;
    restart requests made meanwhile (SIGHUP, a camera parameter changed, settings saved on site) stay in
    `restart` for the caller, who runs again with `run` one more."""
    from app import pipeline  # the model and video stack (cv2, the runtime): only for `vigil run`
    from app.sinks.video import numbered

    from app.settings import Settings

    cfg, camera, layers, site = loaded[0].model_copy(deep=True), *loaded[1:]
    if run > 1:  # started again to apply new settings: keep what the earlier runs wrote
        cfg.output.append = True
        cfg.output.video = numbered(cfg.output.video, run)
    logging.getLogger().setLevel(cfg.log_level.upper() if not args.debug else "DEBUG")
    bar = None
    progress = None
    if cfg.output.progress:
        from tqdm import tqdm  # only with a progress bar (not on the camera)

        def progress(done: int, total: int | None) -> None:
            nonlocal bar
            if bar is None:
                bar = tqdm(total=total, unit="frame", desc="vigil", file=sys.stderr, dynamic_ncols=True)
            bar.update(1)

    # settings saved on site that need the pipeline made again end this run the same way
    settings = Settings(cfg, layers, site, restart.request)
    watch = None
    if camera is not None and cfg.acap_runtime.parameter_poll > 0:
        from app.acap.params import ParameterWatch  # grpc: only on a camera that uses its parameters

        def on_change(names: list[str]) -> None:
            restart.request(f"camera parameters changed ({', '.join(names)})")

        watch = ParameterWatch(cfg.acap_runtime, camera, cfg.acap_runtime.parameter_poll, on_change,
                               check=lambda values: check_parameters(args, values)).start()
    try:
        summary = pipeline.run(cfg, max_frames=args.max_frames, progress=progress, stop=restart.stop,
                               settings=settings)
    finally:
        if bar is not None:
            bar.close()
        if watch is not None:
            watch.close()
    print_summary(summary)


def print_summary(summary) -> None:
    """The end-of-run lines on stderr."""
    err = sys.stderr
    runs, mean = summary.model_runs_per_frame, summary.mean_runs_per_frame
    per_frame = (f"{runs} model run(s) per frame" if not summary.frames or abs(mean - runs) < 1e-9
                 else f"{mean:.2f} model runs per frame (a full look: {runs})")
    print(f"vigil: {summary.frames} frames in {summary.seconds:.1f} s ({summary.fps:.1f} fps), {per_frame}", file=err)
    print(f"vigil: {summary.detections} detections, {summary.tracks} tracks seen, "
          f"{summary.dropped} frames dropped, {summary.skipped} skipped by the fps cap", file=err)
    if summary.ended_early:
        again = f" ({summary.ended_early} times, looping)" if summary.ended_early > 1 else ""
        print(f"vigil: source: {summary.early_end}{again}", file=err)
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
    return bench.main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vigil", description="Video analytics for Axis cameras and laptops.")
    parser.add_argument("--version", action="version", version=f"vigil {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run the pipeline on a video file, stream or camera")
    add_run_options(p)
    p.set_defaults(func=cmd_run)
    b = sub.add_parser("bench", help="measure the raw model invoke rate against the end-to-end pipeline rate, "
                                     "per-stage times and peak memory")
    add_run_options(b, feed=False)
    b.add_argument("--invokes", type=int, default=300, help="raw interpreter invokes to time")
    b.add_argument("--baseline", action="append", metavar="CONFIG",
                   help="also run this config on the same source and frames and print the speed ratio "
                        "(e.g. config/blazepose.yaml); repeatable (default: none)")
    b.set_defaults(func=cmd_bench)
    device_cli.add_commands(sub)
    fleet_cli.add_commands(sub)
    for command in sub.choices.values():  # `vigil run --debug` as well as `vigil --debug run`
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help="show tracebacks and debug logs")
    cli_help.finish(parser, sub)
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


def _stdout_failing(e: OSError) -> bool:
    """Whether this is stdout refusing what a command prints (`check-model > file` on a full disk): a
    write error carrying no file name. The files Vigil writes itself raise ConfigErrors naming them."""
    return e.filename is None and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(attach_negative_values(sys.argv[1:] if argv is None else list(argv)))
    setup_logging()
    try:
        code = args.func(args)
        sys.stdout.flush()  # a full disk behind stdout fails here, not as 'Exception ignored' at exit
        return code
    except VigilError as e:
        if args.debug:  # the traceback too, and still the documented exit code
            traceback.print_exc()
        kind = {2: "config error", 3: "model error", 4: "source error", 5: "inference server error"}.get(
            e.exit_code, "error")
        print(f"vigil: {kind}: {e}", file=sys.stderr)
        return e.exit_code
    except ModuleNotFoundError as e:
        if (e.name or "").partition(".")[0] not in ("grpc", "google") or args.debug:
            raise
        # a laptop install without the camera's extra (make demo): ACAP Runtime needs gRPC
        print("vigil: config error: ACAP Runtime (the acap-runtime backend and source, camera parameters, "
              "vigil emulator) needs the camera extra: pip install -e '.[camera]' (make venv has it)", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader of our stdout went away (`vigil … | head`): a normal end for a command-line tool
        from app.sinks.jsonl import quiet_stdout  # the sinks' stack is not loaded for every command

        quiet_stdout()
        return 0
    except OSError as e:
        if not _stdout_failing(e):
            raise  # not the user's output: a bug, with its traceback
        from app.sinks.jsonl import quiet_stdout

        quiet_stdout()  # what is still buffered for it can never be written
        print(f"vigil: config error: cannot write stdout: {e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vigil: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""`vigil emulator`, `vigil check-model` and `vigil quantize`: the camera-side subcommands."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from app.errors import ConfigError, ModelError
from app.run_options import find_file

# options whose value may start with a minus sign ("--input-range -1,1"): argparse takes "-1,1" for an
# option because it is not a plain negative number, so the value is attached before parsing
NEGATIVE_VALUED = ("--input-range",)


def attach_negative_values(argv: list[str]) -> list[str]:
    """argv with "--opt -1,1" rewritten as "--opt=-1,1" for the options in NEGATIVE_VALUED."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        nxt = argv[i + 1] if i + 1 < len(argv) else ""
        if a in NEGATIVE_VALUED and len(nxt) > 1 and nxt[0] == "-" and (nxt[1].isdigit() or nxt[1] == "."):
            out.append(f"{a}={nxt}")
            i += 2
        else:
            out.append(a)
            i += 1
        if a == "--":  # everything after is positional
            out.extend(argv[i:])
            break
    return out


def add_commands(sub) -> None:
    """Register the subcommands on the CLI's subparsers."""
    e = sub.add_parser("emulator", help="serve ACAP Runtime's gRPC services locally (TFLite + a video file)")
    e.add_argument("--address", default="unix:///tmp/acap-runtime.sock", help="where to listen: unix:///path or host:port")
    e.add_argument("-j", "--chip", type=int, default=12, help="chip id as ACAP Runtime's -j (0 = no inference service)")
    e.add_argument("-m", "--model", action="append", default=[], help="preload a model (repeatable; default: none, loaded on request)")
    e.add_argument("--model-dir", help="directory served as /models (the shared models volume) (default: none, only --model files)")
    e.add_argument("--video", default="samples/vtest.mp4", help="video file the camera 'sees'")
    e.add_argument("--pace", choices=["realtime", "lockstep"], default="realtime",
                   help="realtime: a live camera making source.stream.framerate frames a second, the newest "
                        "to a late client; lockstep: every frame of the file in order, as fast as asked "
                        "(run vigil with source.live=false to process them all)")
    e.add_argument("--loop", action="store_true", help="loop the video")
    e.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="a camera parameter (repeatable; default: none)")
    e.add_argument("--serial", default="ACCC8E0E0001",
                   help="the camera's serial number (root.Properties.System.SerialNumber); '' serves none")
    e.add_argument("-c", "--cert", help="TLS certificate (PEM); with --key serves TLS (default: none, plain)")
    e.add_argument("-k", "--key", help="TLS private key (default: none)")
    e.add_argument("--terse-errors", action="store_true", help="bare CANCELLED on Predict failures, like ACAP Runtime")
    e.add_argument("--threads", type=int, default=1, help="TFLite threads")
    e.set_defaults(func=cmd_emulator)

    c = sub.add_parser("check-model", help="report which ops of a .tflite run on an Axis DLPU and which fall back to the CPU")
    c.add_argument("model", help=".tflite file")
    c.add_argument("--chip", default="artpec8", choices=["artpec7", "artpec8", "artpec9", "cv25", "cpu"],
                   help="the chip whose DLPU rules the ops are checked against")
    c.add_argument("--json", action="store_true", help="machine-readable report on stdout")
    c.set_defaults(func=cmd_check_model)

    q = sub.add_parser("quantize", help="full-integer INT8 from a float .tflite and a folder of calibration images")
    q.add_argument("model", help="float .tflite")
    q.add_argument("--calib", required=True, help="folder of >= 100 calibration images (jpg/png)")
    q.add_argument("--granularity", choices=["per-tensor", "per-channel"], default="per-tensor",
                   help="per-tensor for ARTPEC-8; per-channel for ARTPEC-7/9")
    q.add_argument("--output", "-o", help="INT8 .tflite to write (default: <model>_int8_<granularity>.tflite)")
    q.add_argument("--holdout", type=float, default=0.1, help="fraction of images kept out of calibration for the comparison")
    q.add_argument("--input-range", help="real range the float model expects for pixels 0..255, e.g. -1,1 (default 0,1)")
    q.add_argument("--resize", choices=["stretch", "letterbox"], default="stretch", help="how images become the model input")
    q.add_argument("--color", choices=["rgb", "bgr"], default="rgb", help="channel order the model expects")
    q.add_argument("--io", choices=["uint8", "int8"], default="uint8",
                   help="input/output type: uint8 as Axis's recipe (a QUANTIZE at each end), or int8")
    q.add_argument("--min-images", type=int, default=100, help=argparse.SUPPRESS)
    q.add_argument("--chip", default=None, choices=["artpec7", "artpec8", "artpec9", "cv25", "cpu"],
                   help="chip to check the result for (default: artpec8 for per-tensor, artpec9 for per-channel)")
    q.set_defaults(func=cmd_quantize)


def cmd_emulator(args) -> int:
    from app.acap.emulator import EmulatorConfig, serve  # grpc and cv2: only for the emulator

    params = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--param expects KEY=VALUE, got {item!r}")
        params[key.strip()] = value
    video = find_file(args.video)
    if not Path(video).is_file():
        raise ConfigError(f"--video: file not found: {video}")
    config = EmulatorConfig(
        address=args.address, chip=args.chip, preload=args.model, model_dir=args.model_dir, video=video,
        pace=args.pace, loop=args.loop, params=params, serial=args.serial or None, tls_cert=args.cert, tls_key=args.key,
        terse_errors=args.terse_errors, threads=args.threads,
    )
    return serve(config)


def cmd_check_model(args) -> int:
    from app.modeltools import dlpu_check  # the flatbuffer schema of ai_edge_litert: only for this command

    try:
        report = dlpu_check.check_model(args.model, args.chip)
        if not report.custom_ops:
            # the rules read the file; the interpreter must also take it (an op version it lacks, tensors
            # that do not fit) before it can be called fully on the DLPU. Custom ops (an Edge TPU compiled
            # model) only the camera's runtime has: those are not loaded here.
            from app.backends.tflite import TFLiteModel, check_model_file  # the interpreter: only for this

            try:
                TFLiteModel(check_model_file(args.model), 1, reference_kernels=True).close()  # no XNNPACK banner
            except ModelError as e:
                why = str(e).removeprefix(f"cannot load model {args.model}: ")
                raise ModelError(f"{args.model}: the TFLite interpreter refuses to load it: {why}") from None
    except ModelError as e:  # not a model, damaged, or refused by the interpreter: 3, as `vigil run` says
        if args.json:
            print(json.dumps({"model": args.model, "chip": args.chip, "exit_code": 3, "error": str(e)}))
        else:
            print(f"vigil: check-model: {e}", file=sys.stderr)
        return 3
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.table())
    return report.exit_code


def cmd_quantize(args) -> int:
    from app.modeltools import quantize_cli  # the interpreter and OpenCV: only for this command

    return quantize_cli.main(args)

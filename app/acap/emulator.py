"""A local stand-in for ACAP Runtime: the same three gRPC services, on x86, over a Unix socket or TCP.

Backed by the TFLite backend and a video file, it reproduces what matters of the real
server (acap-runtime 2.0.0): models known by path and loaded on first use; stretch
resize when the request image differs from the model input; outputs keyed by tensor
name; inferences serialised by one lock; NV12 frames from VideoCapture, each handed out
once and numbered like VDO's; a read-only parameter store; every Predict failure reported
as CANCELLED. Unlike the real server it says why in the status details, unless
`terse_errors` is set. The camera side (a video file paced like VDO) is `emulated_camera`.
"""
from __future__ import annotations

import logging
import os
import signal
import stat
import threading
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import grpc
import numpy as np

from app import protos
from app.acap.emulated_camera import Abort, EmulatedStream
from app.acap.nv12 import bgr_to_nv12, nv12_to_rgb
from app.acap.tensors import proto_to_array, tensor_to_proto
from app.backends.tflite import TFLiteModel
from app.errors import ConfigError, ModelError
from app.modelfile import TensorSpec

log = logging.getLogger(__name__)
SERIAL = "ACCC8E0E0001"  # the emulated camera's serial number (Axis serials: 12 hex digits)
SERIAL_KEY = "root.Properties.System.SerialNumber"

@dataclass
class EmulatorConfig:
    """How the emulator serves: address, chip id, models, video and parameters."""

    address: str = "unix:///tmp/acap-runtime.sock"
    chip: int = 12  # -j; 0 = no inference service, as with the real server
    preload: list[str] = field(default_factory=list)  # -m
    model_dir: str | None = None  # served as /models (the shared models volume)
    video: str = "samples/vtest.mp4"
    pace: str = "realtime"  # realtime: a live camera at the stream's frame rate; lockstep: every frame in order
    loop: bool = False
    params: dict[str, str] = field(default_factory=dict)
    serial: str | None = SERIAL  # root.Properties.System.SerialNumber; None: not served
    tls_cert: str | None = None
    tls_key: str | None = None
    terse_errors: bool = False  # bare CANCELLED like the real server
    fail_loads: int = 0  # answer the first N model loads with POWER_NOT_AVAILABLE
    threads: int = 1


class Emulator:
    """The emulated server; start() it, stop() it. Usable in tests and from `vigil emulator`."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.pb = protos.load()
        self._server = None
        self._models: dict[str, object] = {}
        self._predict_lock = threading.Lock()  # the real server serialises requests with a mutex
        self._streams: dict[int, EmulatedStream] = {}
        self._streams_lock = threading.Lock()
        self._next_stream = 1
        self._loads = 0
        self.predicts = 0
        self._active = 0  # Predict calls being handled now, and the most seen at once
        self.peak_active = 0
        self._active_lock = threading.Lock()

    # -- lifecycle -----------------------------------------------------------------------
    @property
    def socket_path(self) -> Path | None:
        a = self.config.address
        return Path(a[len("unix://"):]) if a.startswith("unix://") else None

    def start(self) -> "Emulator":
        for m in self.config.preload:
            try:
                self._model(m)
            except Abort as a:  # at start-up a bad model is the user's input, not a gRPC answer
                raise ModelError(f"--model {m}: {a.message}") from None
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="emulator"),
            options=[("grpc.max_receive_message_length", 256 << 20), ("grpc.max_send_message_length", 256 << 20)],
        )
        pb = self.pb
        if self.config.chip:
            pb.tensorflow_serving_pb2_grpc.add_PredictionServiceServicer_to_server(_Prediction(self), server)
        pb.videocapture_pb2_grpc.add_VideoCaptureServicer_to_server(_VideoCapture(self), server)
        pb.keyvaluestore_pb2_grpc.add_KeyValueStoreServicer_to_server(_KeyValueStore(self), server)
        path = self.socket_path
        address = self.config.address
        if path is None:
            host, _, port_text = address.rpartition(":")
            if not host or not port_text.isdigit() or (":" in host and not host.startswith("[")):
                raise ConfigError(f"--address: expected unix:///path, host:port or [ipv6]:port, got {address!r}")
        try:
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                if path.exists() and stat.S_ISSOCK(path.stat().st_mode):
                    path.unlink()  # a socket left by a server that died
            if self.config.tls_cert and self.config.tls_key:
                creds = grpc.ssl_server_credentials([(Path(self.config.tls_key).read_bytes(),
                                                      Path(self.config.tls_cert).read_bytes())])
                port = server.add_secure_port(address, creds)
            else:
                port = server.add_insecure_port(address)
        except OSError as e:
            raise ConfigError(f"emulator cannot listen on {address}: {e.strerror or e}"
                              f"{f' ({e.filename})' if e.filename else ''}") from None
        except RuntimeError:  # grpc: "Failed to bind to address …" (busy port, no permission)
            port = -1
        if port == -1 or (path is None and port == 0):
            raise ConfigError(f"emulator cannot listen on {address}")
        server.start()
        if path is not None:
            os.chmod(path, 0o660)  # as ACAP Runtime does
        self.port = port
        self._server = server
        log.info("ACAP Runtime emulator on %s (chip %d, video %s, %s)", self.config.address, self.config.chip,
                 self.config.video, self.config.pace)
        return self

    def stop(self, grace: float | None = 0) -> None:
        if self._server is not None:
            self._server.stop(grace).wait()
            self._server = None
        with self._streams_lock:
            for s in self._streams.values():
                s.close()
            self._streams.clear()
        path = self.socket_path
        if path is not None and path.exists():
            path.unlink()

    def wait(self) -> None:
        if self._server is not None:
            self._server.wait_for_termination()

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _stream(self, sid: int) -> EmulatedStream:
        with self._streams_lock:
            stream = self._streams.get(sid)
        if stream is None:  # ACAP Runtime's answer for a stream it does not know (e.g. after a restart)
            raise Abort("FAILED_PRECONDITION", "Getting frame failed. Stream not found")
        return stream

    # -- model store ---------------------------------------------------------------------
    def resolve(self, name: str) -> Path:
        """Where a model named by its in-container path lives here (/models/… maps to model_dir)."""
        if self.config.model_dir and name.startswith("/models/"):
            return Path(self.config.model_dir) / name[len("/models/"):]
        return Path(name)

    def _model(self, name: str):
        model = self._models.get(name)
        if model is not None:
            return model
        if self._loads < self.config.fail_loads:
            self._loads += 1
            raise Abort("CANCELLED", "Failed to load model (POWER_NOT_AVAILABLE: DLPU busy, retry later)")
        path = self.resolve(name)
        if not path.is_file():
            raise Abort("CANCELLED", f"Failed to open model file: {name}")
        try:
            model = TFLiteModel(path, self.config.threads)
        except ModelError as e:
            raise Abort("CANCELLED", f"Failed to load model {path.name} ({e})") from None
        self._loads += 1
        self._models[name] = model
        log.info("loaded %s", name)
        return model


class _Prediction:
    def __init__(self, emu: Emulator) -> None:
        self.emu = emu

    def Predict(self, request, context):  # noqa: N802 - gRPC method name
        emu = self.emu
        with emu._active_lock:
            emu._active += 1
            emu.peak_active = max(emu.peak_active, emu._active)
        try:
            return self._predict(request)
        except Abort as a:
            context.abort(getattr(grpc.StatusCode, a.code), "" if emu.config.terse_errors else a.message)
        finally:
            with emu._active_lock:
                emu._active -= 1

    def _predict(self, request):
        emu = self.emu
        with emu._predict_lock:
            model = emu._model(request.model_spec.name)
        if len(request.inputs) != len(model.inputs):
            raise Abort("CANCELLED", f"Predict request has {len(request.inputs)} inputs but model has {len(model.inputs)}")
        arrays = []
        frame_reference = 0
        # matched by map order, not by name (as the real server does)
        for tp, spec in zip(request.inputs.values(), model.inputs):
            if request.stream_id:
                stream = emu._stream(request.stream_id)
                frame_reference, img, _, _ = stream.next_frame()
                # the server feeds the stream's NV12 to its preprocessing job: do the same round trip
                rgb = nv12_to_rgb(bgr_to_nv12(img), img.shape[1], img.shape[0])
                fitted = self._fit(rgb[None], spec)
                # larod hands the preprocessed bytes to the model as they are: an int8
                # model sees uint8 pixels reinterpreted, so such models want uint8 input
                arrays.append(fitted.view(spec.dtype) if spec.dtype.itemsize == 1 else fitted)
                continue
            try:
                a = proto_to_array(tp)
            except ValueError as e:
                raise Abort("CANCELLED", f"bad input tensor: {e}") from None
            if a.dtype != spec.dtype:
                raise Abort("CANCELLED", f"input dtype {a.dtype} does not match the model's {spec.dtype}")
            arrays.append(self._fit(a, spec))
        # one inference at a time, as the real server's mutex does; decoding the request and encoding
        # the reply stay outside it because here they are Python (microseconds in the real C++ server)
        with emu._predict_lock:
            outputs = model.run(arrays)
            emu.predicts += 1
        reply = emu.pb.tensorflow_serving_pb2.PredictResponse(frame_reference=frame_reference)
        reply.model_spec.CopyFrom(request.model_spec)
        for spec, out in zip(model.outputs, outputs):
            reply.outputs[spec.name].CopyFrom(tensor_to_proto(out, emu.pb))
        return reply

    @staticmethod
    def _fit(a: np.ndarray, spec: TensorSpec) -> np.ndarray:
        """The request image as the model input: as-is when the size matches, else stretch-resized."""
        shape = tuple(spec.shape)
        if a.shape == shape:
            return a
        # NHWC: dims[1] = H, dims[2] = W; a different image size goes through the
        # libyuv scaler (a stretch, not a letterbox)
        if a.ndim == 4 and len(shape) == 4 and a.shape[0] == 1 and a.shape[3] == shape[3] == 3 and a.dtype == np.uint8:
            resized = cv2.resize(a[0], (shape[2], shape[1]), interpolation=cv2.INTER_LINEAR)
            return resized[None]
        if a.size == int(np.prod(shape)) and a.ndim != 4:
            return a.reshape(shape)
        raise Abort("CANCELLED", f"tensor shape mismatch: request {list(a.shape)}, model {list(shape)}")


class _VideoCapture:
    def __init__(self, emu: Emulator) -> None:
        self.emu = emu

    def _abort(self, context, a: Abort):
        context.abort(getattr(grpc.StatusCode, a.code), a.message)

    def NewStream(self, request, context):  # noqa: N802
        s = request.settings
        emu = self.emu
        if s.format not in (2, 3, 8, 9):
            self._abort(context, Abort("INVALID_ARGUMENT", f"stream format {s.format} is not supported by the emulator"))
        if s.width <= 0 or s.height <= 0 or (s.format == 3 and (s.width % 2 or s.height % 2)):
            self._abort(context, Abort("INVALID_ARGUMENT", f"bad stream size {s.width}x{s.height}"))
        with emu._streams_lock:
            sid = emu._next_stream
            emu._next_stream += 1
            try:
                stream = EmulatedStream(sid, emu.config.video, s.width, s.height, s.format, s.framerate or 30,
                                 emu.config.pace, emu.config.loop)
            except ValueError as e:
                self._abort(context, Abort("INTERNAL", str(e)))
            emu._streams[sid] = stream
        log.info("stream %d: %dx%d format %d @ %d fps", sid, s.width, s.height, s.format, s.framerate)
        return emu.pb.videocapture_pb2.NewStreamResponse(stream_id=sid)

    def DeleteStream(self, request, context):  # noqa: N802
        with self.emu._streams_lock:
            stream = self.emu._streams.pop(request.stream_id, None)
        if stream is None:
            self._abort(context, Abort("FAILED_PRECONDITION", "Deleting stream failed: stream not found"))
        stream.close()
        log.info("stream %d deleted", request.stream_id)
        return self.emu.pb.videocapture_pb2.DeleteStreamResponse()

    def GetFrame(self, request, context):  # noqa: N802
        try:
            stream = self.emu._stream(request.stream_id)
            if request.frame_reference:
                # a frame kept from a Predict on the stream: ACAP Runtime fills in only data and size
                data = stream.encode(stream.saved_frame(request.frame_reference))
                return self.emu.pb.videocapture_pb2.GetFrameResponse(size=len(data), data=data)
            fid, img, ts, seq = stream.next_frame()
        except Abort as a:
            self._abort(context, a)
        data = stream.encode(img)
        kind = {3: "yuv", 8: "rgb", 9: "planar_rgb", 2: "jpeg"}[stream.fmt]
        return self.emu.pb.videocapture_pb2.GetFrameResponse(
            id=fid, type=kind, size=len(data), timestamp=int(round(ts * 1e6)), sequence_nbr=seq, data=data
        )


class _KeyValueStore:
    def __init__(self, emu: Emulator) -> None:
        self.emu = emu

    def GetValues(self, request_iterator, context):  # noqa: N802
        config = self.emu.config
        for req in request_iterator:
            # device parameters as the camera has them, beside the app's own
            value = config.serial if req.key == SERIAL_KEY and config.serial else config.params.get(req.key)
            if value is None:
                context.abort(grpc.StatusCode.NOT_FOUND, f"no parameter {req.key}")
            yield self.emu.pb.keyvaluestore_pb2.Response(value=value)


def serve(config: EmulatorConfig) -> int:
    """Run until SIGINT/SIGTERM; for `vigil emulator`."""
    emu = Emulator(config).start()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"vigil emulator: ACAP Runtime services on {config.address} (chip {config.chip}, "
          f"video {config.video}, {config.pace}); Ctrl-C stops", flush=True)
    stop.wait()
    emu.stop(grace=1)
    return 0

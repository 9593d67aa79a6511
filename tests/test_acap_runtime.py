"""ACAP Runtime backend, capture and parameters against the emulator over a real Unix socket."""
from __future__ import annotations

import json
import logging
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import grpc
import httpx
import numpy as np
import pytest

from app import cli, pipeline, protos, run_options
from app.acap import params as acap_params
from app.acap.client import CHANNELS, AcapRuntimeError, Endpoint
from app.acap.emulator import Emulator, EmulatorConfig
from app.acap.inference import AcapRuntimeModel, chip_id
from app.acap.nv12 import bgr_to_nv12, nv12_to_bgr, nv12_to_rgb
from app.acap.tensors import proto_to_array, tensor_to_proto
from app.acap.video import FrameNumbers
from app.backends import build_backend, load
from app.plugins import RunContext
from app.capture import build_source
from app.capture.acap_runtime import Config as CameraSourceConfig
from app.config import AcapRuntimeConfig, Config, load_config
from app.errors import ConfigError, ModelError, SourceError
from app.health import Health
from app.modelfile import read_model
from app.detector import Detector
from app.retry import RetryPolicy
from tests.conftest import BLAZEPOSE_MODEL, DEFAULT_MODEL, FIXTURE_MODELS, ROOT, SAMPLE_CLIP, make_clip, run_vigil
from tests.mqtt_util import free_port, wait_until
from tests.consumers import OnFrame

pb = protos.load()
FAST = RetryPolicy(timeout=20, base_delay=0.02, max_delay=0.1)


@pytest.fixture
def sock_dir():
    # Unix socket paths are limited to 107 bytes: keep them short, outside tmp_path
    d = tempfile.mkdtemp(prefix="vg", dir="/tmp")
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def emulator(sock_dir):
    emu = Emulator(EmulatorConfig(address=f"unix://{sock_dir}/rt.sock", video=str(SAMPLE_CLIP), pace="lockstep")).start()
    yield emu
    emu.stop()


def acap_cfg(emu_or_address, **kw) -> AcapRuntimeConfig:
    address = emu_or_address if isinstance(emu_or_address, str) else emu_or_address.config.address
    return AcapRuntimeConfig(address=address, **{"connect_timeout": 10, "retry_timeout": 10, **kw})


def remote_model(emu, path=DEFAULT_MODEL, policy=FAST, **kw) -> AcapRuntimeModel:
    return AcapRuntimeModel(Path(path), kw.pop("server_path", str(path)), Endpoint(emu.config.address), policy,
                            specs=read_model(path).io_specs(), connect_timeout=kw.pop("connect_timeout", 10), **kw)


# -- protobuf encoding ------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int32, np.float32, np.int64, np.float16])
def test_tensor_proto_round_trip_keeps_dtype_shape_and_values(dtype):
    a = (np.arange(2 * 3 * 4) - 7).astype(dtype).reshape(2, 3, 4)
    t = tensor_to_proto(a, pb)
    back = proto_to_array(pb.tensorflow_pb2.TensorProto.FromString(t.SerializeToString()))
    assert back.dtype == a.dtype and back.shape == a.shape and np.array_equal(back, a)


def test_tensor_proto_uses_tensorflow_dtype_numbers_and_raw_content():
    t = tensor_to_proto(np.array([[1, 255]], np.uint8), pb)
    assert t.dtype == 4 and [d.size for d in t.tensor_shape.dim] == [1, 2]  # DT_UINT8 = 4
    assert t.tensor_content == b"\x01\xff"
    assert tensor_to_proto(np.array([-1], np.int8), pb).dtype == 6  # DT_INT8
    assert tensor_to_proto(np.array([1.5], np.float32), pb).dtype == 1  # DT_FLOAT
    # wire bytes: field 1 (dtype) varint 4, field 2 (shape) message, field 4 (tensor_content) bytes
    wire = t.SerializeToString()
    assert wire.startswith(b"\x08\x04\x12") and wire.endswith(b"\x22\x02\x01\xff")


def test_quantized_int8_tensor_survives_the_wire_bit_exact():
    q = np.random.default_rng(0).integers(-128, 128, (1, 8, 8, 3)).astype(np.int8)
    back = proto_to_array(pb.tensorflow_pb2.TensorProto.FromString(tensor_to_proto(q, pb).SerializeToString()))
    assert back.tobytes() == q.tobytes()


def test_proto_to_array_reads_typed_value_fields_and_rejects_bad_counts():
    t = pb.tensorflow_pb2.TensorProto(dtype=1, float_val=[0.5, 1.5])
    t.tensor_shape.dim.add(size=2)
    assert proto_to_array(t).tolist() == [0.5, 1.5]
    t.tensor_shape.dim[0].size = 3
    with pytest.raises(ValueError, match="2 values for shape"):
        proto_to_array(t)


def test_axis_additions_use_field_10():
    req = pb.tensorflow_serving_pb2.PredictRequest(stream_id=3)
    assert req.SerializeToString() == b"\x50\x03"  # field 10, varint
    assert pb.tensorflow_serving_pb2.PredictResponse(frame_reference=7).SerializeToString() == b"\x50\x07"
    spec = pb.tensorflow_serving_pb2.ModelSpec(name="/models/a.tflite")
    assert spec.SerializeToString() == b"\x0a\x10/models/a.tflite"


def test_videocapture_field_numbers_match_axis_definition():
    vc = pb.videocapture_pb2
    s = vc.StreamSettings(format=vc.VDO_FORMAT_YUV, width=640, height=360, framerate=10, timestamp_type=1)
    assert s.SerializeToString() == b"\x08\x03\x10\x80\x05\x18\xe8\x02\x20\x0a\x28\x01"
    assert vc.VDO_FORMAT_RGB == 8 and vc.VDO_FORMAT_PLANAR_RGB == 9
    r = vc.GetFrameResponse(sequence_nbr=1, data=b"x")
    assert r.SerializeToString() == b"\x30\x01\x3a\x01x"


# -- NV12 -------------------------------------------------------------------------------------
def test_nv12_grey_and_primary_colours_convert_to_rgb():
    img = np.zeros((4, 6, 3), np.uint8)
    img[:, :2] = (0, 0, 255)  # red in BGR
    img[:, 2:4] = 128
    img[:, 4:] = (255, 0, 0)  # blue in BGR
    rgb = nv12_to_rgb(bgr_to_nv12(img), 6, 4)
    assert np.abs(rgb[:, :2].astype(int) - (255, 0, 0)).max() <= 3
    assert np.abs(rgb[:, 2:4].astype(int) - 128).max() <= 2
    assert np.abs(rgb[:, 4:].astype(int) - (0, 0, 255)).max() <= 3


def test_nv12_layout_is_luma_plane_then_interleaved_chroma():
    img = np.zeros((2, 4, 3), np.uint8)
    img[:, :2] = (255, 0, 0)  # blue: high U (Cb)
    img[:, 2:] = (0, 0, 255)  # red: high V (Cr)
    nv12 = bgr_to_nv12(img)
    assert nv12.size == 12  # 8 luma bytes, then U,V for each 2x2 block
    u0, v0, u1, v1 = (int(b) for b in nv12[8:])
    assert u0 > 200 and v0 < 128 and v1 > 200 and u1 < 128


def test_nv12_with_padded_rows_is_cropped_to_width():
    img = np.random.default_rng(1).integers(0, 255, (8, 10, 3)).astype(np.uint8)
    nv12 = bgr_to_nv12(img).reshape(12, 10)
    padded = np.zeros((12, 16), np.uint8)
    padded[:, :10] = nv12
    assert np.array_equal(nv12_to_bgr(padded.tobytes(), 10, 8), nv12_to_bgr(nv12.tobytes(), 10, 8))


def test_nv12_of_wrong_size_is_a_source_error():
    with pytest.raises(SourceError, match="does not fit"):
        nv12_to_bgr(b"\0" * 100, 10, 8)


# -- chip ids -----------------------------------------------------------------------------------
def test_chip_ids_are_acap_runtime_larod_ids():
    assert [chip_id(d) for d in ("cpu", "artpec7", "cv25", "artpec8", "ARTPEC-8", "12")] == [2, 4, 6, 12, 12, 12]


def test_artpec9_has_no_chip_id_and_says_why():
    with pytest.raises(ConfigError, match="ARTPEC-9 DLPU has no ACAP Runtime chip id"):
        chip_id("artpec9")
    with pytest.raises(ConfigError, match="not an ACAP Runtime chip"):
        chip_id("gpu")


# -- backend ----------------------------------------------------------------------------------------
def test_backend_specs_come_from_the_local_file_and_match_tflite():
    tfl = load(DEFAULT_MODEL, "tflite")
    inputs, outputs = read_model(DEFAULT_MODEL).io_specs()
    assert inputs == tfl.inputs and outputs == tfl.outputs


def test_backend_outputs_equal_in_process_tflite_and_health_follows_the_connection(emulator):
    health = Health()  # what the pipeline hands the backend and /api/health shows
    remote = build_backend({"type": "acap-runtime", "device": "artpec8", "server_path": str(DEFAULT_MODEL)},
                           DEFAULT_MODEL, RunContext(health=health, acap=acap_cfg(emulator)))
    assert health.state == "ready" and remote.chip == 12
    local = load(DEFAULT_MODEL, "tflite")
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = random_inputs(local.inputs[0], 1, int(rng.integers(1 << 30)))[0]
        for a, b in zip(remote.run([x]), local.run([x])):
            assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    assert health.state == "ready" and health.retries == 0
    remote.close()
    assert health.state == "closed"


def random_inputs(spec, n: int, seed: int = 0) -> list[np.ndarray]:
    """n random tensors of the spec's shape and (integer) dtype."""
    rng = np.random.default_rng(seed)
    info = np.iinfo(spec.dtype)
    return [rng.integers(info.min, info.max + 1, spec.shape).astype(spec.dtype) for _ in range(n)]


@pytest.mark.parametrize("inflight", [1, 3])
def test_run_many_returns_every_output_in_order_with_requests_in_flight(sock_dir, inflight):
    with Emulator(EmulatorConfig(address=f"unix://{sock_dir}/m.sock", video=str(SAMPLE_CLIP))) as emu:
        m = remote_model(emu, inflight=inflight)
        local = load(DEFAULT_MODEL, "tflite")
        xs = random_inputs(local.inputs[0], 8)
        got = list(m.run_many([x] for x in xs))
        assert len(got) == len(xs)
        for x, outs in zip(xs, got):
            assert all(np.array_equal(a, b) for a, b in zip(outs, local.run([x])))
        # one at a time stays one at a time; with three allowed the server sees several at once
        assert emu.peak_active == 1 if inflight == 1 else emu.peak_active >= 2
        assert emu.predicts == 1 + len(xs) and m.health.state == "ready"  # the warm-up, then one each
        m.close()


def test_run_many_stopped_early_cancels_the_rest_and_the_model_still_works(emulator):
    m = remote_model(emulator, inflight=3)
    xs = random_inputs(m.inputs[0], 10, seed=1)
    results = m.run_many([x] for x in xs)
    first = next(results)
    results.close()
    local = load(DEFAULT_MODEL, "tflite")
    assert all(np.array_equal(a, b) for a, b in zip(first, local.run([xs[0]])))
    assert all(np.array_equal(a, b) for a, b in zip(m.run([xs[5]]), local.run([xs[5]])))
    m.close()


def test_run_many_survives_a_server_restart_between_requests(sock_dir):
    address = f"unix://{sock_dir}/rm.sock"
    servers = [Emulator(EmulatorConfig(address=address, video=str(SAMPLE_CLIP))).start()]
    m = remote_model(servers[0], inflight=2)
    local = load(DEFAULT_MODEL, "tflite")
    xs = random_inputs(m.inputs[0], 6, seed=2)

    def feed():
        for i, x in enumerate(xs):
            if i == 3:  # the server goes away with requests still to send, and comes back
                servers[0].stop()
                threading.Timer(0.3, lambda: servers.append(
                    Emulator(EmulatorConfig(address=address, video=str(SAMPLE_CLIP))).start())).start()
            yield [x]

    got = list(m.run_many(feed()))
    wait_for(lambda: len(servers) == 2, what="the second server")
    servers[-1].stop()
    assert len(got) == len(xs)
    for x, outs in zip(xs, got):
        assert all(np.array_equal(a, b) for a, b in zip(outs, local.run([x])))
    assert m.health.retries >= 1 and m.health.state == "ready"


def test_emulator_keys_outputs_by_tensor_name_and_stretches_other_image_sizes(emulator):
    model = FIXTURE_MODELS / "ssd_postprocess_int8.tflite"
    local = load(model, "tflite")
    spec = local.inputs[0]
    h, w = spec.shape[1:3]
    image = np.random.default_rng(2).integers(0, 255, (1, h + 37, w * 2, 3)).astype(spec.dtype)
    req = pb.tensorflow_serving_pb2.PredictRequest()
    req.model_spec.name = str(model)
    req.inputs["anything"].CopyFrom(tensor_to_proto(image, pb))  # inputs go by order, not name
    with Endpoint(emulator.config.address).channel() as ch:
        reply = pb.tensorflow_serving_pb2_grpc.PredictionServiceStub(ch).Predict(req, timeout=30)
    assert sorted(reply.outputs) == sorted(s.name for s in local.outputs)
    stretched = cv2.resize(image[0], (w, h), interpolation=cv2.INTER_LINEAR)[None]
    for s, want in zip(local.outputs, local.run([stretched])):
        assert np.array_equal(proto_to_array(reply.outputs[s.name]).reshape(want.shape), want)


def test_power_not_available_is_retried_and_counted(sock_dir):
    cfg = EmulatorConfig(address=f"unix://{sock_dir}/p.sock", video=str(SAMPLE_CLIP), fail_loads=2)
    with Emulator(cfg) as emu:
        m = remote_model(emu)
        assert m.health.retries == 2 and m.health.state == "ready"
        assert "POWER_NOT_AVAILABLE" in m.health.last_error


def test_missing_socket_is_a_clear_error_with_its_own_exit_code(sock_dir):
    with pytest.raises(AcapRuntimeError, match="socket .* does not exist"):
        remote_model(SimpleEmu(f"unix://{sock_dir}/none.sock"), connect_timeout=0.3)


def test_cli_missing_socket_prints_one_line_and_exits_nonzero(sock_dir, small_clip):
    r = run_vigil("run", "--backend", "acap-runtime", "--source", str(small_clip), "--no-progress",
                  "--set", f"acap_runtime.address=unix://{sock_dir}/none.sock", "--set", "acap_runtime.connect_timeout=0.3")
    assert r.returncode == 5, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("vigil: inference server error:") and "does not exist" in last and "Traceback" not in r.stderr


class SimpleEmu:
    def __init__(self, address):
        self.config = EmulatorConfig(address=address)


def test_model_path_not_on_server_is_a_model_error_naming_the_path(emulator):
    with pytest.raises(ModelError, match="Failed to open model file: /models/missing.tflite"):
        remote_model(emulator, server_path="/models/missing.tflite")


def test_bare_cancelled_like_the_real_server_is_retried_then_explained(sock_dir):
    cfg = EmulatorConfig(address=f"unix://{sock_dir}/t.sock", video=str(SAMPLE_CLIP), terse_errors=True)
    with Emulator(cfg) as emu:
        with pytest.raises(ModelError, match="refused /models/missing.tflite 5 times without a reason"):
            remote_model(emu, server_path="/models/missing.tflite")


def test_model_dir_serves_models_under_slash_models(sock_dir):
    cfg = EmulatorConfig(address=f"unix://{sock_dir}/d.sock", model_dir=str(DEFAULT_MODEL.parent))
    with Emulator(cfg) as emu:
        m = remote_model(emu, server_path=f"/models/{DEFAULT_MODEL.name}")
        assert m.health.state == "ready"


def test_different_model_on_server_is_detected_by_output_names(emulator):
    with pytest.raises(ModelError, match="probably a different model"):
        remote_model(emulator, FIXTURE_MODELS / "yolov5_int8.tflite",
                     server_path=str(FIXTURE_MODELS / "ssd_postprocess_int8.tflite"))
    with pytest.raises(ModelError, match="does not match the model's uint8"):  # int8 input, uint8 model
        remote_model(emulator, BLAZEPOSE_MODEL, server_path=str(FIXTURE_MODELS / "yolov5_int8.tflite"))


def test_wrong_input_shape_is_refused_locally_and_by_the_server(emulator):
    m = remote_model(emulator)
    with pytest.raises(ModelError, match="expects shape"):
        m.run([np.zeros((1, 100, 3), m.inputs[0].dtype)])
    req = pb.tensorflow_serving_pb2.PredictRequest()
    req.model_spec.name = str(DEFAULT_MODEL)
    req.inputs["x"].CopyFrom(tensor_to_proto(np.zeros((1, 224, 224, 4), m.inputs[0].dtype), pb))

    with Endpoint(emulator.config.address).channel() as ch, pytest.raises(grpc.RpcError) as err:
        pb.tensorflow_serving_pb2_grpc.PredictionServiceStub(ch).Predict(req, timeout=30)
    assert err.value.code() == grpc.StatusCode.CANCELLED and "shape mismatch" in err.value.details()


def test_server_without_inference_service_says_to_start_it_with_a_chip(sock_dir):
    with Emulator(EmulatorConfig(address=f"unix://{sock_dir}/j.sock", chip=0)) as emu:
        with pytest.raises(ModelError, match="no inference service: start it with -j"):
            remote_model(emu)


def wait_for(condition, timeout=30.0, what="condition"):
    """Poll a condition until it holds (the tests' only waiting primitive)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_server_restart_mid_run_is_retried_and_visible_in_health(sock_dir):
    address = f"unix://{sock_dir}/r.sock"
    emu = Emulator(EmulatorConfig(address=address, video=str(SAMPLE_CLIP))).start()
    m = remote_model(emu)
    x = np.zeros(m.inputs[0].shape, m.inputs[0].dtype)
    want = m.run([x])
    emu.stop()
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("out", m.run([x])))
    t.start()
    wait_for(lambda: m.health.state == "retrying", what="the client to notice the restart")
    emu2 = Emulator(EmulatorConfig(address=address, video=str(SAMPLE_CLIP))).start()
    t.join(30)
    emu2.stop()
    assert all(np.array_equal(a, b) for a, b in zip(result["out"], want))
    assert m.health.retries >= 1 and m.health.state == "ready" and "unreachable" in m.health.last_error


def test_server_gone_for_longer_than_retry_timeout_gives_up(emulator):
    m = remote_model(emulator, policy=RetryPolicy(timeout=0.3, base_delay=0.02))
    emulator.stop()
    with pytest.raises(AcapRuntimeError, match="giving up"):
        m.run([np.zeros(m.inputs[0].shape, m.inputs[0].dtype)])
    assert m.health.state == "failed" and "unreachable" in m.health.last_error


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make a certificate")
def test_tls_with_the_server_certificate_as_root(sock_dir):
    key, cert = sock_dir / "k.pem", sock_dir / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=localhost"], check=True, capture_output=True)
    cfg = EmulatorConfig(address=f"unix://{sock_dir}/tls.sock", tls_cert=str(cert), tls_key=str(key))
    with Emulator(cfg) as emu:
        m = AcapRuntimeModel(DEFAULT_MODEL, str(DEFAULT_MODEL), Endpoint(emu.config.address, str(cert)), FAST,
                             specs=read_model(DEFAULT_MODEL).io_specs())
        assert m.health.state == "ready"
        with pytest.raises(AcapRuntimeError, match="unreachable"):  # plain text to a TLS server fails
            remote_model(emu, connect_timeout=0.5)


# -- capture ----------------------------------------------------------------------------------------
def camera_source(emu, fmt="yuv", width=768, height=576, **kw):
    cfg = CameraSourceConfig(live=False, **kw)
    cfg.stream.width, cfg.stream.height, cfg.stream.format = width, height, fmt
    return build_source(cfg, RunContext(acap=acap_cfg(emu)))


def video_frames(path, n):
    cap = cv2.VideoCapture(str(path))
    frames = [cap.read()[1] for _ in range(n)]
    cap.release()
    return frames


def test_yuv_stream_delivers_the_video_as_nv12_converted_to_bgr(emulator):
    src = camera_source(emulator)
    got = []
    for frame in src:
        got.append(frame)
        if len(got) == 3:
            break
    src.close()
    for i, (frame, want) in enumerate(zip(got, video_frames(SAMPLE_CLIP, 3))):
        assert frame.seq == i and frame.timestamp == pytest.approx(i / 10)
        assert np.array_equal(frame.image, nv12_to_bgr(bgr_to_nv12(want), 768, 576))
    assert src.size == (768, 576) and src.live is False


def test_rgb_stream_is_exact_and_scaled_streams_have_the_asked_size(emulator):
    src = camera_source(emulator, fmt="rgb")
    frame = next(iter(src))
    src.close()
    assert np.array_equal(frame.image, video_frames(SAMPLE_CLIP, 1)[0])
    src = camera_source(emulator, width=320, height=240)
    assert next(iter(src)).image.shape == (240, 320, 3)
    src.close()


def test_stream_is_deleted_on_close(emulator):
    src = camera_source(emulator)
    next(iter(src))
    assert len(emulator._streams) == 1
    src.close()
    assert emulator._streams == {}


def test_stream_ends_with_the_emulated_video(sock_dir, tmp_path):
    clip = make_clip(tmp_path / "c.avi", frames=4, size=(64, 48))
    with Emulator(EmulatorConfig(address=f"unix://{sock_dir}/e.sock", video=str(clip), pace="lockstep")) as emu:
        src = camera_source(emu, width=64, height=48)
        assert len(list(src)) == 4
        src.close()


def test_odd_nv12_stream_size_is_refused_before_asking_the_camera(emulator):
    with pytest.raises(SourceError, match="even width and height"):
        camera_source(emulator, width=321, height=240)


def test_stream_survives_a_server_restart_by_opening_a_new_stream(sock_dir):
    address = f"unix://{sock_dir}/s.sock"
    emu = Emulator(EmulatorConfig(address=address, video=str(SAMPLE_CLIP), pace="lockstep")).start()
    src = camera_source(emu, width=64, height=48)
    it = iter(src)
    seqs = [next(it).seq]
    emu.stop()
    emu2 = Emulator(EmulatorConfig(address=address, video=str(SAMPLE_CLIP), pace="lockstep")).start()
    # the old stream id is unknown to the new server (FAILED_PRECONDITION, as ACAP Runtime answers):
    # the source opens a new stream there
    for n, frame in enumerate(it):
        assert frame.image.shape == (48, 64, 3) and n < 50
        seqs.append(frame.seq)
        streams = list(emu2._streams.values())
        if streams and streams[0].index >= 2:  # frames now come from the new server
            break
    reconnects = src.snapshot().reconnects  # /api/stats frames.reconnects, vigil_source_reconnects_total
    src.close()
    emu2.stop()
    # the new stream counts from 0 again; Frame.seq carries on instead of repeating numbers
    assert seqs == sorted(set(seqs)) and len(seqs) >= 3
    assert reconnects == 1


def test_get_frame_on_an_unknown_stream_is_failed_precondition_like_acap_runtime(emulator):
    vc = pb.videocapture_pb2
    with Endpoint(emulator.config.address).channel() as ch:
        stub = pb.videocapture_pb2_grpc.VideoCaptureStub(ch)
        with pytest.raises(grpc.RpcError) as e:
            stub.GetFrame(vc.GetFrameRequest(stream_id=99, frame_reference=0), timeout=10)
        assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "Stream not found" in e.value.details()


def test_realtime_get_frame_waits_for_a_frame_not_delivered_before(sock_dir):
    """Two GetFrame calls in a row: the second waits for the camera's next frame (VDO's
    get_buffer), with the next sequence number and a timestamp one frame period later."""
    vc = pb.videocapture_pb2
    with Emulator(EmulatorConfig(address=f"unix://{sock_dir}/r.sock", video=str(SAMPLE_CLIP))) as emu:
        with Endpoint(emu.config.address).channel() as ch:
            stub = pb.videocapture_pb2_grpc.VideoCaptureStub(ch)
            sid = stub.NewStream(vc.NewStreamRequest(settings=vc.StreamSettings(
                format=3, width=64, height=48, framerate=20))).stream_id
            replies = [stub.GetFrame(vc.GetFrameRequest(stream_id=sid), timeout=10) for _ in range(4)]
    seqs = [r.sequence_nbr for r in replies]
    assert all(b > a for a, b in zip(seqs, seqs[1:])), seqs
    for a, b in zip(replies, replies[1:]):  # 20 fps: 50 ms per camera frame
        assert abs((b.timestamp - a.timestamp) - (b.sequence_nbr - a.sequence_nbr) * 50_000) <= 1


def test_frame_numbers_skip_repeats_and_count_gaps_as_dropped():
    n = FrameNumbers()
    got = [n.take(seq, 1000 + seq) for seq in (0, 1, 2, 2, 4, 7)]
    assert got == [0, 1, 2, None, 4, 7] and n.missed == 3
    n.new_stream()  # a restarted server numbers from 0 again: Frame.seq carries on
    assert [n.take(seq, 5000 + seq) for seq in (0, 1, 3)] == [8, 9, 11] and n.missed == 4
    server_without_numbers = FrameNumbers()
    assert [server_without_numbers.take(0, 0) for _ in range(3)] == [0, 1, 2]
    assert server_without_numbers.missed == 0


def test_realtime_camera_source_never_repeats_a_frame_and_counts_every_frame_it_missed(sock_dir, tmp_path):
    """A live camera source over a realtime stream, run by the pipeline to the end of the clip:
    each camera frame is processed at most once, and processed + dropped = frames the camera made
    from the first processed to the last."""
    clip = make_clip(tmp_path / "c.avi", frames=20, size=(160, 120))
    with Emulator(EmulatorConfig(address=f"unix://{sock_dir}/p.sock", video=str(clip))) as emu:
        cfg = Config()
        cfg.model.path = str(DEFAULT_MODEL)
        cfg.model.backend = "acap-runtime"
        cfg.acap_runtime = acap_cfg(emu)
        cfg.source = "acap-runtime"  # the camera source with its defaults
        cfg.source.stream.width, cfg.source.stream.height, cfg.source.stream.framerate = 320, 240, 40
        seqs = []
        summary = pipeline.run(cfg, max_frames=500, consumers=[OnFrame(lambda f, d: seqs.append(f.seq))])
    assert len(seqs) < 500  # the stream ended with the clip (2 s at 40 frames per second)
    assert all(b > a for a, b in zip(seqs, seqs[1:])), seqs
    assert summary.frames + summary.dropped == seqs[-1] - seqs[0] + 1


@pytest.mark.parametrize("fault", ["down", "inference stalled"])
def test_tracks_end_while_acap_runtime_is_down_and_the_run_waits_for_it(sock_dir, fault):
    """ACAP Runtime restarting on a camera (minutes, with a DLPU recompile), or its inference stalled
    while the camera still streams: the frame loop waits in a retried Predict or frame read, and the
    people last seen must not stay in the counts all that while. Their tracks end (reason lost) when
    the next frame would have ended them."""
    from tests.consumers import BackgroundRun

    results = []

    class Collect:
        def on_result(self, result):
            results.append(result)

        def close(self):
            pass

    emu = Emulator(EmulatorConfig(address=f"unix://{sock_dir}/d.sock", video=str(SAMPLE_CLIP))).start()
    cfg = Config()
    cfg.model.path = str(DEFAULT_MODEL)
    cfg.model.backend = "acap-runtime"
    cfg.acap_runtime = acap_cfg(emu, retry_timeout=120)
    cfg.source = "acap-runtime"
    cfg.source.stream.width, cfg.source.stream.height = 768, 576
    run = BackgroundRun(cfg, [Collect()])
    try:
        wait_until(lambda: sum(len(r.objects) for r in results if r.frame is not None) > 20, 120, 0.05,
                   "people tracked from the camera")
        if fault == "down":
            emu.stop()
        else:  # every Predict waits (the emulator serialises them under this lock, as larod does)
            emu._predict_lock.acquire()
        def ids(kind):
            return {e.after.id for r in list(results) for e in r.events if e.type == kind}

        wait_until(lambda: ids("new") and ids("end") == ids("new"), 60, 0.05,
                   "an end for every published object while ACAP Runtime is down")
        assert not run.errors and run.thread.is_alive()  # still waiting for the server, not given up
        assert {e.reason for r in results for e in r.events if e.type == "end"} == {"lost"}
        assert results[-1].frame is None and results[-1].counts["all"] == 0
    finally:
        if fault != "down":
            emu._predict_lock.release()
        run.stop(60)
        emu.stop()
    assert not run.errors


def test_missing_socket_for_capture_is_a_source_error(sock_dir):
    cfg = CameraSourceConfig()
    with pytest.raises(SourceError, match="does not exist"):
        build_source(cfg, RunContext(acap=AcapRuntimeConfig(address=f"unix://{sock_dir}/x.sock", connect_timeout=0.3)))


def test_camera_server_gone_longer_than_retry_timeout_ends_the_stream_with_a_source_error(emulator):
    """The same as an OpenCV source that fails: every frame already fetched, then the SourceError."""
    cfg = CameraSourceConfig(live=False, queue_size=2)
    cfg.stream.width, cfg.stream.height = 320, 240
    src = build_source(cfg, RunContext(acap=acap_cfg(emulator, retry_timeout=0.3)))
    try:
        frames = iter(src)
        assert next(frames).seq == 0
        emulator.stop()
        with pytest.raises(SourceError, match=r"reading a camera frame: ACAP Runtime unreachable .*; giving up "
                                              r"after 0 s \(acap_runtime.retry_timeout\)"):
            for f in frames:
                assert f.seq <= 3  # only what was queued before the server went away
    finally:
        src.close()
    assert src.health.state == "closed" and src.health.retries >= 1


def test_predict_on_a_stream_returns_a_frame_reference_for_get_frame(emulator):
    m = remote_model(emulator)
    vc = pb.videocapture_pb2
    with Endpoint(emulator.config.address).channel() as ch:
        stub = pb.videocapture_pb2_grpc.VideoCaptureStub(ch)
        sid = stub.NewStream(vc.NewStreamRequest(settings=vc.StreamSettings(format=3, width=320, height=240,
                                                                               framerate=10))).stream_id
        req = m.request([np.zeros(m.inputs[0].shape, m.inputs[0].dtype)], stream_id=sid)
        # the request tensor is ignored when stream_id is set: the server takes the stream's frame
        reply = pb.tensorflow_serving_pb2_grpc.PredictionServiceStub(ch).Predict(req, timeout=30)
        assert reply.frame_reference > 0
        frame = stub.GetFrame(vc.GetFrameRequest(stream_id=sid, frame_reference=reply.frame_reference))
        # the frame the model ran on (the first of the file); like ACAP Runtime, only data and size
        want = bgr_to_nv12(cv2.resize(video_frames(SAMPLE_CLIP, 1)[0], (320, 240), interpolation=cv2.INTER_LINEAR))
        assert frame.data == want.tobytes() and frame.size == len(want)
        assert frame.id == 0 and frame.sequence_nbr == 0 and frame.timestamp == 0
        stub.DeleteStream(vc.DeleteStreamRequest(stream_id=sid))


# -- end to end -------------------------------------------------------------------------------------
def test_camera_mode_detections_equal_in_process_on_the_same_frames(emulator):
    """YUV stream: both backends see the same NV12-converted frames and must agree exactly."""
    cfg = Config()
    cfg.model.path = str(DEFAULT_MODEL)
    local = Detector.load(cfg)
    cfg_remote = cfg.model_copy(deep=True)
    cfg_remote.model.backend = "acap-runtime"
    cfg_remote.acap_runtime = acap_cfg(emulator)
    remote = Detector.load(cfg_remote)
    src = camera_source(emulator)
    n = 0
    for frame in src:
        a, b = local(frame), remote(frame)
        assert np.array_equal(a.xyxy, b.xyxy) and np.array_equal(a.scores, b.scores)
        n += 1
        if n == 2:
            break
    src.close()


def test_vigil_camera_mode_against_the_emulator_matches_x86_mode(sock_dir, tmp_path):
    """`vigil emulator` and `vigil run --backend acap-runtime --source acap-runtime` as separate processes."""


    address = f"unix://{sock_dir}/e2e.sock"
    emu = subprocess.Popen([sys.executable, "-m", "app", "emulator", "--address", address, "--pace", "lockstep",
                            "--video", str(SAMPLE_CLIP)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           text=True)
    try:
        assert "ACAP Runtime services on" in emu.stdout.readline()
        frames = "6"
        cam = run_vigil("run", "--backend", "acap-runtime", "--device", "artpec8", "--source", "acap-runtime",
                        "--max-frames", frames, "--no-progress", "--jsonl", str(tmp_path / "cam.jsonl"),
                        "--set", f"acap_runtime.address={address}", "--set", "source.stream.width=768",
                        "--set", "source.stream.height=576", "--set", "source.stream.format=rgb",
                        "--set", "source.live=false")
        assert cam.returncode == 0, cam.stderr
    finally:
        emu.terminate()
        emu.wait(10)
    x86 = run_vigil("run", "--source", str(SAMPLE_CLIP), "--max-frames", frames, "--no-progress",
                    "--jsonl", str(tmp_path / "x86.jsonl"))
    assert x86.returncode == 0, x86.stderr
    cam_lines = (tmp_path / "cam.jsonl").read_text().splitlines()
    assert len(cam_lines) == int(frames)
    assert cam_lines == (tmp_path / "x86.jsonl").read_text().splitlines()
    assert '"objects":[{' in cam_lines[0]


def documented_emulator_runs() -> dict[str, tuple[list[str], list[str]]]:
    """{pace: (emulator argv, vigil run argv)} from the shell blocks of docs/camera.md's emulator section."""


    section = (ROOT / "docs" / "camera.md").read_text().split("## Trying it on a laptop")[1].split("\n## ")[0]
    runs = {}
    for block in re.findall(r"```sh\n(.*?)```", section, re.S):
        emu, run = [shlex.split(line.rstrip(" &")) for line in block.replace("\\\n", " ").strip().splitlines()]
        assert emu[:2] == ["vigil", "emulator"] and run[:2] == ["vigil", "run"], block
        runs[emu[emu.index("--pace") + 1] if "--pace" in emu else "realtime"] = (emu[1:], run[1:])
    return runs


@pytest.mark.parametrize("pace", ["realtime", "lockstep"])
def test_documented_emulator_commands_do_what_the_docs_say(pace, sock_dir, tmp_path):
    """realtime: each camera frame at most once, and the drop count is the frames skipped; lockstep
    (with the documented source.live=false): every frame of the file in order, none dropped."""


    emu_args, run_args = documented_emulator_runs()[pace]
    address = f"unix://{sock_dir}/doc.sock"
    emu_args[emu_args.index("--address") + 1] = address
    if pace == "realtime":  # a 2 s clip, so the live run ends with it
        emu_args[emu_args.index("--video") + 1] = str(make_clip(tmp_path / "c.avi", frames=20, size=(160, 120)))
    else:
        run_args += ["--max-frames", "4"]
    emu = subprocess.Popen([sys.executable, "-m", "app", *emu_args], cwd=ROOT, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
    try:
        assert "ACAP Runtime services on" in emu.stdout.readline()
        run = run_vigil(*run_args, "--no-progress", "--set", f"acap_runtime.address={address}", timeout=180)
    finally:
        emu.terminate()
        emu.wait(10)
    assert run.returncode == 0, run.stderr
    seqs = [json.loads(line)["seq"] for line in run.stdout.splitlines()]
    frames = int(re.search(r"vigil: (\d+) frames in", run.stderr).group(1))
    dropped = int(re.search(r"(\d+) frames dropped", run.stderr).group(1))
    assert frames == len(seqs) > 0
    if pace == "lockstep":
        assert seqs == [0, 1, 2, 3] and dropped == 0
    else:
        assert all(b > a for a, b in zip(seqs, seqs[1:])), seqs
        assert frames + dropped == seqs[-1] - seqs[0] + 1


# -- parameters ----------------------------------------------------------------------------------------
def test_camera_parameters_override_the_file_and_flags_override_them(sock_dir):
    params = {"root.Vigil.ScoreThresholdPercent": "35", "root.Vigil.Tracker": "bytetrack",
              "root.Vigil.Tiling": "no", "root.Vigil.ModelPath": ""}
    with Emulator(EmulatorConfig(address=f"unix://{sock_dir}/kv.sock", params=params)) as emu:
        args = cli.build_parser().parse_args(
            ["run", "--set", f"acap_runtime.address={emu.config.address}", "--set", "acap_runtime.parameters=true",
             "--set", "decoder.iou_threshold=0.3", "--set", "preprocess.planner.enabled=true"])
        cfg = run_options.load(args)
    assert cfg.decoder.score_threshold == 0.35 and cfg.tracker.type == "bytetrack"
    assert cfg.decoder.iou_threshold == 0.3  # not set on the camera: the flag's value
    assert cfg.preprocess.planner.enabled is True  # the flag beats the camera's "no"
    assert cfg.model.path.endswith("nanodet_int8_pertensor.tflite")  # "" keeps the configured model


def test_camera_planner_parameter_chooses_regions_and_tiling_then_sets_its_sweep(sock_dir):
    params = {"root.Vigil.Planner": "regions", "root.Vigil.Tiling": "yes"}
    with Emulator(EmulatorConfig(address=f"unix://{sock_dir}/pl.sock", params=params)) as emu:
        args = cli.build_parser().parse_args(
            ["run", "--set", f"acap_runtime.address={emu.config.address}", "--set", "acap_runtime.parameters=true"])
        cfg = run_options.load(args)
    assert cfg.preprocess.planner.type == "regions" and cfg.preprocess.planner.sweep.enabled is True
    # a config file that already chose regions, on a camera without the Planner parameter
    assert acap_params.overrides({"Tiling": "no"}, "regions") == {"preprocess.planner.sweep.enabled": False}
    assert acap_params.overrides({"Tiling": "no"}) == {"preprocess.planner.enabled": False}
    assert acap_params.overrides({"Planner": "fixed", "Tiling": "auto"}, "regions") == {
        "preprocess.planner.type": "fixed", "preprocess.planner.enabled": None}


@pytest.mark.parametrize("value, person, car", [("35", 0.40, 0.35), ("90", 0.90, 0.90), ("20", 0.20, 0.20)])
def test_camera_score_threshold_is_every_labels_unless_left_at_its_default(sock_dir, value, person, car):
    """The camera's ScoreThresholdPercent reaches people too: at its default (the config's score_threshold)
    the tuned per-label thresholds stay (person 0.40); any other value is the threshold of every label."""
    from app.config import resolve_labels
    from app.decoders import ScoreFilter

    params = {"root.Vigil.ScoreThresholdPercent": value}
    with Emulator(EmulatorConfig(address=f"unix://{sock_dir}/st.sock", params=params)) as emu:
        args = cli.build_parser().parse_args(
            ["run", "--set", f"acap_runtime.address={emu.config.address}", "--set", "acap_runtime.parameters=true"])
        cfg = run_options.load(args)
    labels = resolve_labels(cfg.model.labels, cfg.model.path)
    thresholds = ScoreFilter(cfg.decoder, labels, len(labels)).thresholds
    assert thresholds[labels.index("person")] == pytest.approx(person)
    assert thresholds[labels.index("car")] == pytest.approx(car)


def test_bad_camera_parameter_value_is_a_config_error(sock_dir):
    with pytest.raises(ConfigError, match="camera parameter Tracker: expected one of sort, bytetrack"):
        acap_params.overrides({"Tracker": "deepsort"})


def test_model_camera_and_parameter_poll_share_one_channel_closed_by_the_last_user(sock_dir, monkeypatch, caplog):
    made = []
    real_channel = Endpoint.channel
    monkeypatch.setattr(Endpoint, "channel", lambda self: made.append(self) or real_channel(self))
    caplog.set_level(logging.DEBUG, logger="app.acap.params")
    params = {"root.Vigil.Tracker": "sort"}
    with Emulator(EmulatorConfig(address=f"unix://{sock_dir}/one.sock", video=str(SAMPLE_CLIP), pace="lockstep",
                                 params=params)) as emu:
        acap = acap_cfg(emu)
        endpoint = Endpoint.from_config(acap)
        model = build_backend({"type": "acap-runtime"}, DEFAULT_MODEL, RunContext(acap=acap))
        camera = camera_source(emu)
        changes = []
        watch = acap_params.ParameterWatch(acap, {"Tracker": "sort"}, 0.02, changes.append).start()
        assert CHANNELS.users(endpoint) == 3
        wait_for(lambda: sum("read 1 camera parameters" in r.message for r in caplog.records) >= 5,
                 what="several parameter checks")
        assert len(made) == 1 and changes == []  # five polls, a model and a stream over one channel
        channel = model._client.channel
        model.close()  # the others keep the channel
        frames = iter(camera)
        assert next(frames).seq == 0
        watch.close()
        camera.close()
        assert CHANNELS.users(endpoint) == 0
        with pytest.raises(ValueError, match="Channel closed"):  # the last user closed it
            pb.keyvaluestore_pb2_grpc.KeyValueStoreStub(channel).GetValues(iter([]), timeout=1)
        # a later user gets a new one
        assert acap_params.fetch(acap) == {"Tracker": "sort"} and len(made) == 2


def test_parameter_poll_reports_a_change_once_and_survives_a_server_restart(sock_dir):
    address = f"unix://{sock_dir}/poll.sock"
    params = {"root.Vigil.Tracker": "sort"}
    acap = acap_cfg(address, timeout=1)
    changed, seen = [], threading.Event()
    emu = Emulator(EmulatorConfig(address=address, params=params)).start()
    watch = acap_params.ParameterWatch(acap, {"Tracker": "sort"}, 0.05,
                                       lambda names: (changed.append(names), seen.set())).start()
    try:
        emu.stop()  # checks meanwhile find no server: skipped, not fatal
        params["root.Vigil.Tracker"] = "bytetrack"
        emu = Emulator(EmulatorConfig(address=address, params=params)).start()
        assert seen.wait(30)
        assert changed == [["Tracker"]]
    finally:
        watch.close()
        emu.stop()
    assert CHANNELS.users(Endpoint(address)) == 0


# -- health over HTTP --------------------------------------------------------------------------------
def test_api_health_shows_start_up_and_a_server_restart_instead_of_exiting(sock_dir):
    """Vigil started before ACAP Runtime (a camera booting): the API answers at once and says what it
    waits for; when the server comes up frames flow and health turns ok; a restart shows as retrying."""


    address = f"unix://{sock_dir}/late.sock"
    port = free_port()
    cfg = load_config(None, {
        "model": {"backend": "acap-runtime", "path": str(DEFAULT_MODEL)},
        "source": {"type": "acap-runtime", "stream": {"width": 320, "height": 240, "format": "rgb", "framerate": 10}},
        "acap_runtime": {"address": address, "connect_timeout": 0, "retry_timeout": 0},
        "preprocess.planner.enabled": False,
        "output.progress": False,
        "api": {"enabled": True, "port": port},
    }, env={})
    stop, frames, errors = threading.Event(), [], []

    def target():
        try:
            pipeline.run(cfg, stop=stop, consumers=[OnFrame(lambda f, d: frames.append(f.seq))])
        except BaseException as e:  # surfaced below
            errors.append(e)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5)

    def health():
        try:
            r = client.get("/api/health")
        except httpx.TransportError:
            return None
        assert r.status_code == 200, r.text  # degraded while waiting, never failing
        return r.json()

    def backend_says(*words):
        h = health()
        return h is not None and all(w in h["components"]["backend"]["detail"] for w in words)

    emu_cfg = EmulatorConfig(address=address, video=str(SAMPLE_CLIP), loop=True)
    emu = None
    try:
        wait_until(lambda: backend_says("model retrying", "unreachable", "does not exist"), 30, 0.05,
                   "health to say the model waits for a missing server")
        h = health()
        assert h["status"] == "degraded" and "not open yet" in h["components"]["source"]["detail"]
        assert client.post("/api/counts/reset").status_code in (404, 503)  # nothing to reset yet
        for path in ("/api/stats", "/api/metrics", "/api/tracks", "/api/events", "/api/counts", "/api/latest.jpg", "/"):
            assert client.get(path).status_code in (200, 404), path  # answers while starting, never a 5xx
        emu = Emulator(emu_cfg).start()
        wait_until(lambda: len(frames) >= 3 and health()["status"] == "ok", 60, 0.05, "frames and ok health")
        assert client.get("/api/stats").json()["model_threads"] is None  # the server runs the model, not ours
        emu.stop()
        wait_until(lambda: health()["status"] == "degraded", 60, 0.05, "health to show the outage")
        assert not errors and thread.is_alive()
        emu = Emulator(emu_cfg).start()
        n = len(frames)
        wait_until(lambda: len(frames) >= n + 3 and health()["status"] == "ok", 60, 0.05, "recovery")
    finally:
        stop.set()
        thread.join(30)
        if emu is not None:
            emu.stop()
        client.close()
    assert not errors, errors


def test_stop_while_waiting_for_the_server_ends_the_run_cleanly(sock_dir):
    """SIGTERM (`docker stop`) during a wait that would last forever: run() returns, no error."""
    cfg = load_config(None, {
        "model": {"backend": "acap-runtime", "path": str(DEFAULT_MODEL)},
        "source": {"type": "acap-runtime"},
        "acap_runtime": {"address": f"unix://{sock_dir}/never.sock", "connect_timeout": 0},
        "output.progress": False,
    }, env={})
    stop, result = threading.Event(), {}
    thread = threading.Thread(target=lambda: result.setdefault("summary", pipeline.run(cfg, stop=stop)), daemon=True)
    thread.start()
    thread.join(1.0)
    assert thread.is_alive()  # still waiting for the server, as configured
    stop.set()
    thread.join(5)
    assert not thread.is_alive() and result["summary"].frames == 0


class _Events:
    """Every event type of a run, frames included or not (the end of the run comes without a frame)."""

    def __init__(self) -> None:
        self.frames, self.types = 0, []

    def on_result(self, result) -> None:
        self.frames += result.frame is not None
        self.types += [e.type for e in result.events]

    def close(self) -> None:
        pass


def _camera_run(address: str, events: _Events, timeout: float = 10.0):
    from tests.consumers import BackgroundRun

    cfg = load_config(None, {
        "model": {"backend": "acap-runtime", "path": str(DEFAULT_MODEL)},
        "source": {"type": "acap-runtime", "stream": {"width": 768, "height": 576, "framerate": 10}},
        "acap_runtime": {"address": address, "connect_timeout": 30, "retry_timeout": 0, "timeout": timeout},
        "output.progress": False,
    }, env={})
    return BackgroundRun(cfg, [events])


def test_stop_while_the_server_is_down_mid_run_is_a_normal_stop_with_end_events(sock_dir, monkeypatch):
    """SIGTERM (`docker stop`) while ACAP Runtime is away: the run ends as a stop, not as an inference
    server error (exit 5), and the tracks open when the server went away get their end events."""
    from app.acap import emulator

    going, caught, released = threading.Event(), threading.Event(), threading.Event()
    predict = emulator._Prediction.Predict

    def predict_then_die(self, request, context):
        if going.is_set():  # the server goes away with this frame's Predict in flight
            caught.set()
            released.wait(30)
        return predict(self, request, context)

    monkeypatch.setattr(emulator._Prediction, "Predict", predict_then_die)
    address = f"unix://{sock_dir}/down.sock"
    emu = Emulator(EmulatorConfig(address=address, video=str(SAMPLE_CLIP), loop=True)).start()
    events = _Events()
    run = _camera_run(address, events)
    try:
        wait_until(lambda: events.types.count("new") >= 2, 60, 0.05, "tracks")
        going.set()
        assert caught.wait(10)
    finally:
        emu.stop()
        released.set()
    time.sleep(1.0)  # that Predict and the camera stream now retrying
    run.stop(30)
    assert not run.thread.is_alive()
    assert not run.errors, run.errors
    assert events.types.count("end") == events.types.count("new")
    assert run.summary.frames > 0 and run.summary.seconds > 1.0  # the summary's rate counts that time too


def test_stop_while_the_server_is_stalled_does_not_wait_for_call_deadlines(sock_dir, monkeypatch):
    """A server that accepts calls and never answers (stalled): a stop ends the run at once, not after
    the calls' deadlines (acap_runtime.timeout, 10 s by default, for the frame read and again for
    DeleteStream)."""
    from app.acap import emulated_camera, emulator

    stalled, released = threading.Event(), threading.Event()

    def stalling(fn):
        def call(*args):
            if stalled.is_set():
                released.wait(60)
            return fn(*args)
        return call

    # the camera, Predict and DeleteStream all stop answering, as with a frozen server process
    monkeypatch.setattr(emulated_camera.EmulatedStream, "next_frame", stalling(emulated_camera.EmulatedStream.next_frame))
    monkeypatch.setattr(emulator._Prediction, "Predict", stalling(emulator._Prediction.Predict))
    monkeypatch.setattr(emulator._VideoCapture, "DeleteStream", stalling(emulator._VideoCapture.DeleteStream))
    address = f"unix://{sock_dir}/stall.sock"
    emu = Emulator(EmulatorConfig(address=address, video=str(SAMPLE_CLIP), loop=True)).start()
    events = _Events()
    # call deadlines of 120 s: a stop that waited for them would still be running when run.stop gives up
    run = _camera_run(address, events, timeout=120.0)
    try:
        wait_until(lambda: events.types.count("new") >= 2, 60, 0.05, "tracks")
        stalled.set()
        time.sleep(1.0)  # the capture thread now waits in GetFrame
        run.stop(30)
        stopped = not run.thread.is_alive()
    finally:
        released.set()
        emu.stop()
    assert stopped, "the stop waited for the stalled server's call deadlines"
    assert not run.errors, run.errors
    assert events.types.count("end") == events.types.count("new")


def test_changed_camera_parameter_restarts_vigil_with_the_new_value(sock_dir, tmp_path):
    """A setting changed in the camera's web page is applied: Vigil notices, stops cleanly and starts
    again (same process, re-executed) with the new value; SIGTERM then ends it normally. The restarted
    run adds to the JSON Lines file and writes its video beside the first one's, losing neither."""
    jsonl, video = tmp_path / "run.jsonl", tmp_path / "run.mp4"
    params = {"root.Vigil.ScoreThresholdPercent": "35", "root.Vigil.Tiling": "no"}
    emu = Emulator(EmulatorConfig(address=f"unix://{sock_dir}/pw.sock", video=str(SAMPLE_CLIP), loop=True,
                                  params=params)).start()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "run", "--backend", "acap-runtime", "--source", "acap-runtime", "--no-progress",
         "--set", f"acap_runtime.address={emu.config.address}", "--set", "acap_runtime.parameters=true",
         "--set", "acap_runtime.parameter_poll=0.2", "--set", "source.stream.width=320",
         "--set", "source.stream.height=240", "--set", "log_level=debug", "--jsonl", str(jsonl),
         "--save-video", str(video)],
        cwd=ROOT, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)
    reader.start()

    def seen(text, times=1):
        return sum(text in line for line in lines) >= times

    try:
        wait_until(lambda: seen("score_threshold") or seen("1 model run"), 60, 0.05, "the first start")
        assert not seen("camera parameters changed")  # nothing changed: no restart
        # values the config cannot take (not a tiling choice; a threshold over 100 %): one warning each,
        # and Vigil runs on with its settings instead of restarting into a config error and exiting
        params["root.Vigil.Tiling"] = "maybe"
        wait_until(lambda: seen("camera parameters changed (Tiling) but are not applied"), 30, 0.05, "the refusal")
        params["root.Vigil.Tiling"] = "no"
        params["root.Vigil.ScoreThresholdPercent"] = "150"
        wait_until(lambda: seen("(ScoreThresholdPercent) but are not applied"), 30, 0.05, "the second refusal")
        polls = sum("read 2 camera parameters" in line for line in lines)
        wait_until(lambda: seen("read 2 camera parameters", polls + 3), 30, 0.05, "more checks")
        assert sum("not applied" in line for line in lines) == 2 and not seen("starting again")
        assert proc.poll() is None
        params["root.Vigil.ScoreThresholdPercent"] = "60"
        wait_until(lambda: seen("starting again to apply them"), 30, 0.05, "the restart")
        first_run = jsonl.read_text().splitlines()  # the first run has closed its files
        wait_until(lambda: seen("1 model run", 2), 60, 0.05, "the second start")
        assert proc.poll() is None  # still running: restarted in place, not exited
        assert seen("camera parameters changed (ScoreThresholdPercent)")
        # the second run was built from the new values: further checks find nothing to apply
        polls = sum("read 2 camera parameters" in line for line in lines)
        wait_until(lambda: seen("read 2 camera parameters", polls + 3), 30, 0.05, "more checks")
        assert sum("starting again" in line for line in lines) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        reader.join(5)
        emu.stop()
    assert code == 0, "".join(lines[-20:])
    records = jsonl.read_text().splitlines()
    assert first_run and len(records) > len(first_run) and records[:len(first_run)] == first_run
    for path in (video, tmp_path / "run.2.mp4"):
        cap = cv2.VideoCapture(str(path))
        assert cap.read()[0], f"{path.name} has no frames"
        cap.release()

"""The .proto sources and the modules generated from them (never committed, built on demand)."""
from __future__ import annotations

import importlib

from app import protos


def test_generated_modules_are_keyed_by_a_hash_of_the_proto_sources(tmp_path):
    out = protos.generate(tmp_path)
    assert (out / protos.STAMP).read_text().strip() == protos.digest()
    assert protos._current(out, protos.digest())
    assert not protos._current(out, "0" * 64)  # an edited .proto makes old modules stale
    for name in protos.PROTO_NAMES:
        assert (out / f"{name}_pb2.py").is_file()


def test_loaded_modules_expose_the_three_acap_runtime_services():
    pb = protos.load()
    assert pb.tensorflow_serving_pb2.DESCRIPTOR.services_by_name["PredictionService"].full_name == \
        "tensorflow.serving.PredictionService"
    assert pb.videocapture_pb2.DESCRIPTOR.services_by_name["VideoCapture"].full_name == "videocapture.v1.VideoCapture"
    kv = pb.keyvaluestore_pb2.DESCRIPTOR.services_by_name["KeyValueStore"].methods_by_name["GetValues"]
    assert kv.client_streaming and kv.server_streaming  # bidirectional, as Axis defines it
    assert importlib.import_module("app.protos.videocapture_pb2") is pb.videocapture_pb2


def test_field_numbers_follow_the_public_definitions():
    pb = protos.load()
    fields = lambda msg: {f.name: f.number for f in msg.DESCRIPTOR.fields}  # noqa: E731
    assert fields(pb.tensorflow_pb2.TensorProto)["tensor_content"] == 4
    assert fields(pb.tensorflow_pb2.TensorShapeProto) == {"dim": 2, "unknown_rank": 3}
    assert fields(pb.tensorflow_serving_pb2.ModelSpec) == {"name": 1, "version": 2, "signature_name": 3}
    assert fields(pb.tensorflow_serving_pb2.PredictRequest) == {"model_spec": 1, "inputs": 2, "output_filter": 3,
                                                               "stream_id": 10}
    assert fields(pb.tensorflow_serving_pb2.PredictResponse) == {"outputs": 1, "model_spec": 2, "frame_reference": 10}
    assert fields(pb.videocapture_pb2.GetFrameResponse) == {"id": 1, "type": 2, "size": 3, "timestamp": 4,
                                                           "custom_timestamp": 5, "sequence_nbr": 6, "data": 7}
    assert pb.tensorflow_pb2.DT_UINT8 == 4 and pb.tensorflow_pb2.DT_INT8 == 6 and pb.tensorflow_pb2.DT_UINT32 == 22

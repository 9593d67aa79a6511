"""Inference on the camera's DLPU through ACAP Runtime's Predict, behind the Model protocol.

The server (`tensorflow.serving.PredictionService/Predict`, backed by larod) knows the model
only by its path inside the inference-server container and returns outputs keyed by TFLite
tensor name. The tensor specs come from the caller (read from the same .tflite locally), so
decoders see exactly what the TFLite backend gives; every reply is checked against them.
"""
from __future__ import annotations

import collections
import logging
import threading
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import grpc
import numpy as np

from app.acap.chips import chip_id  # noqa: F401 - where its callers found it
from app.acap.client import AcapClient, Endpoint, bare_cancelled
from app.acap.tensors import proto_to_array, tensor_to_proto
from app.modelfile import TensorSpec
from app.errors import ModelError
from app.health import Health
from app.retry import RetryPolicy

log = logging.getLogger(__name__)

class AcapRuntimeModel:
    """A model served by ACAP Runtime behind the Model protocol; `specs` = (inputs, outputs) of the
    local copy of the model file."""

    def __init__(
        self,
        path: Path,
        server_path: str,
        endpoint: Endpoint,
        policy: RetryPolicy,
        *,
        specs: tuple[list[TensorSpec], list[TensorSpec]],
        connect_timeout: float = 120.0,
        load_timeout: float = 300.0,
        timeout: float = 10.0,
        chip: int = 12,
        inflight: int = 2,
        health: Health | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        self.path = path
        self.server_path = server_path
        self.endpoint = endpoint
        self.chip = chip
        self.inputs, self.outputs = specs
        self.load_timeout = load_timeout
        self.timeout = timeout
        self.inflight = max(1, inflight)
        self._stop = threading.Event()
        self._client = AcapClient(endpoint, policy, health, stops=(self._stop, cancel))
        self.health = self._client.health
        self.pb = self._client.pb
        self._loaded = False
        self._predict = self.pb.tensorflow_serving_pb2_grpc.PredictionServiceStub(self._client.channel).Predict
        try:
            self._warm_up(connect_timeout)
        except BaseException:
            self.close()
            raise

    # -- Model protocol -------------------------------------------------------------------
    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Send the inputs, wait for the outputs (retrying while the server is away), in spec order."""
        request = self.request(inputs)
        response = self._call(request, self._client.policy.timeout, "Predict", "acap_runtime.retry_timeout")
        return self.outputs_from(response)

    def run_many(self, batches: Iterable[Sequence[np.ndarray]]) -> Iterator[list[np.ndarray]]:
        """Outputs of each input list in order, keeping up to `inflight` requests at the server.

        The server runs one request at a time, so the next one's serialisation and transfer
        overlap this one's inference, and its reply travels while the caller decodes. A request
        that fails is retried on its own, in order, like run().
        """
        todo = iter(batches)
        pending: collections.deque = collections.deque()

        def submit() -> None:
            for inputs in todo:
                request = self.request(inputs)
                deadline = self.timeout if self._loaded else self.load_timeout
                pending.append((request, self._predict.future(request, timeout=deadline)))
                return

        try:
            for _ in range(self.inflight):
                submit()
            while pending:
                request, future = pending.popleft()
                try:  # a close or SIGTERM cancels the request rather than wait out a stalled server
                    response = self._answered(self._client.result(future, "Predict"))
                except grpc.RpcError:  # server away or busy: the retrying path, one request at a time
                    response = self._call(request, self._client.policy.timeout, "Predict",
                                          "acap_runtime.retry_timeout")
                submit()
                yield self.outputs_from(response)
        finally:
            for _, future in pending:  # the caller stopped early
                future.cancel()

    # -- pieces (also used by the benchmark) -------------------------------------------------
    def request(self, inputs: Sequence[np.ndarray], stream_id: int = 0):
        """A PredictRequest for these inputs, checked against the local model's specs first."""
        if len(inputs) != len(self.inputs):
            raise ModelError(f"model takes {len(self.inputs)} inputs, got {len(inputs)}")
        req = self.pb.tensorflow_serving_pb2.PredictRequest(stream_id=stream_id)
        req.model_spec.name = self.server_path
        for spec, x in zip(self.inputs, inputs):
            if x.dtype != spec.dtype:
                raise ModelError(f"input {spec.name!r} expects {spec.dtype}, got {x.dtype}")
            if x.size != int(np.prod(spec.shape)):
                raise ModelError(f"input {spec.name!r} expects shape {list(spec.shape)}, got {list(x.shape)}")
            req.inputs[spec.name].CopyFrom(tensor_to_proto(x.reshape(spec.shape), self.pb))
        return req

    def outputs_from(self, response) -> list[np.ndarray]:
        """The response's tensors in the local model's output order, checked against the specs."""
        got = response.outputs
        missing = [s.name for s in self.outputs if s.name not in got]
        if missing:
            raise ModelError(
                f"inference server returned outputs {sorted(got)} but {self.path.name} has {[s.name for s in self.outputs]}: "
                f"model.backend.server_path ({self.server_path}) is probably a different model"
            )
        out = []
        for spec in self.outputs:
            a = proto_to_array(got[spec.name])
            if a.dtype != spec.dtype or a.size != int(np.prod(spec.shape)):
                raise ModelError(
                    f"output {spec.name!r}: server sent {a.dtype} {list(a.shape)}, model file says "
                    f"{spec.dtype} {list(spec.shape)}: model.backend.server_path is probably a different model"
                )
            out.append(a.reshape(spec.shape))
        return out

    def close(self) -> None:
        """Stop any retry in progress and release the connection."""
        self._stop.set()
        self.health.set("closed")
        self._client.close()

    # -- internals -----------------------------------------------------------------------
    def _warm_up(self, connect_timeout: float) -> None:
        """One Predict on zeros: loads (and on a DLPU compiles) the model now, not on the first frame."""
        zeros = [np.zeros(s.shape, s.dtype) for s in self.inputs]
        self.health.set("connecting")
        log.info("loading %s on ACAP Runtime at %s (chip %d; a DLPU compile can take minutes)",
                 self.server_path, self.endpoint.address, self.chip)
        response = self._call(self.request(zeros), connect_timeout, "loading the model",
                              "acap_runtime.connect_timeout")
        self.outputs_from(response)
        log.info("%s ready on the inference server", self.server_path)

    def _call(self, request, limit: float, what: str, setting: str):
        def once():
            deadline = self.timeout if self._loaded else self.load_timeout
            if not self._loaded:
                self.health.set("loading" if self.health.state != "retrying" else "retrying")
            try:
                response = self._client.result(self._predict.future(request, timeout=deadline),
                                               f"{what} ({self.server_path})")
            except grpc.RpcError:
                self._loaded = False  # a restarted server loads (and compiles) the model again
                raise
            self._loaded = True
            return response

        client = self._client
        try:
            response = client.call(f"{what} ({self.server_path})", once, timeout=limit, setting=setting)
        except grpc.RpcError as e:
            self.health.set("failed", client.describe(e))
            if bare_cancelled(e):
                raise ModelError(
                    f"ACAP Runtime refused {self.server_path} {client.cancelled_attempts} times without "
                    "a reason: check that this path exists inside the inference-server container "
                    "(model.backend.server_path), that the model's input matches, and the server's log"
                ) from None
            if e.code() == grpc.StatusCode.UNIMPLEMENTED:
                raise ModelError(
                    f"ACAP Runtime at {self.endpoint.address} has no inference service: start it with -j <chip id> "
                    f"(here {self.chip})"
                ) from None
            raise ModelError(f"inference server rejected {self.server_path}: {client.describe(e)}") from None
        return self._answered(response)

    def _answered(self, response):
        self.health.set("ready")
        return response

"""Frames in flight (app/inflight.py): with several interpreters the model runs several frames at once,
and the run's output is the same, frame for frame, as with one; errors of a frame reach the run in its
place; a planner that follows the tracks keeps one frame at a time."""
import threading

import pytest

from app import pipeline
from app.config import load_config
from app.detector import Detector
from app.errors import ModelError
from tests.conftest import ROOT, SAMPLE_CLIP

FRAMES = 120


def run_clip(tmp_path, name: str, keys: dict, detector=None, frames: int = FRAMES):
    out = tmp_path / f"{name}.jsonl"
    cfg = load_config(ROOT / "config" / "default.yaml", {"output.jsonl": str(out), "output.progress": False,
                                                          "source.uri": str(SAMPLE_CLIP), **keys}, env={})
    summary = pipeline.run(cfg, max_frames=frames, detector=detector)
    return summary, out.read_bytes()


def test_two_interpreters_give_the_same_output_as_one_frame_for_frame(tmp_path):
    seen: set[str] = set()

    class Watch:  # which threads ran the model: the frames really were in flight at once
        def __init__(self, model):
            self.model = model
            self.inputs, self.outputs = model.inputs, model.outputs
            self.threads, self.interpreters = model.threads, model.interpreters

        def run(self, inputs):
            seen.add(threading.current_thread().name)
            return self.model.run(inputs)

        def run_many(self, batches):
            return (self.run(b) for b in batches)

        def close(self):
            pass

    one_summary, one = run_clip(tmp_path, "one", {"model.backend.interpreters": 1, "model.backend.threads": 1})
    cfg = load_config(None, {"model.backend.interpreters": 2, "model.backend.threads": 1}, env={})
    detector = Detector.load(cfg)
    detector.model = Watch(detector.model)
    two_summary, two = run_clip(tmp_path, "two", {}, detector=detector)
    assert one_summary.frames == two_summary.frames == FRAMES
    assert b'"track_id"' in one and one == two  # every record, in order, byte for byte
    assert len({n for n in seen if n.startswith("infer")}) == 2, seen
    assert two_summary.stages["detect"]["count"] == FRAMES


def test_an_error_of_the_model_on_a_frame_in_flight_ends_the_run_with_it(tmp_path):
    cfg = load_config(None, {"model.backend.interpreters": 2, "model.backend.threads": 1}, env={})
    detector = Detector.load(cfg)
    real, calls = detector.model.run, []

    def run(inputs):
        calls.append(1)
        if len(calls) == 30:
            raise ModelError("the model failed on this frame")
        return real(inputs)

    detector.model.run = run
    with pytest.raises(ModelError, match="the model failed on this frame"):
        run_clip(tmp_path, "bad", {}, detector=detector)
    records = (tmp_path / "bad.jsonl").read_text().splitlines()
    assert 25 <= len(records) <= 29  # the frames before it were handed on in order; none after it


def test_a_planner_that_follows_the_tracks_gets_one_interpreter_with_every_thread(tmp_path):
    cfg = load_config(None, {"preprocess.planner.type": "regions"}, env={})
    detector = Detector.load(cfg)
    assert detector.model.interpreters == 1
    fixed = Detector.load(load_config(None, {}, env={}))
    assert detector.model.threads == fixed.model.threads * fixed.model.interpreters
    summary, out = run_clip(tmp_path, "regions", {"preprocess.planner.type": "regions"}, detector=detector, frames=40)
    assert summary.frames == 40 and out.count(b"\n") == 40

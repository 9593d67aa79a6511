"""Sinks take each processed Frame with its tracked Detections: JSON Lines, annotated video or image."""
from __future__ import annotations

from typing import Protocol

from app.types import Detections, Frame


class OutputClosed(Exception):
    """The reader of an output went away (a closed pipe, e.g. `vigil run --jsonl - | head`): the run
    ends as at the end of its source, not as a failure."""


class Sink(Protocol):
    def write(self, frame: Frame, dets: Detections) -> None: ...

    def close(self) -> None: ...


def record(frame: Frame, dets: Detections, labels: list[str]) -> dict:
    """The JSON-ready record of one frame: time, sequence, size and tracked objects."""
    objects = []
    for box, score, cls, tid in zip(dets.xyxy.tolist(), dets.scores.tolist(), dets.class_ids.tolist(), dets.track_ids.tolist()):
        objects.append(
            {
                "track_id": tid,
                "class_id": cls,
                "label": labels[cls] if 0 <= cls < len(labels) else str(cls),
                "score": round(score, 4),
                "box": [round(v, 1) for v in box],
            }
        )
    return {"seq": frame.seq, "timestamp": round(frame.timestamp, 4), "frame_size": list(frame.size), "objects": objects}

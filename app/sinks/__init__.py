"""Sinks write each frame's published objects to files: JSON Lines, annotated video or image.

A sink is a consumer of FrameResults (app.worker.Consumer): on_result for every result, close at
the end. Results without a frame (the end of the run, a reset) have nothing to write.
"""
from __future__ import annotations

from app.types import Detections, Frame


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

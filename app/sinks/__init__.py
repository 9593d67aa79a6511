"""Sinks write each frame's published objects to files: JSON Lines, annotated video or image.

A sink is a consumer of FrameResults (app.worker.Consumer): on_result for every result, close at
the end. Results without a frame (the end of the run, a reset) have nothing to write.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from app.errors import ConfigError
from app.labels import label_name
from app.types import Detections, Frame


def check_outputs(outputs: Mapping[str, str | None], inputs: Mapping[str, str | None]) -> None:
    """ConfigError when an output file is one of the run's input files or another output: opening it
    for writing would destroy it (`--source clip.mp4 --jsonl clip.mp4`)."""
    named = [(key, path) for key, path in outputs.items() if path and path != "-"]
    for i, (key, path) in enumerate(named):
        clash = [other for other, used in inputs.items() if used and _same_file(path, used)]
        clash += [other for other, used in named[:i] if Path(path).resolve() == Path(used).resolve()]
        if clash:
            raise ConfigError(f"{key}: {path} is also {clash[0]}; writing it would destroy it, name another file")


def _same_file(a: str, b: str) -> bool:
    """Both name one existing file (under any name: a relative path, a link)."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):  # one does not exist (a URL, a camera index, an output not written yet)
        return False


def record(frame: Frame, dets: Detections, labels: list[str]) -> dict:
    """The JSON-ready record of one frame: time, sequence, size and tracked objects."""
    objects = []
    for box, score, cls, tid in zip(dets.xyxy.tolist(), dets.scores.tolist(), dets.class_ids.tolist(),
                                    dets.track_ids.tolist()):  # boxes inside the frame (FrameResult.objects)
        objects.append(
            {
                "track_id": tid,
                "class_id": cls,
                "label": label_name(labels, cls),
                "score": round(score, 4),
                "box": [round(v, 1) for v in box],
            }
        )
    return {"seq": frame.seq, "timestamp": round(frame.timestamp, 4), "frame_size": list(frame.size), "objects": objects}


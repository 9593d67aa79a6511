"""The run's file outputs as the config names them: JSON Lines and the annotated video or image."""
from __future__ import annotations

from app.sinks import check_outputs
from app.sinks.jsonl import JsonlSink


def file_outputs(cfg, labels: list[str], fps: float | None) -> tuple[list, list[str]]:
    """The configured file outputs and a description of where each writes."""
    from app.sinks.video import VideoSink  # cv2's writer: imported only when a video is asked for

    files_in = {**cfg.source.inputs(), "model.path": cfg.model.path,
                "model.labels": cfg.model.labels if isinstance(cfg.model.labels, str) else None,
                "state.file": cfg.state.file}
    check_outputs({"output.jsonl": cfg.output.jsonl, "output.video": cfg.output.video}, files_in)
    sinks: list = []
    where = []
    if cfg.output.jsonl:
        sinks.append(JsonlSink(cfg.output.jsonl, labels, cfg.output.append))
        where.append("stdout (JSON Lines)" if cfg.output.jsonl == "-" else f"{cfg.output.jsonl} (JSON Lines)")
    if cfg.output.video:
        sinks.append(VideoSink(cfg.output.video, labels, fps))
        where.append(f"{cfg.output.video} (annotated)")
    return sinks, where

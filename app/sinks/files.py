"""The run's file outputs as the config names them: none may destroy an input or another output."""
from __future__ import annotations

from app.sinks import check_outputs


def check_file_outputs(cfg) -> None:
    """ConfigError when output.jsonl or output.video names one of the run's input files or the other
    output (each file output checks before it opens its file)."""
    files_in = {**cfg.source.inputs(), "model.path": cfg.model.path,
                "model.labels": cfg.model.labels if isinstance(cfg.model.labels, str) else None,
                "state.file": cfg.state.file}
    check_outputs({"output.jsonl": cfg.output.jsonl, "output.video": cfg.output.video}, files_in)

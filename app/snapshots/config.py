"""Configuration of object snapshots (kept free of cv2 so loading a config stays cheap)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SnapshotMqttConfig(_Model):
    enabled: bool = Field(
        False, description="publish the best view of each object, retained, to <prefix>/<label>/snapshot and "
                           "<prefix>/all/snapshot (Frigate's topic; JPEG bytes)")
    crop: bool = Field(True, description="publish the crop (true) or the full frame with the box drawn (false)")
    height: int = Field(270, ge=16, le=2160, description="image height in pixels (never more than the snapshot's own)")
    quality: int = Field(70, ge=1, le=100, description="JPEG quality of the published image")
    max_bytes: int = Field(
        150_000, ge=1_000, le=10_000_000,
        description="largest payload; a bigger image is encoded again at lower quality, then skipped")


class SnapshotsConfig(_Model):
    enabled: bool = Field(
        False, description="keep the best view of every published object as a JPEG crop and a full frame with the "
                           "box drawn (GET /api/events/<id>/snapshot.jpg, has_snapshot in events)")
    dir: str | None = Field(
        None, description="directory for the snapshot files; default: 'snapshots' beside state.file; with neither, "
                          "snapshots are kept in memory only")
    labels: list[str] = Field([], description="labels that get snapshots; empty: every label")
    margin: float = Field(0.25, ge=0.0, le=2.0, description="crop margin around the box, as a fraction of its size")
    quality: int = Field(80, ge=1, le=100, description="JPEG quality of the stored files")
    interval: float = Field(
        1.0, ge=0.0, le=3600.0,
        description="seconds between encodes of one object's view: a better view within them waits (JPEG costs CPU)")
    improvement: float = Field(
        0.1, ge=0.0, le=10.0,
        description="how much better (fraction of the view quality) a view must be to replace the kept one")
    max_count: int = Field(1000, ge=1, le=1_000_000, description="snapshots kept on disk; the oldest are removed first")
    max_bytes: int = Field(100_000_000, ge=100_000, description="bytes of snapshot files on disk; the oldest go first")
    memory_count: int = Field(100, ge=1, le=100_000, description="snapshots kept in memory (the newest)")
    memory_bytes: int = Field(16_000_000, ge=100_000, description="bytes of snapshots kept in memory")
    mqtt: SnapshotMqttConfig = Field(default_factory=SnapshotMqttConfig, description="snapshots over MQTT")

"""Object snapshots: which view is kept, the bounds in memory and on disk, and the cost on the sample clip."""
import os

import cv2
import numpy as np
import pytest

from app import pipeline
from app.config import load_config
from app.snapshots import SnapshotsConfig, open_store
from app.snapshots.consumer import Snapshots, crop_box
from app.snapshots.quality import view_quality
from app.snapshots.serve import sized
from app.snapshots.store import Snapshot, SnapshotStore
from app.events import Event
from app.types import Detections, Frame, FrameResult
from tests.event_util import EventLog, event as make_event
from tests.test_mqtt import FAST, SCENE

SIZE = (640, 480)


def test_a_bigger_view_is_better_and_a_view_cut_by_the_frame_edge_is_worse():
    def q1(box, score=0.8):
        return view_quality([box], [score], SIZE)[0]

    q = [q1([100, 100, 140, 180]), q1([100, 100, 180, 260]), q1([0, 100, 80, 260])]
    assert q[1] > q[0]  # more pixels of the object
    assert q[2] < q[1]  # same size, but runs off the left edge
    assert q1([100, 100, 140, 180], 0.4) < q[0]  # less sure


def test_a_view_hidden_behind_a_nearer_object_is_worse_but_the_nearer_one_is_not():
    alone = view_quality([[100, 100, 160, 220]], [0.8], SIZE)[0]
    # the second box's bottom is lower in the image: it is nearer the camera, in front of the first
    q = view_quality([[100, 100, 160, 220], [130, 110, 190, 260]], [0.8, 0.8], SIZE)
    assert q[0] < 0.6 * alone
    assert q[1] == pytest.approx(view_quality([[130, 110, 190, 260]], [0.8], SIZE)[0])


def test_the_crop_has_its_margin_and_stays_in_the_frame():
    assert crop_box([100, 100, 140, 180], SIZE, 0.25) == (90, 80, 150, 200)
    assert crop_box([0, 0, 40, 80], SIZE, 0.25) == (0, 0, 50, 100)
    assert crop_box([620, 400, 640, 480], SIZE, 0.5) == (610, 360, 640, 480)


def snap(n: int = 1000) -> Snapshot:
    return Snapshot(b"c" * n, b"f" * n, (1, 1), (1, 1))


def test_disk_keeps_at_most_max_count_snapshots_and_removes_the_oldest_first(tmp_path):
    store = SnapshotStore(tmp_path, max_count=3, max_bytes=10**9, memory_count=100, memory_bytes=10**9)
    for i in range(5):
        store.put(f"r-{i}", snap())
        store.persist(f"r-{i}")
    files = sorted(os.listdir(tmp_path))
    assert files == ["r-2.full.jpg", "r-2.jpg", "r-3.full.jpg", "r-3.jpg", "r-4.full.jpg", "r-4.jpg"]
    assert store.usage()["disk_count"] == 3 and store.removed == 2


def test_disk_keeps_at_most_max_bytes(tmp_path):
    store = SnapshotStore(tmp_path, max_count=100, max_bytes=5000, memory_count=1, memory_bytes=10**9)
    for i in range(5):
        store.put(f"r-{i}", snap(1000))  # 2000 bytes each
        store.persist(f"r-{i}")
    assert store.usage()["disk_bytes"] == 4000 and not store.has("r-2") and store.has("r-3")
    assert store.get("r-4", crop=True) == b"c" * 1000  # from disk: memory holds one (r-4)
    assert store.get("r-3", crop=False) == b"f" * 1000  # from disk only


def test_memory_keeps_the_newest_within_count_and_bytes():
    store = SnapshotStore(None, 10, 10**9, memory_count=3, memory_bytes=5000)
    for i in range(4):
        store.put(f"r-{i}", snap(1000))
    assert [store.has(f"r-{i}") for i in range(4)] == [False, False, True, True]  # 2 x 2000 bytes fit, 3 do not
    store.put("r-2", snap(1000))  # replacing a live object's view keeps one copy
    assert store.usage() == {"memory_count": 2, "memory_bytes": 4000, "disk_count": 0, "disk_bytes": 0}


def test_snapshots_of_an_earlier_run_are_served_after_a_restart_and_ids_never_reach_the_file_system(tmp_path):
    first = SnapshotStore(tmp_path, 10, 10**9, 10, 10**9)
    first.put("abc123-7", snap())
    first.persist("abc123-7")
    again = SnapshotStore(tmp_path, 10, 10**9, 10, 10**9)
    assert again.has("abc123-7") and again.get("abc123-7", crop=True) == b"c" * 1000
    (tmp_path / "secret.jpg").write_bytes(b"x")
    assert again.get("../secret", crop=True) is None and again.get("secret", crop=True) is None


def test_snapshots_go_beside_the_state_file_unless_a_directory_is_named(tmp_path):
    assert open_store(SnapshotsConfig(), str(tmp_path / "state.json")) is None  # off by default
    store = open_store(SnapshotsConfig(enabled=True), str(tmp_path / "state.json"))
    assert store.dir == tmp_path / "snapshots" and store.dir.is_dir()
    assert open_store(SnapshotsConfig(enabled=True), None).dir is None  # memory only
    assert open_store(SnapshotsConfig(enabled=True, dir=str(tmp_path / "s")), None).dir == tmp_path / "s"


def test_a_snapshot_is_scaled_down_or_reencoded_only_when_asked_never_up():
    img = np.random.default_rng(1).integers(0, 255, (200, 100, 3), np.uint8)
    data = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()
    assert sized(data, 80, None, None) is data and sized(data, 80, None, 95) is data and sized(data, 80, 400, None) is data
    small = cv2.imdecode(np.frombuffer(sized(data, 80, 50, None), np.uint8), cv2.IMREAD_COLOR)
    assert small.shape == (50, 25, 3)
    assert len(sized(data, 80, None, 20)) < len(data)


def result(seq: int, t: float, boxes, tids, events=(), image=None) -> FrameResult:
    image = np.zeros((480, 640, 3), np.uint8) if image is None else image
    dets = Detections(boxes, [0.9] * len(boxes), [0] * len(boxes), tids)
    return FrameResult(seq=seq, timestamp=t, epoch=t, size=SIZE, objects=dets, frame=Frame(image, t, seq),
                       events=tuple(events))


def event(kind: str, tid: int, seq: int = 1) -> Event:
    return make_event(kind, f"run-{tid}", seq)


def test_a_better_view_waits_for_the_interval_and_the_last_one_is_kept_when_the_track_ends(tmp_path):
    store = SnapshotStore(tmp_path, 10, 10**9, 10, 10**9)
    published = []
    s = Snapshots(SnapshotsConfig(enabled=True, interval=1.0), ["person"], store, "run",
                  publish=lambda label, data: published.append(label))
    new = event("new", 1)
    (sent,) = s.take(result(0, 0.0, [[100, 100, 120, 140]], [1], [new])).events
    assert s.encodes == 1 and sent.after.has_snapshot is True  # the first view at once
    assert sent.before.has_snapshot is True and new.after.has_snapshot is False  # a new value; the made one as it was
    s.take(result(1, 0.2, [[100, 100, 140, 180]], [1]))  # better, but within the interval
    s.take(result(2, 0.4, [[100, 100, 160, 220]], [1]))
    assert s.encodes == 1
    s.take(result(3, 1.0, [[100, 100, 121, 141]], [1]))  # not better; the pending one is due
    assert s.encodes == 2
    crop = cv2.imdecode(np.frombuffer(store.get("run-1", crop=True), np.uint8), cv2.IMREAD_COLOR)
    assert crop.shape[:2] == (180, 90)  # the 60x120 box of frame 2 plus 25 % each side
    s.take(result(4, 1.2, [[100, 100, 200, 300]], [1]))  # best yet, pending at the end
    end = event("end", 1, seq=2)
    (sent,) = s.take(FrameResult(seq=-1, timestamp=1.3, epoch=1.3, size=SIZE, objects=Detections(),
                                 events=(end,))).events
    assert s.encodes == 3 and sent.after.has_snapshot is True
    assert sent.before.has_snapshot is True  # as the track's previous event was sent
    assert (tmp_path / "run-1.jpg").is_file() and (tmp_path / "run-1.full.jpg").is_file()
    assert published == ["person"] * 3


def test_labels_not_asked_for_get_no_snapshot():
    store = SnapshotStore(None, 10, 10**9, 10, 10**9)
    s = Snapshots(SnapshotsConfig(enabled=True, labels=["car"]), ["person", "car"], store, "run")
    ev = event("new", 1)
    (sent,) = s.take(result(0, 0.0, [[100, 100, 120, 140]], [1], [ev])).events
    assert s.encodes == 0 and sent.after.has_snapshot is False


def test_on_the_sample_clip_encodes_are_bounded_by_the_interval_and_every_event_has_a_snapshot(tmp_path):
    cfg = load_config(None, {**FAST, **SCENE, "state.file": str(tmp_path / "state.json"),
                             "snapshots": {"enabled": True, "interval": 1.0}}, env={})
    log = EventLog()
    events = log.events
    pipeline.run(cfg, max_frames=100, consumers=[log])
    ids = {e.after.id for e in events}
    assert len(ids) >= 5 and all(e.after.has_snapshot for e in events)
    files = os.listdir(tmp_path / "snapshots")
    assert len(files) == 2 * len(ids)  # every ended object: crop and full frame


def test_a_failing_keeper_stops_keeping_but_every_result_still_goes_on_and_close_raises(tmp_path, caplog):
    store = SnapshotStore(tmp_path, 10, 10**9, 10, 10**9)

    def publish(label, data):
        raise RuntimeError("the snapshot hand-over broke")

    s = Snapshots(SnapshotsConfig(enabled=True, interval=0.0), ["person"], store, "run", publish=publish)
    (sent,) = s.take(result(0, 0.0, [[100, 100, 120, 140]], [1], [event("new", 1)])).events
    assert sent.after.has_snapshot is True  # encoded and stored before the hand-over failed
    (later,) = s.take(result(1, 0.1, [[100, 100, 160, 220]], [1], [event("update", 1, seq=2)])).events
    assert s.encodes == 0 and later.after.has_snapshot is True and later.before.has_snapshot is True
    stopped = [r for r in caplog.records if r.getMessage() == "snapshots stopped: the snapshot hand-over broke"]
    assert len(stopped) == 1  # logged once, not per result
    with pytest.raises(RuntimeError, match="hand-over broke"):
        s.close()

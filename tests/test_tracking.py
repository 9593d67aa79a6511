"""Behaviour of the SORT and ByteTrack trackers: IDs, lifecycle events, bad input, bounded state."""
from __future__ import annotations

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

import app.tracking.base as base
from app.tracking import TRACKERS, TrackEvents, build_tracker
from app.tracking.bytetrack import ByteTrackTracker, Config as ByteTrackConfig
from app.tracking.sort import Config as SortConfig, SortTracker
from app.types import Detections

FPS = 30.0
CONFIGS = {
    "sort": SortConfig(),
    "bytetrack": ByteTrackConfig(),
}


def dets(boxes, scores=None, classes=None) -> Detections:
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    n = len(boxes)
    return Detections(
        boxes,
        np.full(n, 0.9) if scores is None else scores,
        np.zeros(n, np.int32) if classes is None else classes,
    )


def box(cx: float, cy: float, w: float = 40, h: float = 80) -> list[float]:
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def ids_by_x(out: Detections) -> list[int]:
    """Track ids ordered left to right."""
    return out.track_ids[np.argsort(out.centers[:, 0])].tolist()


@pytest.fixture(params=list(CONFIGS))
def tracker(request):
    return build_tracker(CONFIGS[request.param])


# ---- configuration -----------------------------------------------------------------------


def test_config_is_chosen_by_type_and_builds_that_tracker():
    assert isinstance(build_tracker(TRACKERS.parse({"type": "sort"})), SortTracker)
    bt = TRACKERS.parse({"type": "bytetrack", "track_buffer": 60})
    assert isinstance(build_tracker(bt), ByteTrackTracker) and bt.track_buffer == 60


@pytest.mark.parametrize(
    "raw",
    [
        {"type": "sort", "max_ages": 3},  # typo in a key
        {"type": "bytetrack", "track_thresh": 1.5},
        {"type": "bytetrack", "track_thresh": 0.1, "low_thresh": 0.2},
        {"type": "deepsort"},
        {"type": "sort", "min_hits": 0},
    ],
)
def test_bad_tracker_config_is_rejected(raw):
    with pytest.raises(ValidationError):
        TypeAdapter(TRACKERS.union()).validate_python(raw)


def test_unset_new_track_threshold_is_track_thresh_plus_margin():
    assert ByteTrackConfig(track_thresh=0.4, new_track_thresh=None).det_thresh == pytest.approx(0.5)
    assert ByteTrackConfig().det_thresh == pytest.approx(0.45)  # the default sets it explicitly
    assert ByteTrackConfig(track_thresh=0.4, new_track_thresh=0.45).det_thresh == pytest.approx(0.45)


# ---- identity ----------------------------------------------------------------------------


def test_object_gets_one_id_while_it_moves(tracker):
    seen = set()
    for k in range(60):
        out = tracker.update(dets([box(100 + 3 * k, 200)]), k / FPS)
        seen.update(out.track_ids.tolist())
    assert seen == {1}


def test_lost_track_keeps_id_when_object_reappears_within_buffer():
    buffer = 30
    trackers = [ByteTrackTracker(ByteTrackConfig(track_buffer=buffer)), SortTracker(SortConfig(max_age=buffer))]
    for tracker in trackers:
        ids = []
        for k in range(80):
            gone = 20 <= k < 20 + buffer - 1  # missing for fewer than track_buffer frames
            out = tracker.update(dets([] if gone else [box(100 + 4 * k, 200)]), k / FPS)
            if not gone:
                ids.append(out.track_ids.tolist())
        assert all(i == [1] for i in ids), (type(tracker).__name__, ids)


def test_track_ends_after_buffer_and_returning_object_gets_new_id():
    for tracker in (ByteTrackTracker(ByteTrackConfig(track_buffer=10)), SortTracker(SortConfig(max_age=10))):
        for k in range(10):
            tracker.update(dets([box(100, 200)]), k / FPS)
        for k in range(10, 40):  # 30 missing frames, well past a 10-frame buffer
            tracker.update(dets([]), k / FPS)
        kinds = [e.kind for e in tracker.pop_events()]
        assert kinds[-2:] == ["lost", "end"]
        ids = set()
        for k in range(40, 45):
            ids.update(tracker.update(dets([box(100, 200)]), k / FPS).track_ids.tolist())
        assert ids == {2}


def test_expire_without_frames_ends_tracks_when_empty_frames_would_have():
    """A live source gone silent: expire(now) ends a track exactly when the next frame would have."""
    for make in (lambda: ByteTrackTracker(ByteTrackConfig(track_buffer=10)), lambda: SortTracker(SortConfig(max_age=10))):
        first = make()
        first.update(dets([box(100, 200)]), 0.0)
        first.expire(100.0)  # one frame only: no frame interval known, so no frame is late yet
        assert first.stats.live_tracks == 1 and not any(e.kind == "end" for e in first.pop_events())
        fed, silent = make(), make()
        for t in (fed, silent):
            for k in range(10):
                t.update(dets([box(100, 200), box(300, 200)]), k / FPS)
            t.pop_events()
        ended_at = None
        for k in range(10, 60):  # the reference: empty frames until the tracks end
            fed.update(dets([]), k / FPS)
            if any(e.kind == "end" for e in fed.pop_events()):
                ended_at = k / FPS
                break
        assert ended_at is not None
        silent.expire(ended_at - 1 / FPS)
        assert len(silent.pop_events()) == 0 and silent.stats.live_tracks == 2
        silent.expire(ended_at)
        events = list(silent.pop_events())
        assert [e.kind for e in events] == ["end", "end"] and {e.track_id for e in events} == {1, 2}
        assert all(e.timestamp == ended_at for e in events)
        assert silent.stats.live_tracks == 0 and silent.stats.frames == 10  # no frame was counted
        silent.expire(ended_at + 5)  # nothing left: nothing more
        assert len(silent.pop_events()) == 0
        for k in range(3):  # frames again: a new track, a new id
            out = silent.update(dets([box(100, 200)]), ended_at + 1 + k / FPS)
        assert out.track_ids.tolist() == [3]


def test_crossing_objects_keep_their_ids(tracker):
    # Two people walk towards each other, overlap heavily at frame 30 and walk on.
    before = after = None
    for k in range(61):
        a = box(100 + 10 * k, 200, 50, 120)
        b = box(700 - 10 * k, 215, 50, 120)
        out = tracker.update(dets([a, b]), k / FPS)
        if k == 20:
            before = dict(zip(out.centers[:, 0].round().tolist(), out.track_ids.tolist()))
        if k == 60:
            after = dict(zip(out.centers[:, 0].round().tolist(), out.track_ids.tolist()))
    # The one that started on the left (id at x=300 at frame 20) is now on the right (x=700).
    assert before is not None and after is not None and len(set(before.values())) == 2
    left_id = before[min(before)]
    right_id = before[max(before)]
    assert after[max(after)] == left_id and after[min(after)] == right_id


def test_dropped_frames_do_not_break_tracking(tracker):
    # Fast object (15 px/frame, box 40 px wide); the source drops 4 frames at a time, so between
    # processed frames it moves 75 px and the boxes do not overlap at all: only a motion model
    # driven by timestamps can follow it.
    ids = set()
    processed = [k for k in range(120) if k < 10 or k % 5 == 0]
    for k in processed:
        out = tracker.update(dets([box(50 + 15 * k, 200)]), k / FPS)
        ids.update(out.track_ids.tolist())
    assert ids == {1}
    assert len(out) == 1


def test_ids_are_never_reused_and_increase():
    rng = np.random.default_rng(1)
    for cfg in CONFIGS.values():
        tracker = build_tracker(cfg)
        ended: set[int] = set()
        new_ids: list[int] = []
        for k in range(600):
            # objects live ~1.5 s in slots that are reused: a reappearing object must get a fresh id
            live = [s for s in range(4) if (k // 45 + s) % 3 != 0]
            boxes = [box(100 + 150 * s + rng.normal(0, 1), 200) for s in live]
            out = tracker.update(dets(boxes), k / FPS)
            assert not (set(out.track_ids.tolist()) & ended)
            for e in tracker.pop_events():
                if e.kind == "new":
                    new_ids.append(e.track_id)
                if e.kind == "end":
                    ended.add(e.track_id)
        assert len(new_ids) > 10
        assert new_ids == sorted(new_ids) and len(set(new_ids)) == len(new_ids)
        assert new_ids == list(range(1, len(new_ids) + 1))  # only confirmed tracks use up ids


def test_per_class_tracking_never_changes_class():
    person, car = 0, 2
    for per_class, expect_ids in ((True, {1, 2}), (False, {1})):
        tracker = ByteTrackTracker(ByteTrackConfig(per_class=per_class))
        ids, classes = set(), set()
        for k in range(30):
            cls = person if k < 20 else car  # the detector flips its mind about the same box
            out = tracker.update(dets([box(300, 200)], classes=[cls]), k / FPS)
            ids.update(out.track_ids.tolist())
            if out.track_ids.tolist() == [1]:
                classes.update(out.class_ids.tolist())
        assert ids == expect_ids
        assert classes == {person}  # track 1 stays a person either way (majority class)


def test_members_of_one_label_group_continue_each_others_track_when_tracking_per_class():
    person, car, truck = 0, 2, 7
    groups = np.arange(80)
    groups[truck] = car  # vehicle group: car and truck compare equal
    for class_groups, expect_ids in ((groups, {1}), (None, {1, 2})):
        tracker = ByteTrackTracker(ByteTrackConfig(per_class=True), class_groups)
        ids = set()
        for k in range(30):
            cls = car if k % 3 else truck  # a van, seen as car twice as often as truck
            ids.update(tracker.update(dets([box(300, 200)], classes=[cls]), k / FPS).track_ids.tolist())
        assert ids == expect_ids
    # a person on the same box is still kept apart from the vehicle
    tracker = ByteTrackTracker(ByteTrackConfig(per_class=True), groups)
    for k in range(10):
        out = tracker.update(dets([box(300, 200)], classes=[car if k < 5 else person]), k / FPS)
    assert out.track_ids.tolist() == [2]


def test_low_score_box_continues_a_track_but_never_starts_one():
    tracker = ByteTrackTracker(ByteTrackConfig(track_thresh=0.5))
    for k in range(5):
        tracker.update(dets([box(100 + 3 * k, 200)], scores=[0.9]), k / FPS)
    # the object gets hard to see: low scores continue track 1; a low box elsewhere starts nothing
    for k in range(5, 15):
        out = tracker.update(dets([box(100 + 3 * k, 200), box(500, 300)], scores=[0.3, 0.3]), k / FPS)
        assert out.track_ids.tolist() == [1]
    assert tracker.stats.tracks_started == 1


# ---- lifecycle events --------------------------------------------------------------------


def test_events_follow_the_track_lifecycle():
    tracker = SortTracker(SortConfig(min_hits=3, max_age=5))
    tracker.update(dets([]), 0.0)  # the object arrives after the stream started
    scores = [0.5, 0.9, 0.7, 0.6]
    for k in range(1, 5):
        tracker.update(dets([box(100 + 6 * k, 200)], scores=[scores[k - 1]]), k / FPS)
    for k in range(5, 15):
        tracker.update(dets([]), k / FPS)
    ev = tracker.pop_events()
    assert [e.kind for e in ev] == ["new", "matched", "lost", "end"]
    new, update, lost, end = ev
    assert new.timestamp == pytest.approx(3 / FPS)  # confirmed on the third detection
    assert new.frames_seen == 3 and update.frames_seen == 4
    assert {e.track_id for e in ev} == {1}
    assert end.first_seen == pytest.approx(1 / FPS) and end.last_seen == pytest.approx(4 / FPS)
    assert end.frames_seen == 4
    assert end.best_score == pytest.approx(0.9) and end.score == pytest.approx(0.6)
    assert end.velocity[0] > 60  # moving right at 6 px/frame = 180 px/s; the filter is catching up
    assert abs(end.velocity[1]) < 10
    assert end.box[0] == pytest.approx(100 + 24 - 20, abs=3)
    assert lost.timestamp == pytest.approx(5 / FPS)
    assert end.timestamp > lost.timestamp + 5 / FPS  # kept max_age frames after it was lost
    assert len(tracker.pop_events()) == 0  # drained


def test_bytetrack_confirms_on_second_match_and_first_frame_at_once():
    tracker = ByteTrackTracker()
    out0 = tracker.update(dets([box(100, 200)]), 0.0)
    assert out0.track_ids.tolist() == [1]  # present in the first frame: confirmed at once
    assert tracker.update(dets([box(103, 200), box(400, 200)]), 1 / FPS).track_ids.tolist() == [1]
    out = tracker.update(dets([box(106, 200), box(400, 200)]), 2 / FPS)
    assert ids_by_x(out) == [1, 2]  # the second object is confirmed on its second match
    assert [e.kind for e in tracker.pop_events().of_kind("new")] == ["new", "new"]


def test_event_class_is_the_majority_class():
    tracker = SortTracker(SortConfig(min_hits=1, max_age=0))
    classes = [3, 3, 5, 3, 5, 3]
    for k, c in enumerate(classes):
        tracker.update(dets([box(100, 200)], classes=[c]), k / FPS)
    tracker.end_all()
    end = tracker.pop_events().of_kind("end")
    assert end.class_id.tolist() == [3]


def test_end_all_ends_every_live_track():
    tracker = ByteTrackTracker()
    tracker.update(dets([box(100, 200), box(300, 200)]), 0.0)
    tracker.update(dets([box(100, 200)]), 1 / FPS)  # second one lost
    tracker.end_all(2 / FPS)
    end = tracker.pop_events().of_kind("end")
    assert sorted(end.track_id.tolist()) == [1, 2]
    assert tracker.stats.live_tracks == 0
    assert tracker.update(dets([box(100, 200)]), 3 / FPS).track_ids.tolist() == [3]  # ids keep counting


def test_timestamp_going_back_ends_tracks_and_keeps_counting(tracker):
    for k in range(5):
        tracker.update(dets([box(100, 200)]), 100 + k / FPS)
    out = tracker.update(dets([box(100, 200)]), 0.0)  # source restarted (a file looping)
    assert tracker.stats.clock_resets == 1
    assert out.track_ids.tolist() == [2]
    assert [e.kind for e in tracker.pop_events() if e.track_id == 1][-1] == "end"


def test_events_iterate_as_records_and_filter_by_kind():
    tracker = ByteTrackTracker()
    for k in range(3):
        tracker.update(dets([box(100, 200), box(300, 200)]), k / FPS)
    ev = tracker.pop_events()
    assert isinstance(ev, TrackEvents) and len(ev) == 6
    assert len(ev.of_kind("new")) == 2 and len(ev.of_kind("matched")) == 4
    first = next(iter(ev))
    assert first.kind == "new" and isinstance(first.track_id, int) and len(first.box) == 4
    assert len(TrackEvents.merge([ev, ev])) == 12


# ---- bad input -------------------------------------------------------------------------


def test_empty_frames_are_handled(tracker):
    for k in range(5):
        out = tracker.update(Detections(), k / FPS)
        assert len(out) == 0 and out.track_ids.dtype == np.int64
    for k in range(5, 10):
        tracker.update(dets([box(100, 200)]), k / FPS)
    for k in range(10, 20):
        assert len(tracker.update(Detections.empty(), k / FPS)) == 0
    assert tracker.stats.frames == 20


def test_nan_and_zero_area_boxes_are_dropped_and_counted(tracker):
    bad = [
        [np.nan, 10, 50, 90],
        [10, 10, 10, 90],  # zero width
        [60, 90, 100, 10],  # negative height
        [0, 0, np.inf, 50],
        [-np.inf, 0, 10, 50],
    ]
    for k in range(6):
        good = box(300 + 2 * k, 200)
        scores = [0.9] * 6 + [np.nan]
        out = tracker.update(dets([good, *bad, box(600, 200)], scores=scores), k / FPS)
        assert np.isfinite(out.xyxy).all()
        assert out.track_ids.tolist() == [1]
    assert tracker.stats.invalid_detections == 6 * 6  # five bad boxes and one NaN score per frame
    assert tracker.stats.detections == 6


def test_output_follows_input_order_and_types(tracker):
    for k in range(3):
        out = tracker.update(dets([box(500, 200), box(100, 200), box(300, 200)]), k / FPS)
    assert out.centers[:, 0].round().tolist() == [500, 100, 300]
    assert out.xyxy.dtype == np.float32 and out.track_ids.dtype == np.int64
    assert out.class_ids.dtype == np.int32


def test_undrained_events_are_capped(tracker, monkeypatch):
    monkeypatch.setattr(base, "MAX_PENDING_EVENTS", 50)
    for k in range(100):
        tracker.update(dets([box(100, 200), box(300, 200)]), k / FPS)
    assert tracker.stats.events_dropped > 0
    assert len(tracker.pop_events()) <= 50


# ---- bounded state -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_no_state_grows_over_100k_frames_of_churn(kind):
    """A 24/7 stream in miniature: objects come and go for 100k frames; nothing accumulates."""
    tracker = build_tracker(CONFIGS[kind])
    rng = np.random.default_rng(7)
    # Pre-built frames, reused: each frame has 0-2 short-lived objects at random places.
    pool = []
    for _ in range(97):
        n = int(rng.integers(0, 3))
        pool.append(dets([box(*rng.uniform(50, 600, 2)) for _ in range(n)]))
    t = 0.0
    max_rows = 0
    for k in range(100_000):
        t += (1 + (rng.random() < 0.05) * 3) / FPS  # jittery clock with occasional dropped frames
        tracker.update(pool[k % 97], t)
        if k % 997 == 0:
            tracker.pop_events()
            max_rows = max(max_rows, len(tracker._f))
    stats = tracker.stats
    assert stats.tracks_started > 10_000  # it really churned
    assert max_rows < 40  # rows are freed when tracks end (buffer ~1 s at 2 objects/frame)
    assert len(tracker._f) == len(tracker._i) < 40
    assert tracker._pending_n <= base.MAX_PENDING_EVENTS and stats.events_dropped == 0
    assert stats.frame_period == pytest.approx(1 / FPS)  # the median ignores the dropped-frame gaps
    assert tracker._next_id == stats.tracks_confirmed + 1  # ids stay small: only confirmations count
    assert stats.tracks_ended >= stats.tracks_confirmed - 40


def test_predicted_tracks_move_on_with_their_velocity_and_still_ones_are_flagged():
    tracker = build_tracker({"type": "bytetrack"})
    for i in range(30):  # one object walking right 10 px per frame, one standing still
        x = 100 + 10 * i
        tracker.update(Detections([[x, 100, x + 40, 200], [600, 100, 640, 200]], [0.9, 0.9], [0, 0]), i / 10)
    t = tracker.predicted(3.0, still_speed=0.1)
    assert len(t) == 2 and t.confirmed.all() and t.matched.all()
    walker, still = np.argsort(t.xyxy[:, 0])
    assert t.xyxy[walker, 0] == pytest.approx(400, abs=6)  # predicted one frame on
    assert not t.stationary[walker] and t.stationary[still]
    assert len(build_tracker({"type": "bytetrack"}).predicted(0.0)) == 0

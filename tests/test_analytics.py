"""Zones, lines, filters, stationary objects and the event policy, on scripted tracks."""
import numpy as np
import pytest

from app.analytics import (Analytics, EventsConfig, FiltersConfig, LabelFilter, LineConfig, StationaryConfig,
                           ZoneConfig)
from app.analytics.geometry import inside_polygon, signed_distance
from app.tracking import build_tracker
from app.tracking.sort import Config as SortConfig
from app.tracking.events import END, TrackEvents
from app.types import Detections, Frame

W, H = 200, 100
IMAGE = np.zeros((H, W, 3), np.uint8)
LABELS = ["person", "car"]


def frame(t: float, seq: int = 0) -> Frame:
    return Frame(IMAGE, t, seq)


def box_at(x: float, y: float, w: float = 0.05, h: float = 0.2):
    """Pixel box whose bottom centre is at normalised (x, y)."""
    return [(x - w / 2) * W, (y - h) * H, (x + w / 2) * W, y * H]


def dets(*objs):
    """objs: (track id, x, y[, score[, class]])"""
    boxes, scores, classes, ids = [], [], [], []
    for o in objs:
        tid, x, y = o[:3]
        boxes.append(box_at(x, y))
        scores.append(o[3] if len(o) > 3 else 0.9)
        classes.append(o[4] if len(o) > 4 else 0)
        ids.append(tid)
    return Detections(boxes, scores, classes, ids)


def ended(*tids, t=0.0):
    n = len(tids)
    return TrackEvents(kind=[END] * n, track_id=list(tids), class_id=[0] * n, timestamp=[t] * n, first_seen=[0] * n,
                       last_seen=[t] * n, frames_seen=[1] * n, best_score=[0.9] * n, score=[0.9] * n,
                       xyxy=[[0, 0, 1, 1]] * n, velocity=[[0, 0]] * n)


def run(a: Analytics, path, dt=0.1, tid=1, cls=0, score=0.9):
    """Feed one track along a list of (x, y) points; return every event."""
    out = []
    for i, (x, y) in enumerate(path):
        out += a.update(frame(i * dt, i), dets((tid, x, y, score, cls))).events
    return out


def kinds(events):
    return [e.type for e in events]


# ---- geometry -------------------------------------------------------------------------------

def test_point_in_polygon_handles_concave_shapes():
    u_shape = np.array([[0, 0], [1, 0], [1, 1], [0.6, 1], [0.6, 0.4], [0.4, 0.4], [0.4, 1], [0, 1]], float)
    pts = np.array([[0.2, 0.8], [0.5, 0.8], [0.5, 0.2], [1.5, 0.5]])
    assert inside_polygon(pts, u_shape).tolist() == [True, False, True, False]


def test_right_hand_side_of_a_left_to_right_line_is_below_it():
    s = signed_distance(np.array([[0.5, 0.9], [0.5, 0.1]]), np.array([0.0, 0.5]), np.array([1.0, 0.5]))
    assert s[0] > 0 > s[1]


# ---- zones ----------------------------------------------------------------------------------

ZONE = {"left": ZoneConfig(polygon=[(0, 0), (0.5, 0), (0.5, 1), (0, 1)], inertia=2)}


def test_zone_entry_needs_inertia_frames_and_is_dated_to_the_first():
    a = Analytics(LABELS, zones=ZONE, events=EventsConfig(update_interval=0, heartbeat=0))
    ev = run(a, [(0.7, 0.5), (0.4, 0.5), (0.4, 0.5), (0.4, 0.5)])
    entries = [e for e in ev if "entered_zone" in e.changes]
    assert len(entries) == 1
    assert entries[0].after.frame_time == pytest.approx(0.2)  # confirmed on the 2nd frame inside
    assert entries[0].after.dwell["left"] == pytest.approx(0.1)  # counted from the 1st
    assert a.zone_counts["left"] == {"all": 1, "person": 1, "car": 0}


def test_one_frame_of_flicker_at_the_zone_edge_changes_nothing():
    a = Analytics(LABELS, zones=ZONE, events=EventsConfig(update_interval=0, heartbeat=0))
    ev = run(a, [(0.4, 0.5), (0.4, 0.5), (0.6, 0.5), (0.4, 0.5), (0.6, 0.5), (0.4, 0.5)])
    changes = [c for e in ev for c in e.changes]
    assert changes.count("entered_zone") == 1 and changes.count("left_zone") == 0
    assert ev[-1].after.current_zones == ("left",) and a.zone_counts["left"]["all"] == 1


def test_dwell_accumulates_over_separate_visits():
    a = Analytics(LABELS, zones={"z": ZoneConfig(polygon=[(0, 0), (0.5, 0), (0.5, 1), (0, 1)], inertia=1)},
                  events=EventsConfig(update_interval=0, heartbeat=0))
    path = [(0.4, 0.5)] * 5 + [(0.8, 0.5)] * 5 + [(0.4, 0.5)] * 3  # 0.5 s in, out, back for the last 0.3 s
    run(a, path)
    e = a.finish(ended(1, t=1.2)).events[0]
    assert e.type == "end"
    assert e.after.dwell["z"] == pytest.approx(0.5 + 0.2)  # last visit: entered at 1.0, last seen 1.2
    assert e.after.entered_zones == ("z",)


def test_zone_with_a_label_filter_ignores_other_labels():
    a = Analytics(LABELS, zones={"cars": ZoneConfig(polygon=[(0, 0), (1, 0), (1, 1), (0, 1)], labels=["car"],
                                                    inertia=1)})
    a.update(frame(0), dets((1, 0.5, 0.5, 0.9, 0), (2, 0.6, 0.5, 0.9, 1)))
    assert a.zone_counts["cars"] == {"all": 1, "car": 1}
    assert a.counts == {"all": 2, "person": 1, "car": 1}


def test_loitering_raises_one_update_after_the_threshold():
    a = Analytics(LABELS, zones={"z": ZoneConfig(polygon=[(0, 0), (1, 0), (1, 1), (0, 1)], inertia=1,
                                                 loitering_time=1.0)},
                  events=EventsConfig(update_interval=0, heartbeat=0), stationary=StationaryConfig(seconds=0))
    ev = run(a, [(0.5 + 0.01 * i, 0.5) for i in range(20)])
    loiter = [e for e in ev if "loitering" in e.changes]
    assert len(loiter) == 1
    assert loiter[0].after.frame_time == pytest.approx(1.0)
    assert loiter[0].after.loitering_zones == ("z",)


# ---- lines ----------------------------------------------------------------------------------

LINE = {"door": LineConfig(start=(0.5, 0.0), end=(0.5, 1.0), hysteresis=0.05)}  # drawn downwards


def test_crossing_counts_once_with_direction():
    a = Analytics(LABELS, lines=LINE, events=EventsConfig(update_interval=0, heartbeat=0))
    ev = run(a, [(0.2 + 0.05 * i, 0.5) for i in range(12)])  # walks right: from the line's right-hand side
    crossed = [e for e in ev if "crossed_line" in e.changes]
    assert len(crossed) == 1
    assert crossed[0].after.lines_crossed[0].direction == "out"
    assert (a.line_states["door"]["in"], a.line_states["door"]["out"]) == (0, 1)
    ev = run(a, [(0.8 - 0.05 * i, 0.5) for i in range(12)], tid=2)  # another one walks back
    assert (a.line_states["door"]["in"], a.line_states["door"]["out"]) == (1, 1)
    assert a.line_states["door"]["labels"] == {"person": {"in": 1, "out": 1}}


def test_jitter_inside_the_band_never_counts():
    a = Analytics(LABELS, lines=LINE)
    run(a, [(0.2, 0.5)] + [(0.5 + (0.04 if i % 2 else -0.04), 0.5) for i in range(30)])
    assert a.line_states["door"]["in"] + a.line_states["door"]["out"] == 0


def test_jitter_across_the_line_counts_each_real_crossing_once():
    a = Analytics(LABELS, lines=LINE)
    run(a, [(0.3, 0.5), (0.49, 0.5), (0.52, 0.5), (0.48, 0.5), (0.53, 0.5), (0.7, 0.5)])
    assert (a.line_states["door"]["in"], a.line_states["door"]["out"]) == (0, 1)


def test_crossing_the_extension_of_the_line_does_not_count():
    short = {"door": LineConfig(start=(0.5, 0.0), end=(0.5, 0.4), hysteresis=0.02)}
    a = Analytics(LABELS, lines=short)
    run(a, [(0.2 + 0.05 * i, 0.8) for i in range(12)])  # passes below the segment's end
    assert a.line_states["door"]["in"] + a.line_states["door"]["out"] == 0
    run(a, [(0.2 + 0.05 * i, 0.3) for i in range(12)], tid=2)  # through the segment
    assert a.line_states["door"]["out"] == 1


def test_a_fast_object_jumping_over_the_line_still_counts():
    a = Analytics(LABELS, lines=LINE)
    run(a, [(0.2, 0.5), (0.8, 0.5)])
    assert a.line_states["door"]["out"] == 1


def test_reset_zeroes_the_named_line_and_restarts_since():
    two = {**LINE, "gate": LineConfig(start=(0.3, 0.0), end=(0.3, 1.0))}
    a = Analytics(LABELS, lines=two)
    run(a, [(0.1 + 0.05 * i, 0.5) for i in range(14)])
    before = a.line_states
    assert before["door"]["out"] == 1 and before["gate"]["out"] == 1
    after = a.reset_counts(["door"])
    assert after["door"]["out"] == 0 and after["door"]["since"] >= before["door"]["since"]
    assert after["gate"] == before["gate"]
    assert a.line_totals["door"] == (0, 1)  # lifetime totals are never reset
    with pytest.raises(KeyError):
        a.reset_counts(["nope"])


def test_restored_line_counts_continue_from_the_saved_state():
    a = Analytics(LABELS, lines=LINE, events=EventsConfig(update_interval=0, heartbeat=0))
    run(a, [(0.2 + 0.05 * i, 0.5) for i in range(12)])
    saved = a.line_states
    b = Analytics(LABELS, lines=LINE, events=EventsConfig(update_interval=0, heartbeat=0))
    assert b.restore_lines(saved) == ["door"]
    assert b.line_states == saved  # counts and since as they were
    run(b, [(0.8 - 0.05 * i, 0.5) for i in range(12)], tid=2)
    assert (b.line_states["door"]["in"], b.line_states["door"]["out"]) == (1, 1)
    assert b.line_states["door"]["since"] == saved["door"]["since"]


def test_restore_matches_labels_by_name_and_skips_malformed_or_unknown_lines():
    a = Analytics(LABELS, lines={**LINE, "gate": LineConfig(start=(0.3, 0.0), end=(0.3, 1.0))})
    restored = a.restore_lines({
        "door": {"in": 5, "out": 2, "since": 100.0, "labels": {"car": {"in": 4, "out": 2}, "bus": {"in": 1, "out": 0}}},
        "gate": {"in": "x", "since": 100.0, "labels": {"person": {"in": -3, "out": 0}}},
        "gone": {"in": 1, "out": 1, "since": 1.0, "labels": {"person": {"in": 1, "out": 1}}},
    })
    assert restored == ["door"]
    door = a.line_states["door"]
    # "bus" is no longer a label: kept, as "other"
    assert (door["in"], door["out"], door["since"]) == (5, 2, 100.0)
    assert door["labels"] == {"car": {"in": 4, "out": 2}, "other": {"in": 1, "out": 0}}
    assert (a.line_states["gate"]["in"], a.line_states["gate"]["out"]) == (0, 0)


# ---- filters --------------------------------------------------------------------------------

def test_a_track_below_min_score_is_never_published_nor_counted():
    a = Analytics(LABELS, lines=LINE, filters=FiltersConfig(min_score=0.5))
    ev = run(a, [(0.2 + 0.05 * i, 0.5) for i in range(12)], score=0.4)
    ev += a.finish(ended(1, t=1.2)).events
    assert ev == [] and a.counts["all"] == 0 and a.line_states["door"]["out"] == 0


def test_per_label_filter_overrides_the_default():
    f = FiltersConfig(min_score=0.5, labels={"car": LabelFilter(min_score=0.95)})
    a = Analytics(LABELS, filters=f)
    r = a.update(frame(0), dets((1, 0.3, 0.5, 0.9, 0), (2, 0.6, 0.5, 0.9, 1)))
    assert [e.after.label for e in r.events] == ["person"]


def test_by_default_a_person_is_published_once_it_scores_half_and_a_car_at_any_score():
    # a static object scored 0.43-0.50 as a person (the sample clip's traffic cone) stays unpublished
    a = Analytics(LABELS, filters=FiltersConfig())
    r = a.update(frame(0), dets((1, 0.3, 0.5, 0.48, 0), (2, 0.6, 0.5, 0.40, 1)))
    assert [e.after.label for e in r.events] == ["car"]
    r = a.update(frame(1), dets((1, 0.3, 0.5, 0.5, 0), (2, 0.6, 0.5, 0.40, 1)))
    assert [e.after.track_id for e in r.events if e.type == "new"] == [1]


def test_a_min_score_set_without_labels_reaches_people_and_one_with_labels_does_not():
    given = FiltersConfig.model_validate({"min_score": 0.7})  # as `--set filters.min_score=0.7` gives it
    a = Analytics(LABELS, filters=given)
    assert [e.after.label for e in a.update(frame(0), dets((1, 0.3, 0.5, 0.6, 0))).events] == []
    both = FiltersConfig.model_validate({"min_score": 0.7, "labels": {"person": {"min_score": 0.5}}})
    a = Analytics(LABELS, filters=both)
    assert [e.after.label for e in a.update(frame(0), dets((1, 0.3, 0.5, 0.6, 0))).events] == ["person"]


def test_area_filter_rejects_boxes_too_large():
    a = Analytics(LABELS, filters=FiltersConfig(max_area=0.005))  # our boxes cover 0.05 x 0.2 = 1 %
    assert a.update(frame(0), dets((1, 0.3, 0.5))).events == ()


def test_min_age_delays_new_until_the_track_is_old_enough():
    a = Analytics(LABELS, filters=FiltersConfig(min_age=0.45))
    ev = run(a, [(0.3, 0.5)] * 8)
    assert kinds(ev) == ["new"] and ev[0].after.frame_time == pytest.approx(0.5)
    assert ev[0].after.start_time == pytest.approx(0.0)


# ---- stationary, policy, lifecycle ----------------------------------------------------------------

def test_object_that_stops_becomes_stationary_and_moving_again_is_reported():
    a = Analytics(LABELS, stationary=StationaryConfig(seconds=1.0, min_iou=0.7),
                  events=EventsConfig(update_interval=0, heartbeat=0))
    path = [(0.1 + 0.02 * i, 0.5) for i in range(5)] + [(0.2, 0.5)] * 15 + [(0.2 + 0.03 * i, 0.5) for i in range(8)]
    ev = run(a, path)
    reasons = [c for e in ev for c in e.changes if c in ("stationary", "moving")]
    assert reasons == ["stationary", "moving"]
    st = next(e for e in ev if "stationary" in e.changes)
    assert st.after.stationary is True and st.after.motionless_count >= 10


def test_updates_are_rate_limited_and_changes_merged():
    a = Analytics(LABELS, zones={"z": ZoneConfig(polygon=[(0, 0), (0.5, 0), (0.5, 1), (0, 1)], inertia=1)},
                  lines=LINE, events=EventsConfig(update_interval=1.0, heartbeat=0))
    ev = run(a, [(0.3, 0.5), (0.4, 0.5), (0.6, 0.5), (0.6, 0.5), (0.6, 0.5)] + [(0.6, 0.5)] * 10)
    ups = [e for e in ev if e.type == "update"]
    assert len(ups) == 1  # left the zone and crossed the line in one update, a second after 'new'
    assert set(ups[0].changes) == {"left_zone", "crossed_line"}
    assert ups[0].after.frame_time == pytest.approx(1.0)


def test_heartbeat_sends_an_update_while_nothing_changes():
    a = Analytics(LABELS, events=EventsConfig(update_interval=0, heartbeat=0.5), stationary=StationaryConfig(seconds=0))
    ev = run(a, [(0.3 + 0.01 * i, 0.5) for i in range(12)])
    assert kinds(ev) == ["new", "update", "update"] and ev[1].changes == ("heartbeat",)


def test_score_jump_is_worth_an_update():
    a = Analytics(LABELS, events=EventsConfig(update_interval=0, heartbeat=0, score_change=0.1))
    ev = []
    for i, s in enumerate([0.5, 0.55, 0.58, 0.7, 0.72]):
        ev += a.update(frame(i * 0.1), dets((1, 0.3, 0.5, s))).events
    assert kinds(ev) == ["new", "update"] and ev[1].changes == ("score",) and ev[1].after.top_score == 0.7


def test_end_is_sent_once_with_the_final_state_and_counts_drop():
    a = Analytics(LABELS, zones=ZONE)
    run(a, [(0.3, 0.5)] * 3)
    assert a.counts["all"] == 1 and a.zone_counts["left"]["all"] == 1
    r = a.finish(ended(1, t=0.2))
    assert kinds(r.events) == ["end"] and r.ended == [1]
    assert r.events[0].after.end_time == pytest.approx(0.2)
    assert r.counts["all"] == 0 and r.zones["left"]["all"] == 0
    assert a.finish(ended(1, t=0.3)).events == ()  # the tracker repeating itself changes nothing


def test_missed_object_counts_as_present_only_up_to_the_presence_timeout():
    a = Analytics(LABELS, zones=ZONE, filters=FiltersConfig(presence_timeout=1.0),
                  events=EventsConfig(update_interval=0, heartbeat=0))
    run(a, [(0.3, 0.5)] * 3)  # last seen at 0.2
    r = a.update(frame(1.1, 11), Detections())  # missed, but the tracker keeps the track
    assert r.counts["all"] == 1 and r.zones["left"]["all"] == 1 and r.events == ()
    r = a.update(frame(1.3, 13), Detections())
    assert r.counts["all"] == 0 and r.zones["left"]["all"] == 0 and r.events == ()
    r = a.update(frame(1.4, 14), dets((1, 0.3, 0.5)))  # seen again: present again, no new event
    assert r.counts["all"] == 1 and r.events == ()
    assert kinds(a.finish(ended(1, t=1.4)).events) == ["end"]


def test_counts_dicts_are_replaced_not_mutated_so_readers_can_hold_them():
    a = Analytics(LABELS)
    held = a.update(frame(0), dets((1, 0.3, 0.5))).counts
    a.update(frame(0.1, 1), dets((1, 0.3, 0.5), (2, 0.6, 0.5)))
    assert held == {"all": 1, "person": 1, "car": 0} and a.counts["all"] == 2


def test_with_the_real_tracker_every_published_track_gets_new_then_end():
    tracker = build_tracker(SortConfig(min_hits=2, max_age=2))
    a = Analytics(LABELS, events=EventsConfig(update_interval=0.2, heartbeat=0))
    events = []
    rng = np.random.default_rng(0)
    for i in range(60):
        objs = [(0, 0.1 + 0.01 * i, 0.5), (0, 0.9 - 0.012 * i, 0.8)]
        if 20 <= i < 40:
            objs.append((0, 0.5, 0.3))  # a third person for 2 s
        d = dets(*objs)
        d.xyxy += rng.normal(0, 0.5, d.xyxy.shape).astype(np.float32)
        tracked = tracker.update(Detections(d.xyxy, d.scores, d.class_ids), i * 0.1)
        events += a.update(frame(i * 0.1, i), tracked, tracker.pop_events()).events
    tracker.end_all()
    events += a.finish(tracker.pop_events()).events
    per = {}
    for e in events:
        per.setdefault(e.after.id, []).append(e.type)
    assert len(per) == 3
    for types in per.values():
        assert types[0] == "new" and types[-1] == "end" and types.count("end") == 1
    assert a.counts["all"] == 0


def test_a_label_group_is_counted_as_the_sum_of_its_members_globally_and_per_zone():
    labels = ["person", "bicycle", "car", "truck", "dog"]
    zone = {"road": ZoneConfig(polygon=[(0, 0), (1, 0), (1, 1), (0, 1)], inertia=1, labels=["car", "truck"])}
    a = Analytics(labels, zones=zone, count_labels=["person", "car", "truck"],
                  groups={"vehicle": ["bicycle", "car", "motorcycle", "bus", "truck"], "pets": ["cat"]})
    r = a.update(frame(0.0), dets((1, 0.2, 0.5, 0.9, 0), (2, 0.4, 0.5, 0.9, 2), (3, 0.6, 0.5, 0.9, 3),
                                   (4, 0.8, 0.5, 0.9, 1)))
    # a label seen gets a count of its own; "pets" has no member in this model, so no count
    assert r.counts == {"all": 4, "person": 1, "car": 1, "truck": 1, "bicycle": 1, "vehicle": 3}
    # in a zone for cars and trucks, its vehicles are its cars and trucks
    assert r.zones["road"] == {"all": 2, "car": 1, "truck": 1, "vehicle": 2}

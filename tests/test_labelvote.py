"""A track's published label: a score-weighted vote with hysteresis (app/tracking/labelvote.py), through
the real tracker and the analytics engine: a van seen as truck and car in turn keeps one label, a label
that was wrong at first is replaced once and reported as one `update`, group counts hold it once."""
from __future__ import annotations

import numpy as np

from app.analytics import Analytics, EventsConfig
from app.labels import ModelLabels
from app.tracking import build_tracker
from app.tracking.bytetrack import Config as ByteTrackConfig
from app.tracking.labelvote import vote
from app.types import Detections, Frame

LABELS = ["person", "bicycle", "car", "motorcycle", "bus", "truck"]
CAR, BUS, TRUCK = 2, 4, 5
IMAGE = np.zeros((100, 200, 3), np.uint8)


def one_track(labels_scores):
    """The published label per frame of one object seen with these (class, score) detections."""
    label, rival = np.array([labels_scores[0][0]]), np.array([-1])
    w_label, w_rival = np.array([labels_scores[0][1]]), np.zeros(1)
    out, flips = [int(label[0])], 0
    for c, s in labels_scores[1:]:
        flips += int(vote(label, rival, w_label, w_rival, np.array([c]), np.array([s], np.float32))[0])
        out.append(int(label[0]))
    return out, flips


def test_two_labels_in_turn_keep_the_first():
    seen = [(TRUCK, 0.51), (CAR, 0.46)] * 200  # a plain majority vote flips on every pair
    out, flips = one_track(seen)
    assert set(out) == {TRUCK} and flips == 0


def test_a_stronger_label_wins_once_without_flicker():
    seen = [(CAR, 0.46)] * 3 + [(TRUCK, 0.55), (TRUCK, 0.52), (CAR, 0.45)] * 100
    out, flips = one_track(seen)
    assert flips == 1 and out[-1] == TRUCK
    first_truck = out.index(TRUCK)
    assert set(out[first_truck:]) == {TRUCK} and first_truck < 20


def test_a_real_change_is_followed_and_a_third_label_wears_the_rival_down():
    seen = [(CAR, 0.8)] * 50 + [(BUS, 0.3)] * 2 + [(TRUCK, 0.8)] * 60
    out, flips = one_track(seen)
    assert flips == 1 and out[-1] == TRUCK and set(out[:52]) == {CAR}


def test_the_tracker_publishes_the_voted_label_and_the_engine_one_label_update():
    groups = {"vehicle": ["bicycle", "car", "motorcycle", "bus", "truck"]}
    tracker = build_tracker(ByteTrackConfig(), ModelLabels.of(LABELS, groups).merge_ids)  # as the pipeline builds it
    a = Analytics(LABELS, events=EventsConfig(update_interval=0, heartbeat=0), groups=groups)
    rng = np.random.default_rng(1)
    published, events, vehicles, trucks = [], [], [], []
    for i in range(120):
        # a parked van: car for its first frames, then mostly truck with a car now and then
        cls = CAR if i < 3 or rng.random() < 0.3 else TRUCK
        score = 0.46 if cls == CAR else 0.55
        d = Detections([[60 + rng.normal(0, 0.3), 30, 120, 70]], [score], [cls])
        t = i / 25
        tracked = tracker.update(d, t)
        r = a.update(Frame(IMAGE, t, i), tracked, tracker.pop_events())
        published += [LABELS[c] for c in r.objects.class_ids.tolist()]
        events += r.events
        vehicles.append(r.counts.get("vehicle"))
        trucks.append(r.counts.get("truck"))
    switches = sum(1 for x, y in zip(published, published[1:]) if x != y)
    assert published[-1] == "truck" and switches == 1, published
    labelled = [e for e in events if e.type == "update" and "label" in e.changes]
    assert len(labelled) == 1
    assert labelled[0].before.label == "car" and labelled[0].after.label == "truck"
    seen = vehicles[len(vehicles) - len(published):]
    assert set(seen) == {1}  # the group count holds the van once, whichever member it is
    assert trucks[-1] == 1 and trucks[-60:].count(1) == 60

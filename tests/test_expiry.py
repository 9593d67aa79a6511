"""app/expiry.py and app/tracking/shared.py: a live run's tracks end while no frame is tracked, as the next
frame would have ended them; the tracker owns the one lock, so ending a run while tracks expire loses no `end`
and gives none twice."""
import random
import threading
import time

from app.expiry import Expiry
from app.tracking.bytetrack import ByteTrackTracker, Config
from app.tracking.shared import SharedTracker
from app.types import Detections
from app.worker import Worker
from tests.mqtt_util import wait_until


def person(x: float) -> Detections:
    return Detections([[x, 100, x + 40, 200]], [0.9], [0])


def track(shared: SharedTracker, dets: Detections, timestamp: float) -> None:
    shared.update(dets, timestamp, lambda tracked, events: None)


def test_tracks_end_once_no_frame_was_tracked_for_their_buffer_and_not_before():
    shared = SharedTracker(ByteTrackTracker(Config(track_buffer=15)))  # kept 0.5 s without a detection
    emitted: list = []
    lock_held_while_emitting = []

    def emit(events, timeout):
        emitted.append(events)
        lock_held_while_emitting.append(shared._lock.locked())
        return True

    expiry = Expiry(shared, emit, every=0.02)
    expiry.start()
    try:
        t0 = time.time()
        for k in range(5):  # frames 0.1 s apart on the source's clock, as a live camera at 10 fps
            track(shared, person(10.0 * k), t0 + 0.1 * k)
            if k < 4:
                time.sleep(0.1)  # the camera's frame interval (no frame is late while they keep coming)
        assert emitted == []
        wait_until(lambda: emitted, 10, 0.01, "the track's end once no frame came")
        ended = [e for batch in emitted for e in batch]
        assert [e.kind for e in ended] == ["end"] and ended[0].track_id == 1
        assert ended[0].timestamp > t0 + 0.4 + 0.5  # after the last frame plus the buffer, on its clock
        assert all(lock_held_while_emitting) and shared.stats.live_tracks == 0
    finally:
        assert expiry.close() == []
    assert not expiry._thread.is_alive()


def test_nothing_expires_before_a_frame_interval_is_known_or_after_close():
    shared = SharedTracker(ByteTrackTracker())
    emitted: list = []
    expiry = Expiry(shared, lambda events, timeout: emitted.append(events) or True, every=0.02).start()
    track(shared, person(10.0), time.time())  # one frame only: how late the next one is, is unknown
    time.sleep(0.3)  # many looks meanwhile; nothing to wait for: nothing must happen
    assert emitted == [] and shared.stats.live_tracks == 1
    expiry.close()
    done = threading.Event()
    threading.Thread(target=lambda: (expiry.close(), done.set()), daemon=True).start()
    assert done.wait(5)  # closing twice is harmless


def test_an_error_while_expiring_is_logged_and_the_thread_looks_again(caplog):
    # an emit that fails once (e.g. the outputs queue in trouble) ended the thread: tracks then never expired
    shared = SharedTracker(ByteTrackTracker(Config(track_buffer=15)))
    emitted: list = []
    failures = []

    def emit(events, timeout):
        if not failures:
            failures.append(events)
            raise RuntimeError("outputs in trouble")
        emitted.append(events)
        return True

    expiry = Expiry(shared, emit, every=0.02).start()
    try:
        t0 = time.time()
        for k in range(3):
            track(shared, person(10.0 * k), t0 + 0.1 * k)
        wait_until(lambda: failures, 10, 0.01, "the failing emit")
        now = time.time()  # a second person, seen after the failure, must still be ended by the thread
        track(shared, person(300.0), now)
        track(shared, person(300.0), now + 0.1)
        wait_until(lambda: emitted, 10, 0.01, "an expiry after the error")
        assert expiry._thread.is_alive()
    finally:
        expiry.close()
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "RuntimeError: outputs in trouble" in errors[0], errors


def test_closing_while_the_outputs_are_full_hands_back_the_expired_tracks_instead_of_hanging():
    # the expiry thread used to wait in the outputs' put with no timeout: closing timed out after 5 s and
    # the run then ended every track without the lock, racing the thread
    shared = SharedTracker(ByteTrackTracker(Config(track_buffer=15)))
    tries = []
    expiry = Expiry(shared, lambda events, timeout: tries.append(events) and False, every=0.02).start()
    t0 = time.time()
    for k in range(3):
        track(shared, person(10.0 * k), t0 + 0.1 * k)
    wait_until(lambda: len(tries) >= 3, 10, 0.01, "the expiry thread trying again and again")
    closed = threading.Event()
    left: list = []
    threading.Thread(target=lambda: (left.extend(expiry.close()), closed.set()), daemon=True).start()
    assert closed.wait(4)  # well before the 5 s join would give up
    assert not expiry._thread.is_alive()
    assert [(e.kind, e.track_id) for batch in left for e in batch] == [("end", 1)]
    stop: list = []
    shared.end_all(stop.append)  # the run ends the rest: track 1 is not ended twice
    assert [len(batch) for batch in stop] == [0] and shared.stats.live_tracks == 0


class Slow:
    """An output that takes its time, as MQTT with a slow broker: the outputs queue fills up."""

    def __init__(self, rng: random.Random) -> None:
        self.items: list = []
        self.rng = rng

    def on_result(self, item) -> None:
        if self.rng.random() < 0.3:
            time.sleep(0.002)
        self.items.append(item)

    def close(self) -> None:
        pass


def test_stress_ending_a_live_run_while_tracks_expire_ends_every_track_exactly_once():
    """Run.close's order against a live run: frames come with gaps (tracks expire), a slow output keeps
    the small outputs queue full, and at an arbitrary moment the run ends (expiry closed, what it could not
    hand on handed on, every other track ended). Every track that got a `new` gets exactly one `end`, after
    every other event of it, and the run's `stop` batch comes last."""
    lost_anywhere = 0
    for seed in range(8):
        rng = random.Random(seed)
        shared = SharedTracker(ByteTrackTracker(Config(track_buffer=3)))  # kept 0.1 s at 30 fps
        out = Slow(random.Random(-seed))
        outputs = Worker([out], size=2)
        expiry = Expiry(shared, lambda events, wait: outputs.put(("lost", events), timeout=wait), every=0.003)
        expiry.start()
        stop = threading.Event()
        frames = threading.Event()

        def camera():
            t0, k = time.time(), 0
            while not stop.is_set():
                k += 1
                people = [p for p in range(4) if (k // (5 + p)) % 3]  # each comes and goes on its own beat
                dets = Detections([[50.0 + 120 * p + k, 100, 90.0 + 120 * p + k, 200] for p in people],
                                  [0.9] * len(people), [0] * len(people)) if people else Detections()
                shared.update(dets, t0 + k / 30, lambda tracked, events: outputs.put(("frame", events)))
                if k == 40:  # people have come and gone
                    frames.set()
                if rng.random() < 0.15:  # the stream goes silent a while: the expiry thread ends tracks
                    stop.wait(rng.uniform(0.05, 0.2))

        feeder = threading.Thread(target=camera, daemon=True)
        feeder.start()
        assert frames.wait(30)
        stop.wait(random.Random(seed).uniform(0.0, 0.5))  # then the run ends, as Run.close does it
        stop.set()
        feeder.join(10)
        assert not feeder.is_alive()
        for events in expiry.close():
            outputs.put(("lost", events))
        shared.end_all(lambda events: outputs.put(("stop", events)))
        outputs.close(timeout=30)

        assert out.items[-1][0] == "stop" and shared.stats.live_tracks == 0
        seen: dict[int, list[str]] = {}
        for _, events in out.items:
            for e in events:
                seen.setdefault(e.track_id, []).append(e.kind)
        for tid, kinds in seen.items():
            assert kinds[0] == "new" and kinds.count("end") == 1 and kinds[-1] == "end", (seed, tid, kinds)
        lost_anywhere += sum(len(events) for kind, events in out.items if kind == "lost")
    assert lost_anywhere  # tracks did end while no frame came

"""app/expiry.py: a live run's tracks end while no frame is tracked, as the next frame would have ended them."""
import threading
import time

from app.expiry import Expiry
from app.tracking.bytetrack import ByteTrackTracker, Config
from app.types import Detections
from tests.mqtt_util import wait_until


def person(x: float) -> Detections:
    return Detections([[x, 100, x + 40, 200]], [0.9], [0])


def test_tracks_end_once_no_frame_was_tracked_for_their_buffer_and_not_before():
    tracker = ByteTrackTracker(Config(track_buffer=15))  # kept 0.5 s without a detection
    emitted: list = []
    lock_held_while_emitting = []
    expiry = Expiry(tracker, lambda ev: (emitted.append(ev), lock_held_while_emitting.append(expiry.lock.locked())),
                    every=0.02)
    expiry.start()
    try:
        t0 = time.time()
        for k in range(5):  # frames 0.1 s apart on the source's clock, as a live camera at 10 fps
            with expiry.lock:
                tracker.update(person(10.0 * k), t0 + 0.1 * k)
                tracker.pop_events()
                expiry.tracked(t0 + 0.1 * k)
            if k < 4:
                time.sleep(0.1)  # the camera's frame interval (no frame is late while they keep coming)
        assert emitted == []
        wait_until(lambda: emitted, 10, 0.01, "the track's end once no frame came")
        ended = [e for batch in emitted for e in batch]
        assert [e.kind for e in ended] == ["end"] and ended[0].track_id == 1
        assert ended[0].timestamp > t0 + 0.4 + 0.5  # after the last frame plus the buffer, on its clock
        assert all(lock_held_while_emitting) and tracker.stats.live_tracks == 0
    finally:
        expiry.close()
    assert not expiry._thread.is_alive()


def test_nothing_expires_before_a_frame_interval_is_known_or_after_close():
    tracker = ByteTrackTracker()
    emitted: list = []
    expiry = Expiry(tracker, emitted.append, every=0.02).start()
    with expiry.lock:
        tracker.update(person(10.0), time.time())  # one frame only: how late the next one is, is unknown
        tracker.pop_events()
        expiry.tracked(time.time())
    time.sleep(0.3)  # many looks meanwhile; nothing to wait for: nothing must happen
    assert emitted == [] and tracker.stats.live_tracks == 1
    expiry.close()
    done = threading.Event()
    threading.Thread(target=lambda: (expiry.close(), done.set()), daemon=True).start()
    assert done.wait(5)  # closing twice is harmless


def test_an_error_while_expiring_is_logged_and_the_thread_looks_again(caplog):
    # an emit that fails once (e.g. the outputs queue in trouble) ended the thread: tracks then never expired
    tracker = ByteTrackTracker(Config(track_buffer=15))
    emitted: list = []
    failures = []

    def emit(ev):
        if not failures:
            failures.append(ev)
            raise RuntimeError("outputs in trouble")
        emitted.append(ev)

    expiry = Expiry(tracker, emit, every=0.02).start()
    try:
        t0 = time.time()
        for k in range(3):
            with expiry.lock:
                tracker.update(person(10.0 * k), t0 + 0.1 * k)
                tracker.pop_events()
                expiry.tracked(t0 + 0.1 * k)
        wait_until(lambda: failures, 10, 0.01, "the failing emit")
        with expiry.lock:  # a second person, seen after the failure, must still be ended by the thread
            tracker.update(person(300.0), time.time())
            tracker.update(person(300.0), time.time() + 0.1)
            tracker.pop_events()
            expiry.tracked(time.time() + 0.1)
        wait_until(lambda: emitted, 10, 0.01, "an expiry after the error")
        assert expiry._thread.is_alive()
    finally:
        expiry.close()
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "RuntimeError: outputs in trouble" in errors[0], errors

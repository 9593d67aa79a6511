"""Health is a pure function of part snapshots and the clock: every rule checked with plain values."""
from app.health import Health, HealthInputs, MqttLink, PartState, assess

READY = PartState("ready", 0, "", 0.0)


def inputs(**kw) -> HealthInputs:
    base = dict(backend=READY, source=READY, source_open=True, since_open=1.0, since_frame=0.5, processed=10,
                read=10, frame_period=0.1, detect_p95_ms=12.5, finished=False, mqtt=None)
    return HealthInputs(**{**base, **kw})


def test_a_running_pipeline_is_ok_everywhere():
    level, comps = assess(inputs(), wall=100.0)
    assert level == "ok" and {k: c.status for k, c in comps.items()} == {"backend": "ok", "source": "ok", "mqtt": "ok"}
    assert comps["backend"].detail == "inference p95 12.5 ms per frame" and comps["mqtt"].detail == "disabled"


def test_while_the_model_loads_the_source_is_not_open_yet_and_the_model_says_how_long():
    level, comps = assess(inputs(backend=PartState("loading", 0, "", 40.0), source=PartState("starting", 0, "", 40.0),
                                 source_open=False, since_frame=None, processed=0, read=0), wall=100.0)
    assert level == "degraded"
    assert comps["backend"].detail.startswith("model loading (a first DLPU compile takes minutes) for 60 s")
    assert comps["source"].detail == "not open yet (the model loads first)"


def test_frames_stop_coming_degraded_then_failing():
    stall = 5.0  # max(5 s, 10 frame periods of 0.1 s)
    assert assess(inputs(since_frame=stall - 0.1), 0)[1]["source"].status == "ok"
    assert assess(inputs(since_frame=stall + 1), 0)[1]["source"].status == "degraded"
    level, comps = assess(inputs(since_frame=12 * stall + 1), 0)
    assert level == "failing" and comps["source"].detail == "no frame for 61 s"


def test_frames_arrive_but_none_is_processed_is_a_failing_backend():
    level, comps = assess(inputs(processed=0, read=101, since_frame=None), 0)
    assert level == "failing" and comps["backend"].detail == "frames arrive but none was processed"
    assert assess(inputs(processed=0, read=99, since_frame=None), 0)[1]["backend"].status == "ok"


def test_a_part_retrying_or_failed_says_so_with_its_error():
    comps = assess(inputs(backend=PartState("retrying", 3, "server gone", 90.0)), wall=100.0)[1]
    assert comps["backend"].status == "degraded" and comps["backend"].detail == \
        "model retrying for 10 s (3 retries): server gone"
    level, comps = assess(inputs(source=PartState("failed", 0, "no such file", 0.0)), 0)
    assert level == "failing" and comps["source"].detail == "source failed: no such file"


def test_an_ended_source_and_a_disconnected_broker_are_degraded():
    level, comps = assess(inputs(finished=True, mqtt=MqttLink(False, "unreachable", "b:1883", "refused")), 0)
    assert level == "degraded"
    assert comps["source"].detail == "the source has ended"
    assert comps["mqtt"].detail == "not connected to b:1883 (refused); retrying"


def test_health_snapshot_is_a_frozen_copy():
    h = Health()
    h.set("retrying", "boom")
    snap = h.snapshot()
    h.set("ready")
    assert snap.state == "retrying" and snap.last_error == "boom" and h.snapshot().state == "ready"

"""The bounded, priority-aware queue between the pipeline and the MQTT client."""
from app.publish.outbound import Message, OutboundQueue


def ev(n: int, critical: bool) -> Message:
    return Message("v/events", str(n).encode(), 1, False, critical)


def drain(q: OutboundQueue) -> list[Message]:
    out = []
    while (m := q.pop()) is not None:
        out.append(m)
    return out


def test_full_queue_drops_the_oldest_update_never_new_or_end():
    q = OutboundQueue(bound=4)
    q.put_event(ev(0, True))
    for i in range(1, 4):
        q.put_event(ev(i, False))
    q.put_event(ev(4, True))  # full: update 1 goes
    q.put_event(ev(5, True))  # full: update 2 goes
    assert [m.payload for m in drain(q)] == [b"0", b"3", b"4", b"5"]
    assert q.dropped["update"] == 2 and q.dropped["critical"] == 0


def test_criticals_exceed_the_bound_until_the_hard_bound():
    q = OutboundQueue(bound=2, hard_bound=3)
    for i in range(5):
        q.put_event(ev(i, True))
    assert [m.payload for m in drain(q)] == [b"2", b"3", b"4"]
    assert q.dropped["critical"] == 2


def test_retained_state_keeps_the_latest_value_per_topic_and_skips_repeats():
    q = OutboundQueue(bound=10)
    assert q.set_retained(Message("v/counts/all", b"1", 1, True))
    assert q.set_retained(Message("v/counts/all", b"2", 1, True))
    assert not q.set_retained(Message("v/counts/all", b"2", 1, True))
    assert [(m.topic, m.payload) for m in drain(q)] == [("v/counts/all", b"2")]


def test_after_reconnect_all_state_is_sent_again_with_availability_last():
    q = OutboundQueue(bound=10)
    q.set_retained(Message("v/available", b"online", 1, True), last=True)
    q.set_retained(Message("v/counts/all", b"1", 1, True))
    q.put_event(ev(0, True))
    assert [m.topic for m in drain(q)] == ["v/counts/all", "v/available", "v/events"]
    q.mark_all_dirty()
    q.set_retained(Message("v/lines/door", b"{}", 1, True))
    assert [m.topic for m in drain(q)] == ["v/counts/all", "v/lines/door", "v/available"]


def test_frames_are_dropped_first_while_disconnected_and_beyond_their_bound():
    q = OutboundQueue(bound=10, frame_bound=2)
    q.put_frame(Message("v/frame", b"a", 0), connected=False)
    for p in (b"b", b"c", b"d"):
        q.put_frame(Message("v/frame", p, 0), connected=True)
    q.put_stats(Message("v/stats", b"s1", 0))
    q.put_stats(Message("v/stats", b"s2", 0))
    q.put_event(ev(0, False))
    assert [m.payload for m in drain(q)] == [b"0", b"s2", b"c", b"d"]
    assert q.dropped["frame"] == 2 and q.dropped["stats"] == 1
    q.put_frame(Message("v/frame", b"e", 0), connected=True)
    q.drop_volatile()
    assert q.pop() is None and q.dropped["frame"] == 3

"""app/publish/reports.py: stats on their clock; health with them and whenever a status in it changes."""
import json

from app.publish.payloads import Topics
from app.publish.reports import Reports


def health(source: str = "ok", detail: str = "last frame 0.1 s ago") -> dict:
    return {"status": "ok" if source == "ok" else "degraded",
            "components": {"source": {"status": source, "detail": detail}, "mqtt": {"status": "ok", "detail": "x"}}}


def test_health_goes_out_first_then_only_on_a_status_change_while_stats_are_off():
    doc = {"h": health()}
    r = Reports(Topics("vigil/t"), 0.0, None, lambda: doc["h"])
    assert not r.due(0.0, connected=False)  # nothing while the broker is away
    t = 1e9  # far on: due at once
    assert r.due(t, connected=True)
    stats, first = r.messages()
    assert stats is None and first.topic == "vigil/t/health" and first.retain and first.qos == 1
    doc["h"] = health(detail="last frame 0.3 s ago")  # only a detail changed
    assert not r.due(t + 0.5, True)  # looked at once a second
    assert r.due(t + 1.0, True) and r.messages() == (None, None)
    doc["h"] = health("degraded", "no frame for 6 s (reconnecting?)")
    assert r.due(t + 2.0, True)
    _, changed = r.messages()
    assert json.loads(changed.payload)["components"]["source"]["status"] == "degraded"


def test_stats_go_out_on_their_clock_and_take_health_with_them():
    r = Reports(Topics("vigil/t"), 60.0, lambda: {"process_fps": 9.5}, lambda: health())
    now = 1e9
    assert r.due(now, True)
    r.messages()  # the first health
    assert r.due(now + 1, True) and r.messages() == (None, None)  # unchanged: no health, no stats yet
    assert r.due(now + 61, True)
    stats, with_stats = r.messages()
    assert stats.topic == "vigil/t/stats" and not stats.retain and json.loads(stats.payload) == {"process_fps": 9.5}
    assert with_stats is not None  # health goes with every stats message, changed or not
    assert r.wait(now + 61) <= 1.0

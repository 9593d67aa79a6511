"""A site's mosquitto bridged to a central one (two real brokers, QoS 1 bridge, persistence): every new and
end event of the site's cameras (Vigil's own publisher) reaches a central consumer across a restart of the
central broker and a 60 s cut of the link. The scenario is bench/bridge.py's; about 2 minutes."""
from __future__ import annotations

import importlib.util

from tests.conftest import ROOT


def test_no_new_or_end_is_lost_across_a_central_restart_and_a_60_s_link_outage(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_bridge", ROOT / "bench" / "bridge.py")
    bridge = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bridge)
    said: list[str] = []
    out = bridge.bridge_run(tmp_path, outage=60, cameras=4, say=said.append)
    assert out["handed"] > 20, said  # events flowed before, between and after both faults
    assert out["lost"] == 0, (out, said)
    assert "bridge: link restored" in said


def test_consumers_scale_out_with_a_shared_subscription_each_event_to_one_of_them(mosquitto):
    """MQTT 5 shared subscriptions on mosquitto 2: two members of one group get every event once between
    them; a subscriber outside the group still gets them all (docs/fleet.md, scaling out the consumers)."""
    import json
    import threading

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from tests.mqtt_util import wait_until

    got: dict[str, list[tuple[str, int]]] = {"a": [], "b": [], "all": []}
    lock = threading.Lock()
    clients = []
    for name, topic in (("a", "$share/consumers/vigil/+/events"), ("b", "$share/consumers/vigil/+/events"),
                        ("all", "vigil/+/events")):
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"shared-{name}", protocol=mqtt.MQTTv5)

        def on_message(client, userdata, msg, name=name) -> None:
            with lock:
                got[name].append((msg.topic, json.loads(msg.payload)["seq"]))

        c.on_message = on_message
        subscribed = threading.Event()
        c.on_subscribe = lambda *a, ev=subscribed: ev.set()
        c.connect("127.0.0.1", mosquitto.port)
        c.loop_start()
        c.subscribe(topic, qos=1)
        wait_until(subscribed.is_set, 10, what=f"{name} subscribed")
        clients.append(c)
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="shared-pub", protocol=mqtt.MQTTv5)
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    sent = [(f"vigil/cam{i % 5}/events", i) for i in range(200)]
    for topic, seq in sent:
        pub.publish(topic, json.dumps({"type": "new", "seq": seq}), qos=1)
    try:
        wait_until(lambda: len(got["a"]) + len(got["b"]) >= 200 and len(got["all"]) >= 200, 30, 0.05, "every event")
    finally:
        for c in (*clients, pub):
            c.loop_stop()
            c.disconnect()
    assert sorted(got["a"] + got["b"]) == sorted(sent)  # each once, to one member of the group
    assert got["a"] and got["b"]  # and both members took a share
    assert sorted(got["all"]) == sorted(sent)

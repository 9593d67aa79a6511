"""Two of a kind (issue 23 §3, client ids): the default client id is unique per machine and device and
stable across restarts; two publishers with one id (a config cloned to two cameras) are recognised as
flapping and named in the log and health. Real mosquitto, two real publishers."""
import logging

from app.health import mqtt_component
from app.identity import default_client_id
from app.publish.config import MqttConfig
from app.publish.connection import FLAP_WINDOW, LinkState
from app.publish.mqtt import MqttPublisher
from app.publish.outbound import Message
from tests.mqtt_util import Subscriber, wait_until


def test_the_default_client_id_is_stable_and_differs_per_device_and_machine():
    cfg = MqttConfig(enabled=True)
    a, b = MqttPublisher(cfg, "cam-1", []), MqttPublisher(cfg, "cam-1", [])
    assert a.client_id == b.client_id == default_client_id("cam-1")  # a restart keeps it: the broker replaces a ghost
    assert a.client_id.startswith("vigil-cam-1-")
    assert MqttPublisher(cfg, "cam-2", []).client_id != a.client_id
    assert default_client_id("cam-1", "machine-a") != default_client_id("cam-1", "machine-b")  # a cloned config
    assert MqttPublisher(MqttConfig(enabled=True, client_id="mine"), "cam-1", []).client_id == "mine"


def test_two_publishers_with_one_client_id_are_named_as_flapping_in_the_log_and_health(mosquitto, caplog):
    caplog.set_level(logging.DEBUG, logger="app.publish.mqtt")
    cfg = MqttConfig(enabled=True, port=mosquitto.port, client_id="cloned-camera", reconnect_min_delay=1,
                     reconnect_max_delay=2)  # resume_delay 5 s: longer than each connection lasts
    one = MqttPublisher(cfg.model_copy(update={"topic_prefix": "vigil/twin1"}), "twin1", ["person"])
    two = MqttPublisher(cfg.model_copy(update={"topic_prefix": "vigil/twin2"}), "twin2", ["person"])
    try:
        one.start()
        wait_until(lambda: one.connected, 20, what="the first twin to connect")
        two.start()
        wait_until(lambda: one.link().flapping and two.link().flapping, 60,
                   what="both twins to see their connection flapping")
        for pub in (one, two):
            h = mqtt_component(pub.link())
            assert h.status == "degraded" and "flapping" in h.detail and "another client with this client id?" in h.detail
        # events no longer wait mqtt.resume_delay after each reconnect (the broker did not restart): they get out
        sub = Subscriber(mosquitto.port, "vigil/twin1/events")
        for k in range(3):
            one.adopt([Message("vigil/twin1/events", f'{{"n": {k}}}'.encode(), 1, False, True, "critical")],
                      first=False)
        wait_until(lambda: len({m.payload for m in sub.messages}) == 3, 60, what="the events of a flapping twin")
        sub.close()
    finally:
        one.close()
        two.close()
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    flapping = [m for m in said if "is flapping" in m]
    assert len(flapping) == 2 and all("mqtt.client_id" in m for m in flapping), flapping  # one per twin
    lost = [m for m in said if "lost the connection" in m]
    assert len(lost) <= 2 * 2, lost  # before it was named: at most FLAP_COUNT - 1 each; then debug only


def test_a_connection_that_lasts_clears_flapping_and_one_short_loss_is_no_flapping():
    link = LinkState("b:1883", 60, None)
    t = 1000.0
    for _ in range(2):
        link.up(t)
        link.down("Unspecified error", True, False, t + 1)
        t += 3
    assert link.flapping is None  # two short connections: could be a broker restart
    link.up(t)
    link.down("Unspecified error", True, False, t + 1)
    assert "another client with this client id?" in link.flapping
    link.up(t + 3)
    assert link.stable(t + 3 + FLAP_WINDOW - 1) is not None
    assert link.stable(t + 3 + FLAP_WINDOW) is None
    link.up(t + 100)
    link.down("x", True, False, t + 100 + 30)  # a connection of 30 s: not cut short
    assert link.flapping is None

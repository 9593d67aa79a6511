"""No silent death (issue 23 §1): a hostile command or a failing callback never ends paho's network
thread, and topic parts a broker would read as patterns are refused where the config is read.
Real mosquitto, real paho clients."""
import logging
import threading

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from app.callbacks import Guarded, short
from app.config import load_config
from app.errors import ConfigError
from app.publish.commands import parse_reset
from app.publish.config import MqttConfig
from app.publish.mqtt import MqttPublisher
from tests.conftest import run_vigil
from tests.mqtt_util import wait_until
from tests.test_cli import assert_one_clean_line


def command(port: int, topic: str, payload: bytes) -> None:
    """Publish one QoS 1 message from a client of its own, as Home Assistant (or anyone) would."""
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"cmd-{threading.get_ident()}")
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        c.publish(topic, payload, qos=1).wait_for_publish(10)
    finally:
        c.disconnect()
        c.loop_stop()


@pytest.fixture
def publisher(mosquitto):
    resets = []
    pub = MqttPublisher(MqttConfig(enabled=True, port=mosquitto.port, topic_prefix="vigil/poison"), "poison",
                        ["person"], lines=["door", "gate"])
    pub.resets.on_reset = resets.append
    pub.start()
    wait_until(lambda: pub.connected, 20, what="the publisher to connect")
    wait_until(lambda: pub.flush(1), 20, what="the initial state to go out")  # subscribed to the reset topic by now
    yield pub, resets
    pub.close()


def paho_thread_alive(pub: MqttPublisher) -> bool:
    t = pub._client._thread
    return t is not None and t.is_alive()


@pytest.mark.parametrize("depth", [100_000, 5_000])
def test_a_deeply_nested_reset_payload_gets_one_warning_and_the_feed_goes_on(publisher, mosquitto, caplog, depth):
    pub, resets = publisher
    caplog.set_level(logging.INFO)
    command(mosquitto.port, pub.resets.topic, b"[" * depth + b"]" * depth)
    command(mosquitto.port, pub.resets.topic, b"door")  # the thread still reads: this one is done
    wait_until(lambda: resets == [["door"]], 20, what="the reset after the poisoned one")
    assert paho_thread_alive(pub) and pub.connected
    warned = [r.getMessage() for r in caplog.records if "reset on" in r.getMessage() and "ignored" in r.getMessage()]
    assert len(warned) == 1 and ("nested JSON" in warned[0] or "bytes (at most" in warned[0]), warned
    assert len(warned[0]) < 400  # the payload itself is never in the log
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_bounds_are_checked_before_parsing():
    with pytest.raises(ValueError, match="nested JSON"):
        parse_reset(b"[[\"door\"]]", ["door"])
    with pytest.raises(ValueError, match="at most 16384"):
        parse_reset(b"door," * 5000, ["door"])
    assert parse_reset(b'["door", "[gate]"]', ["door", "[gate]"]) == ["door", "[gate]"]  # brackets in a name


def test_an_error_in_a_callback_is_logged_once_counted_and_paho_carries_on(publisher, mosquitto, caplog):
    pub, resets = publisher
    caplog.set_level(logging.INFO)
    real = pub.resets.handle

    def broken(msg):
        raise RuntimeError("x" * 10_000)

    pub.resets.handle = broken
    command(mosquitto.port, pub.resets.topic, b"door")
    command(mosquitto.port, pub.resets.topic, b"door")
    wait_until(lambda: pub.guard.snapshot().errors == 2, 20, what="both errors counted")
    pub.resets.handle = real
    command(mosquitto.port, pub.resets.topic, b"gate")
    wait_until(lambda: resets == [["gate"]], 20, what="a reset after the errors")
    assert paho_thread_alive(pub) and pub.connected
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "on_message" in errors[0] and "RuntimeError" in errors[0], errors  # one a minute
    assert len(errors[0]) < 500
    assert pub.guard.snapshot().last_error.startswith("on_message: RuntimeError")
    wait_until(lambda: pub.guard.snapshot().inside is None, 10, what="paho's thread to leave on_message")


def test_guarded_records_the_callback_a_thread_is_stuck_in():
    g = Guarded("x", logging.getLogger("test"))
    entered, release = threading.Event(), threading.Event()
    t = threading.Thread(target=g.wrap(lambda: (entered.set(), release.wait(10)), "on_message"))
    t.start()
    entered.wait(10)
    assert g.snapshot().inside == "on_message"
    release.set()
    t.join(10)
    assert g.snapshot().inside is None and g.snapshot().errors == 0
    assert short("y" * 1000, 10) == "yyyyyyyyyy… (1000 characters)"


@pytest.mark.parametrize("key,value,fragment", [
    ("mqtt.home_assistant.prefix", "ha/#", "wildcards"),
    ("mqtt.home_assistant.prefix", "+", "wildcards"),
    ("mqtt.home_assistant.prefix", "ha//discovery", "empty topic levels"),
    ("mqtt.home_assistant.prefix", "/", "must not be empty"),
    ("mqtt.topic_prefix", "vigil//cam", "empty topic levels"),
    ("mqtt.topic_prefix", "$SYS/vigil", "'$'"),
    ("mqtt.topic_prefix", "a\0b", "NUL"),
])
def test_topic_parts_a_broker_would_refuse_or_read_as_patterns_are_config_errors(key, value, fragment):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as e:
        load_config(None, {key: value}, env={})
    assert fragment in str(e.value)


def test_a_wildcard_discovery_prefix_exits_2_with_one_line(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("mqtt:\n  enabled: true\n  home_assistant:\n    discovery: true\n    prefix: 'ha/#'\n")
    assert_one_clean_line(run_vigil("run", "--config", str(cfg)), 2, "config error", "mqtt.home_assistant.prefix")


def test_a_slash_around_the_discovery_prefix_is_dropped():
    assert load_config(None, {"mqtt.home_assistant.prefix": "/ha/"}, env={}).mqtt.home_assistant.prefix == "ha"

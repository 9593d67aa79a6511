"""The first connect clears only what the configuration no longer implies (app/publish/expected.py): a
label's count or snapshot image that this run publishes only once the label is seen stays, with its
Home Assistant entity; a removed zone's, a dropped class's and an old line's topics go."""
import paho.mqtt.publish as publish

from app.config import load_config, resolve_labels
from app.publish.config import MqttConfig
from app.publish.expected import Expected
from app.publish.mqtt import MqttPublisher
from tests.mqtt_util import wait_until
from tests.test_mqtt import FAST, SCENE

DEVICE = "expect"
PREFIX = f"vigil/{DEVICE}"
NODE = f"vigil_{DEVICE}"


def config(**over):
    return load_config(None, {**FAST, **SCENE, "snapshots": {"enabled": True, "mqtt": {"enabled": True}}, **over},
                       env={})


def test_the_configuration_implies_counts_zones_lines_and_snapshot_images_of_labels_it_can_report():
    labels = resolve_labels("coco_labels.txt")
    e = Expected.of(config(), labels)
    assert e.labels == ["person", "bicycle", "car", "motorcycle", "bus", "truck"]  # decoder.classes
    assert e.snapshot_labels == e.labels and e.zones == {"walkway": [], "west": ["person"]}
    # snapshots.labels names the images announced at start
    assert Expected.of(config(**{"snapshots.labels": ["car"]}), labels).snapshot_labels == ["car"]
    # no class list: every label can be reported and is kept, but 80 images are not announced at start
    every = Expected.of(config(**{"decoder.classes": []}), labels)
    assert len(every.labels) == 80 and every.snapshot_labels == []
    assert Expected.of(config(**{"snapshots.enabled": False}), labels).snapshot_labels == []


def test_the_first_connect_keeps_what_the_configuration_implies_and_clears_the_rest(broker_factory):
    mosquitto = broker_factory().start()  # its own broker: the retained topics it leaves must not reach other tests
    labels = resolve_labels("coco_labels.txt")
    cfg = config(**{"mqtt": {"enabled": True, "port": mosquitto.port, "home_assistant": {"discovery": True}},
                    "device_id": DEVICE})
    ha = f"homeassistant/%s/{NODE}/%s/config"
    kept = {f"{PREFIX}/counts/bus": b"0", f"{PREFIX}/zones/walkway/truck": b"0",
            f"{PREFIX}/counts/vehicle": b"0",
            ha % ("sensor", "count_bus"): b"{}", ha % ("image", "snapshot_truck"): b"{}",
            ha % ("event", "crossing_crossing"): b"{}"}
    stale = {f"{PREFIX}/counts/dog": b"0",  # not among decoder.classes
             f"{PREFIX}/zones/west/car": b"0",  # west counts persons only
             f"{PREFIX}/zones/gone/person": b"0", f"{PREFIX}/lines/old": b"{}",
             ha % ("sensor", "count_dog"): b"{}", ha % ("image", "snapshot_dog"): b"{}",
             ha % ("event", "crossing_old"): b"{}", ha % ("button", "reset_old"): b"{}"}
    publish.multiple([{"topic": t, "payload": p, "qos": 1, "retain": True} for t, p in {**kept, **stale}.items()],
                     hostname="127.0.0.1", port=mosquitto.port)
    pub = MqttPublisher(MqttConfig(**cfg.mqtt.model_dump()), DEVICE, labels, lines=list(cfg.lines),
                        snapshots=True, expected=Expected.of(cfg, labels))
    pub.start()
    try:
        wait_until(lambda: pub._sweep.done, 20, 0.05, "the look for stale topics")
        assert sorted(pub.cleared) == sorted(stale)
    finally:
        pub.close()

"""The device id survives restarts: the same MQTT prefix and Home Assistant device after a restart, on a
laptop (an id generated once and kept beside state.file) and on the camera (its serial number, read
through ACAP Runtime's parameter service; here the emulator's)."""
from __future__ import annotations

import json
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from app.acap.emulator import SERIAL, Emulator, EmulatorConfig
from app.identity import ID_FILE, VALID, stored_id
from tests.conftest import SAMPLE_CLIP, run_vigil
from tests.mqtt_util import Subscriber, wait_until


def feed_ids(sub: Subscriber, runs_before: int) -> tuple[set[str], set[str]]:
    """(device ids in the topic prefixes, Home Assistant device identifiers) of the messages after the first
    `runs_before` ones."""
    msgs = sub.messages[runs_before:]
    prefixes = {m.topic.split("/")[1] for m in msgs if m.topic.startswith("vigil/")}
    devices = set()
    for m in msgs:
        if m.topic.startswith("homeassistant/") and m.payload:
            devices.update(json.loads(m.payload)["device"]["identifiers"])
    return prefixes, devices


def mqtt_run(port: int, state: Path, *args: str):
    return run_vigil("run", "--max-frames", "3", "--no-progress", "--set", "mqtt.enabled=true",
                     "--set", f"mqtt.port={port}", "--set", "mqtt.home_assistant.discovery=true",
                     "--set", f"state.file={state / 'state.json'}", *args)


def offline_after(sub: Subscriber, before: int, prefix: str = "vigil/") -> None:
    wait_until(lambda: any(m.topic.startswith(prefix) and m.topic.endswith("/available") and m.payload == b"offline"
                           for m in sub.messages[before:]), 20, what="the run's offline status")


def test_laptop_restart_keeps_the_generated_id(broker_factory, small_clip, tmp_path):
    mosquitto = broker_factory().start()  # its own broker: no other test's retained topics
    sub = Subscriber(mosquitto.port, "#")
    try:
        seen = []
        for _ in range(2):
            before = len(sub.messages)
            p = mqtt_run(mosquitto.port, tmp_path, "--source", str(small_clip))
            assert p.returncode == 0, p.stderr
            offline_after(sub, before)
            seen.append(feed_ids(sub, before))
    finally:
        sub.close()
    stored = (tmp_path / ID_FILE).read_text().strip()
    assert VALID.match(stored) and stored != socket.gethostname()
    (prefixes1, devices1), (prefixes2, devices2) = seen
    assert prefixes1 == prefixes2 == {stored}  # the same MQTT prefix, vigil/<id>/…
    assert devices1 and devices1 == devices2  # the same Home Assistant device


def test_camera_id_is_its_serial_and_stays_when_the_service_has_none(broker_factory, tmp_path):
    """On the camera: the serial; a later start whose parameter service gives none keeps it (stored)."""
    mosquitto = broker_factory().start()
    sock_dir = Path(tempfile.mkdtemp(prefix="vg", dir="/tmp"))  # Unix socket paths are short
    sub = Subscriber(mosquitto.port, "vigil/#")
    try:
        for serial in (SERIAL, None):
            emu = Emulator(EmulatorConfig(address=f"unix://{sock_dir}/id.sock", video=str(SAMPLE_CLIP),
                                          serial=serial)).start()
            try:
                before = len(sub.messages)
                p = mqtt_run(mosquitto.port, tmp_path, "--backend", "acap-runtime", "--source", "acap-runtime",
                             "--set", f"acap_runtime.address={emu.config.address}",
                             "--set", "acap_runtime.parameters=true", "--set", "acap_runtime.timeout=5",
                             "--set", "source.stream.width=320", "--set", "source.stream.height=240")
            finally:
                emu.stop()
            assert p.returncode == 0, p.stderr
            offline_after(sub, before, f"vigil/{SERIAL}/")
            assert feed_ids(sub, before)[0] == {SERIAL}
            if serial is None:
                assert "cannot read root.Properties.System.SerialNumber" in p.stderr
    finally:
        sub.close()
        shutil.rmtree(sock_dir, ignore_errors=True)
    assert (tmp_path / ID_FILE).read_text().strip() == SERIAL


def test_stored_id_replaces_a_damaged_file_and_survives_an_unwritable_dir(tmp_path, caplog):
    path = tmp_path / ID_FILE
    path.write_text("not a valid id/\n")
    made = stored_id(path)
    assert VALID.match(made) and made.startswith("vigil-") and path.read_text().strip() == made
    assert "holds no valid id" in caplog.text
    assert stored_id(path) == made  # read back, not made again
    assert stored_id(path, "ACCC8E000002") == "ACCC8E000002" and path.read_text().strip() == "ACCC8E000002"
    missing = tmp_path / "no-such-dir" / ID_FILE
    other = stored_id(missing)
    assert VALID.match(other) and "cannot store" in caplog.text


def test_emulator_command_serves_a_serial_by_default():
    from app.device_cli import add_commands
    import argparse

    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    assert parser.parse_args(["emulator"]).serial == SERIAL


@pytest.mark.parametrize("value", ["ACCC8E0E0001", "vigil-0a1b2c3d"])
def test_ids_fit_the_config_pattern(value):
    from app.config import load_config

    assert load_config(None, {"device_id": value}, env={}).device_id == value

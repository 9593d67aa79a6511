"""Switches Home Assistant (or anyone) flips over MQTT: `snapshots` turns the snapshot output on and off,
`detection` the model (app/detection_switch.py: frames are still read, no model runs while it is off).

`<prefix>/<switch>/set` takes `ON` or `OFF` (not retained: a retained command would flip at every
start); Vigil answers on `<prefix>/<switch>/state` (retained) and keeps the settings in
`<state.file without .json>.switches.json` beside the state file, so they survive a restart (without
`state.file`, in memory: a restart turns them back on). Accepted under the rule of the MQTT
resets (app/publish/commands.py `resets_allowed`: the broker checks credentials, is on this machine,
or `mqtt.allow_unauthenticated_changes`); otherwise neither subscribed to nor announced, and a switch
not offered counts as on (a saved `off` can never leave a camera without a way to turn it back on).

The switch rides on the publisher's command object (MqttPublisher.resets, whose `subscribe` runs at
every connect): `Commands` keeps the reset commands' interface and adds the switch's subscription,
whose messages paho hands to the switch's own callback (`message_callback_add`), not to
MqttPublisher's `on_message`.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Callable

log = logging.getLogger("app.publish.mqtt")

NAMES = ("snapshots", "detection")


def switches_path(state_file: str | Path | None) -> Path | None:
    """/data/state.json -> /data/state.switches.json (None without a state file)."""
    if not state_file:
        return None
    p = Path(state_file)
    return p.with_name(f"{p.stem}.switches.json")


class Switches:
    """The run's switches (outlive a publisher replaced by a settings change); any thread."""

    def __init__(self, state_file: str | Path | None) -> None:
        self.path = switches_path(state_file)
        self._lock = threading.Lock()
        self.state = {name: True for name in NAMES}
        if self.path is not None and self.path.exists():
            try:
                saved = json.loads(self.path.read_text())
                self.state.update({k: bool(v) for k, v in saved.items() if k in self.state})
            except (OSError, ValueError, AttributeError) as e:
                log.warning("mqtt: cannot read %s (%s); switches start on", self.path, e)
        self.publish: Callable[[str, bytes], None] | None = None  # retained state out (set per publisher)
        self.prefix = ""
        self.offered: tuple[str, ...] = ()  # the switches the publisher now in use takes commands for

    def offer(self, names, prefix: str, publish: Callable[[str, bytes], None] | None) -> None:
        """The switches a (new) publisher takes commands for, under `prefix`; say which are off."""
        self.offered, self.prefix, self.publish = tuple(n for n in NAMES if n in names), prefix, publish
        for name in self.offered:
            if not self.on(name):
                log.warning("mqtt: %s is off (switched off over MQTT); send ON to %s to turn it on", name,
                            self.topics(name)[0])

    def on(self, name: str) -> bool:
        """The switch's state; True while it is not offered."""
        with self._lock:
            return self.state[name] or name not in self.offered

    def snapshots_on(self) -> bool:
        return self.on("snapshots")

    def set(self, name: str, value: bool) -> None:
        with self._lock:
            changed, self.state[name] = self.state[name] != value, value
            saved = dict(self.state)
        if changed:
            log.info("mqtt: %s turned %s", name, "on" if value else "off")
            self._save(saved)
        self._announce(name)

    def _save(self, saved: dict) -> None:
        if self.path is None:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(saved))
            os.replace(tmp, self.path)
        except OSError as e:
            log.warning("mqtt: cannot save the switches to %s (%s); they are kept until exit", self.path, e)

    def topics(self, name: str) -> tuple[str, str]:
        return f"{self.prefix}/{name}/set", f"{self.prefix}/{name}/state"

    def _announce(self, name: str) -> None:
        if self.publish is not None:
            self.publish(self.topics(name)[1], b"ON" if self.on(name) else b"OFF")

    def report(self) -> dict[str, bool]:
        """Each switch's effect now (for /api/stats): off only while offered and switched off."""
        return {name: self.on(name) for name in NAMES}

    def subscribe(self, client) -> None:
        """At every connect: take commands, and say the state (retained)."""
        for name in self.offered:
            command = self.topics(name)[0]
            client.message_callback_add(command, self._message)
            client.subscribe(command, 1)
            self._announce(name)

    def _message(self, client, userdata, msg) -> None:
        try:  # paho's thread: never let an error out
            name = next((n for n in self.offered if msg.topic == self.topics(n)[0]), None)
            if name is None or msg.retain:
                return  # a retained command would flip the switch at every start
            text = msg.payload.decode("utf-8", "replace").strip().upper()
            if text not in ("ON", "OFF"):
                log.warning("mqtt: %s ignored: send ON or OFF, not %r", msg.topic, text[:40])
                return
            self.set(name, text == "ON")
        except Exception:
            log.exception("mqtt: handling %s failed", msg.topic)


class Commands:
    """A publisher's reset commands with the switches beside them (the interface MqttPublisher uses)."""

    def __init__(self, resets, switches: Switches) -> None:
        object.__setattr__(self, "_resets", resets)
        object.__setattr__(self, "_switches", switches)

    def __getattr__(self, name):
        return getattr(self._resets, name)

    def __setattr__(self, name, value) -> None:
        setattr(self._resets, name, value)

    def subscribe(self, client) -> None:
        self._resets.subscribe(client)
        self._switches.subscribe(client)

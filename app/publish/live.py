"""The run's MQTT output, whose publisher can be replaced while the run goes on (settings saved on site).

A replacement happens on the outputs thread between two results: the old publisher sends what it
has queued (bounded), says `offline` only when the broker changes, and hands its unacknowledged
events to the new one, which sends them before its own. `seq` comes from analytics, so it continues.
The new publisher's first connect clears the retained topics and Home Assistant entities of zones,
lines and labels the new configuration no longer has (app/publish/sweep.py).
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from app.publish.outbound import Message
from app.publish.payloads import dumps
from app.publish.switches import Commands, Switches
from app.types import FrameResult

log = logging.getLogger("app.publish.mqtt")


class LivePublisher:
    """A consumer that forwards to the current MqttPublisher; `replace` swaps it for another."""

    def __init__(self, publisher, state_file: str | None = None) -> None:
        self.pub = publisher
        self.switches = Switches(state_file)  # the run's, across publishers (app/publish/switches.py)
        self.on_end_delivered: Callable[[str], None] | None = None
        self.on_reset: Callable[[list[str] | None], Any] | None = None

    def start(self, initial: FrameResult | None = None) -> None:
        self._wire(self.pub)
        self.pub.start(initial)

    def _wire(self, pub) -> None:
        pub.on_end_delivered = self.on_end_delivered
        pub.resets.on_reset = self.on_reset
        sw = self.switches
        if not pub.discovery.switches:
            sw.offer((), pub.topics.prefix, None)
        else:  # accepted (and announced) under the rule of the resets
            sw.offer(pub.discovery.switches, pub.topics.prefix,
                     lambda topic, payload: pub.adopt([Message(topic, payload, 1, True, True, "critical")], False))
            pub.resets = Commands(pub.resets, sw)

    def on_result(self, result: FrameResult) -> None:
        self.pub.on_result(result)

    def retain_snapshot(self, label: str, jpeg: bytes) -> None:
        self.pub.retain_snapshot(label, jpeg)

    def announce(self, payload: dict) -> None:
        """A configuration change on `<prefix>/config` (QoS 1, not retained), in order with the events."""
        pub = self.pub
        pub.adopt([Message(f"{pub.topics.prefix}/config", dumps(payload), 1, False, True, "critical")], first=False)

    def replace(self, new, initial: FrameResult) -> None:
        """Hand over to `new` (made from the changed settings, not started) and start it with `initial`."""
        old = self.pub
        pending = old.close(timeout=2.0, successor=new.broker)
        self._wire(new)
        new.adopt(pending)
        self.pub = new
        new.start(initial)
        log.info("mqtt: settings changed: now %s under %s/ (%d undelivered events carried over)", new.broker,
                 new.topics.prefix, len(pending))

    watch_name = "mqtt"  # for the watchdog (app/watchdog.py): the threads of the publisher now in use

    def thread_problem(self) -> str | None:
        return self.pub.thread_problem()

    def revive(self) -> str | None:
        return self.pub.revive()

    def snapshot(self):
        return self.pub.snapshot()

    def link(self):
        return self.pub.link()

    @property
    def connected(self) -> bool:
        return self.pub.connected

    def close(self) -> None:
        self.pub.close()

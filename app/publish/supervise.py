"""The MQTT publisher's threads as the watchdog (app/watchdog.py) sees them: paho's network loop and
Vigil's sender. A mixin of MqttPublisher, kept apart so the publisher stays about publishing.

paho keeps its loop thread in `Client._thread` (set by loop_start, cleared by the thread itself when
its loop ends); the sender is ours. A dead network loop is restarted the way paho starts one:
`connect_async` and `loop_start`, whose first act is a fresh connection (paho's `reconnect` closes
the old socket, and resends unacknowledged QoS 1 messages), after the publisher's own bookkeeping of
a lost connection (events in flight queued again). A thread stuck in one of our callbacks cannot be
restarted; it is reported.
"""
from __future__ import annotations

import logging
import threading

from app.watchdog import STUCK_AFTER

log = logging.getLogger("app.publish.mqtt")


class Supervised:
    """thread_problem() and revive() for MqttPublisher (attributes are the publisher's)."""

    watch_name = "mqtt"

    def _network_thread(self) -> threading.Thread | None:
        t = getattr(self._client, "_thread", None)
        return t if isinstance(t, threading.Thread) else None

    def thread_problem(self) -> str | None:
        if self._stop or self._sender.ident is None:  # closing, or not started yet
            return None
        net = self._network_thread()
        if net is None or not net.is_alive():
            return f"the MQTT network thread has ended: nothing is sent to or read from {self.broker}"
        if not self._sender.is_alive():
            return "the MQTT sender thread has ended: nothing queued is sent"
        stuck = self.guard.snapshot()
        if stuck.inside is not None and stuck.inside_for >= STUCK_AFTER:
            return f"the MQTT network thread has been in {stuck.inside} for {stuck.inside_for:.0f} s (stuck)"
        return None

    def revive(self) -> str | None:
        done = []
        with self._cv:
            if self._stop:
                return None
            if not self._sender.is_alive():
                self._sender = threading.Thread(target=self._send_loop, name="mqtt-send", daemon=True)
                self._sender.start()
                done.append("the sender thread")
        net = self._network_thread()
        if net is None or not net.is_alive():
            # as if the connection was lost: what was in flight is queued again, state says reconnecting
            self._on_disconnect(self._client, None, None, "the network thread had ended", None)
            self._client.connect_async(self.cfg.host, self.cfg.port, self.cfg.keepalive)
            self._client.loop_start()
            done.append("the network thread")
        return " and ".join(done) or None

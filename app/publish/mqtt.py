"""MQTT publisher: paho-mqtt on its own threads behind a bounded, priority-aware queue.

`on_result` (the outputs thread) only serialises and queues. A sender thread hands queued messages to
paho while connected (at most `max_inflight` unacknowledged); paho's network thread connects, reconnects
with capped back-off and resends unacknowledged QoS 1 messages. On every (re)connect all retained state
is queued again, then `available = online`; after an outage queued events follow `mqtt.resume_delay` s
later, once subscribers of a restarted broker are back. The last will is `available = offline`, retained.
"""
from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from typing import Callable

import paho.mqtt.client as paho

from app import __version__
from app.callbacks import Guarded
from app.health import MqttLink
from app.identity import default_client_id
from app.publish.commands import ResetCommands
from app.publish.config import MqttConfig
from app.publish.connection import LinkState, make_client
from app.publish.discovery import Discovery
from app.publish.expected import Expected
from app.publish.images import LatestImage
from app.publish.outbound import Leftover, Message, OutboundQueue
from app.publish.payloads import Topics, dumps, frame_message
from app.publish.reports import Reports
from app.publish.supervise import Supervised
from app.publish.sweep import StaleSweep
from app.stats import MqttDropped, MqttStats, MqttUndelivered
from app.types import FrameResult

log = logging.getLogger(__name__)


class MqttPublisher(Supervised):
    """Publishes analytics results and state; never blocks its caller on the network (its threads: supervise.py)."""

    def __init__(self, cfg: MqttConfig, device_id: str, labels: list[str],
                 stats: Callable[[], dict] | None = None, health: Callable[[], dict] | None = None,
                 lines: list[str] | tuple = (), configuration_url: str | None = None, snapshots: bool = False,
                 latest: LatestImage | None = None, expected: Expected | None = None) -> None:
        self.cfg = cfg
        self.device_id = device_id
        self.labels = labels
        self.topics = Topics(cfg.topic_prefix or f"vigil/{device_id}")
        self.client_id = cfg.client_id or default_client_id(device_id)  # stable, unique per machine
        self.broker = f"{cfg.host}:{cfg.port}"
        self._reports = Reports(self.topics, cfg.stats_interval, stats, health)
        self.resets = ResetCommands(cfg, self.topics.reset_command, list(lines))  # set its on_reset
        self.latest = latest
        self.discovery = Discovery(self.topics, cfg.home_assistant.prefix, device_id, __version__, configuration_url,
                                   lines, self.resets.enabled, latest is not None and latest.cfg.interval > 0, snapshots,
                                   expected)
        self._cv = threading.Condition()
        self._q = OutboundQueue(cfg.queue_size)
        self._outstanding: dict[int, Message] = {}  # mid -> message paho has not finished
        self._early: set[int] = set()  # mids paho finished before the sender recorded them
        self._orphans: set[int] = set()  # mids of events paho resends on reconnect that were queued again
        self._requeued = 0  # events queued again at the front since the last disconnect
        self._connected = False
        self._stop = False
        self.link_state = LinkState(self.broker, cfg.reconnect_max_delay, cfg.username)
        self.sent = 0  # acknowledged by the broker (QoS 1) or written to its socket (QoS 0)
        self.undelivered = {"critical": 0, "update": 0, "other": 0}  # given up on at exit
        self._hold_until = 0.0  # queued events wait until then after a reconnect (mqtt.resume_delay)
        self.on_end_delivered: Callable[[str], None] | None = None  # called with an object id (under the lock)
        self._sweep = StaleSweep(self.topics, cfg.home_assistant.prefix, device_id, cfg.connect_timeout,
                                 expected.kept(self.topics, self.discovery) if expected is not None else ())
        self.cleared: list[str] = []  # retained topics this run deleted because the configuration lacks them
        self._unsubscribe = False  # the sender should end the sweep's subscription (outside the lock)
        self._seen: tuple = (None, None, None)  # the counts/zones/lines dicts last queued
        self.guard = Guarded("mqtt", log)  # every paho callback: an error is logged and survived
        self._client = self._make_client()
        self._sender = threading.Thread(target=self._send_loop, name="mqtt-send", daemon=True)

    # ---- set-up -----------------------------------------------------------------------

    def _make_client(self) -> paho.Client:
        return make_client(self.cfg, self.client_id, self.topics.available, self.guard, {
            n: getattr(self, f"_{n}") for n in ("on_connect", "on_disconnect", "on_connect_fail", "on_publish",
                                                "on_socket_open", "on_subscribe", "on_message")})

    def start(self, initial: FrameResult | None = None) -> None:
        """Queue the initial state, connect in the background, start sending."""
        with self._cv:
            if self.cfg.home_assistant.discovery:
                for ht, hp in self.discovery.static():
                    self._q.set_retained(Message(ht, dumps(hp), 1, True))
            if initial is not None:
                self._queue_state(initial)
            self._q.set_retained(Message(self.topics.available, b"online", 1, True), last=True)
        log.info("mqtt: publishing to %s under %s/ as %s", self.broker, self.topics.prefix, self.client_id)
        with self._cv:
            self.link_state.connecting()
        self._client.connect_async(self.cfg.host, self.cfg.port, self.cfg.keepalive)
        self._client.loop_start()
        self._sender.start()

    # ---- producer side (publish worker thread) ------------------------------------------

    def on_result(self, result: FrameResult) -> None:
        """Queue this frame's events, changed state and (when enabled) the frame message."""
        qos = self.cfg.qos
        msgs = [Message.of_event(self.topics.events, e, qos) for e in result.events]
        frame_msg = None
        image = self.latest.due(result) if self.latest is not None else None
        if self.cfg.frame:
            frame_msg = Message(self.topics.frame, dumps(frame_message(
                result.epoch, result.size, result.objects, result.ended, self.labels)), 0, False)
        with self._cv:
            for m in msgs:
                self._q.put_event(m)
            self._queue_state(result)
            if frame_msg is not None:
                self._q.put_frame(frame_msg, self._connected)
            if image is not None:
                self._q.put_frame(Message(self.topics.latest_image, image, 0, False), self._connected)
            self._cv.notify()

    def retain_snapshot(self, label: str, jpeg: bytes) -> None:
        """The best view of an object as <prefix>/<label>/snapshot and <prefix>/all/snapshot (retained)."""
        with self._cv:
            self._retain(self.topics.snapshot(label), jpeg)
            self._retain(self.topics.snapshot("all"), jpeg)
            self._cv.notify()

    def _queue_state(self, r: FrameResult) -> None:
        seen_counts, seen_zones, seen_lines = self._seen
        t = self.topics
        if r.counts is not seen_counts:
            for label, n in r.counts.items():
                self._retain(t.count(label), str(n).encode())
        if r.zones is not seen_zones:
            for zone, per in r.zones.items():
                for label, n in per.items():
                    self._retain(t.zone(zone, label), str(n).encode())
        if r.lines is not seen_lines:
            for name, st in r.lines.items():
                self._retain(t.line(name), dumps(st))
        self._seen = (r.counts, r.zones, r.lines)

    def _retain(self, topic: str, payload: bytes) -> None:
        new_topic = topic not in self._q.retained
        self._q.set_retained(Message(topic, payload, 1, True))
        if new_topic and self.cfg.home_assistant.discovery:
            for ht, hp in self.discovery.for_state(topic):
                self._q.set_retained(Message(ht, dumps(hp), 1, True))

    # ---- sender thread ------------------------------------------------------------------

    def _send_loop(self) -> None:
        while True:
            reports = unsubscribe = False
            with self._cv:
                while True:
                    if self._stop:
                        return
                    now = time.monotonic()
                    if self._reports.due(now, self._connected):
                        reports = True
                        break
                    self._check_handshake(now)
                    if self._sweep.expired(now):
                        self._unsubscribe = True
                        log.info("mqtt: no answer on stale retained topics in %g s; clearing none", self.cfg.connect_timeout)
                    if self._unsubscribe:
                        self._unsubscribe, unsubscribe = False, True
                        break
                    events_ok = now >= self._hold_until
                    if self._connected and self._q.ready(events_ok) and len(self._outstanding) < self.cfg.max_inflight:
                        msg = self._q.pop(events_ok)
                        break
                    wait = self._reports.wait(now)
                    if self._connected and not events_ok and self._q.events:
                        wait = min(wait, self._hold_until - now)
                    self._cv.wait(timeout=max(wait, 0.001))
            if unsubscribe:
                self._client.unsubscribe(self._sweep.filters())
                continue
            if reports:
                try:
                    stats, health = self._reports.messages()
                except Exception:  # stats must never stop publishing
                    log.exception("mqtt: building stats failed")
                    continue
                with self._cv:
                    if stats is not None:
                        self._q.put_stats(stats)
                    if health is not None:
                        self._q.set_retained(health)
                continue
            try:
                info = self._client.publish(msg.topic, msg.payload, msg.qos, msg.retain)
            except Exception as e:  # a bad topic or payload is a bug; do not let it stop the feed
                log.error("mqtt: cannot publish to %s: %s", msg.topic, e)
                continue
            with self._cv:
                if info.mid in self._early:
                    self._early.discard(info.mid)
                    self._delivered(msg)
                elif not self._connected and msg.qos and msg.kind != "other":
                    # the connection went down during publish() (paho noticed it writing this one), so
                    # _on_disconnect did not see it: queue it again like the others it found
                    self._q.events.insert(self._requeued, msg)
                    self._requeued += 1
                    self._orphans.add(info.mid)
                elif info.rc in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN) and (msg.qos or info.rc == 0):
                    # QoS 1 messages paho could not send yet are resent by paho after the reconnect
                    self._outstanding[info.mid] = msg

    # ---- paho callbacks (paho's network thread) --------------------------------------------

    def _on_socket_open(self, client, userdata, sock) -> None:
        with self._cv:
            self.link_state.socket_opened(time.monotonic())
            self._cv.notify_all()

    def _check_handshake(self, now: float) -> None:
        """Give up on a peer that took the TCP connection but has not answered CONNECT (sender thread, locked)."""
        if self._connected or not self.link_state.handshake_overdue(now, self.cfg.connect_timeout):
            return
        sock = self._client.socket()
        if sock is not None:
            try:  # paho's network thread sees the connection end and reconnects with its back-off
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        with self._cv:
            self.link_state.socket_closed()
        if reason_code.is_failure:
            with self._cv:
                self._connected = False
                self.link_state.refused(reason_code)
            return
        if not self._sweep.done:  # before any state goes out, so our own 'online' comes back after the retained
            rc, mid = client.subscribe([(f, 1) for f in self._sweep.filters()])
            if rc == paho.MQTT_ERR_SUCCESS:
                with self._cv:
                    self._sweep.begin(mid, time.monotonic())
        self.resets.subscribe(client)
        with self._cv:
            self._connected = True
            after_outage = self.link_state.up()
            self._q.mark_all_dirty()
            # Retained state and 'online' go now; events wait: a broker that has just restarted has no
            # subscriptions until its clients are back, and hands what it gets meanwhile to nobody.
            hold = self.cfg.resume_delay if after_outage and not self.link_state.flapping else 0.0  # no restart
            self._hold_until = time.monotonic() + hold
            waiting = len(self._q.events)
            self._cv.notify_all()
        say = log.debug if self.link_state.flapping else log.info  # one warning said it all (connection.py)
        if hold and waiting:
            say("mqtt: %s to %s; state republished, %d queued events follow in %g s (mqtt.resume_delay)",
                "connected" if self.link_state.connects == 1 else "reconnected", self.broker, waiting, hold)
        else:
            say("mqtt: %s to %s", "connected" if self.link_state.connects == 1 else "reconnected", self.broker)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        with self._cv:
            was = self._connected
            self._connected = False
            self.link_state.socket_closed()
            self._sweep.interrupted()
            self._q.drop_volatile()
            # QoS 0 messages in paho's buffer are gone. paho resends unacknowledged QoS 1 ones the moment
            # it reconnects, before subscribers of a restarted broker are back; so events among them are
            # queued again to go after mqtt.resume_delay (a subscriber may get both copies: at-least-once).
            mids, self._outstanding = self._q.requeue_unacknowledged(self._outstanding)
            self._orphans.update(mids)
            self._requeued = len(mids)
            self.link_state.down(reason_code, was, self._stop)
            self._cv.notify_all()

    def _on_connect_fail(self, client, userdata) -> None:
        error = sys.exc_info()[1]  # paho calls this while it handles the attempt's OSError: say which
        with self._cv:
            self._connected = False
            self.link_state.unreachable(error, self.cfg.tls.enabled)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._cv:
            if mid in self._orphans:  # the copy paho resent; the queued one is counted when it goes
                self._orphans.discard(mid)
                return
            self.sent += 1
            msg = self._outstanding.pop(mid, None)
            if msg is None:
                self._early.add(mid)
            else:
                self._delivered(msg)
            self._cv.notify()

    # ---- stale retained topics (app/publish/sweep.py) ----------------------------------------

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        with self._cv:
            refused = self._sweep.refused(mid, any(rc.is_failure for rc in reason_codes))
        if refused:
            log.info("mqtt: the broker refused a subscription to Vigil's own topics; stale retained topics "
                     "of earlier configurations are not cleared")
            client.unsubscribe(self._sweep.filters())

    def _on_message(self, client, userdata, msg) -> None:
        if msg.topic == self.resets.topic:
            self.resets.handle(msg)
            return
        with self._cv:
            stale = self._sweep.message(msg.topic, msg.retain, msg.payload, self._q.retained)
            if stale is None:
                return
            for t in stale:
                self._q.clears.append(Message(t, b"", 1, True))
            self.cleared += stale
            self._cv.notify()
        client.unsubscribe(self._sweep.filters())
        if stale:
            log.info("mqtt: cleared %d retained topics the configuration no longer has: %s", len(stale),
                     ", ".join(stale[:10]) + (", …" if len(stale) > 10 else ""))

    def _delivered(self, msg: Message) -> None:
        if msg.ended is not None and self.on_end_delivered is not None:
            try:
                self.on_end_delivered(msg.ended)
            except Exception:  # bookkeeping must never break paho's thread
                log.exception("mqtt: recording a delivered end failed")

    # ---- status and shutdown --------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    def snapshot(self) -> MqttStats:
        """Counters and connection state now (any thread)."""
        with self._cv:
            return MqttStats(
                connected=self._connected, state=self.link_state.state, broker=self.broker, client_id=self.client_id,
                topic_prefix=self.topics.prefix, queued=len(self._q), inflight=len(self._outstanding), sent=self.sent,
                dropped=MqttDropped(**{k: int(self._q.dropped.get(k, 0)) for k in ("frame", "update", "stats", "critical")}),
                undelivered=MqttUndelivered(**self.undelivered), reconnects=max(self.link_state.connects - 1, 0),
                last_error=self.link_state.last_error,
            )

    def link(self) -> MqttLink:
        """What health judges the connection on."""
        with self._cv:
            return MqttLink(self._connected, self.link_state.state, self.broker, self.link_state.last_error,
                            self.link_state.stable(), self.thread_problem())

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued is sent and acknowledged (only while connected); return whether it was."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while self._connected and (len(self._q) or len(self._outstanding)):
                if (left := deadline - time.monotonic()) <= 0:
                    return False
                self._cv.wait(timeout=min(left, 0.05))
            return not len(self._q) and not len(self._outstanding)

    def close(self, timeout: float = 5.0, successor: str | None = None) -> list[Message]:
        """Send what is queued (bounded by timeout), publish `offline` (not when a successor on the same broker
        takes over), disconnect; return the events not acknowledged, for a `successor` (at least once)."""
        self.flush(timeout)
        if successor != self.broker:
            with self._cv:
                self._q.set_retained(Message(self.topics.available, b"offline", 1, True), last=True)
                self._cv.notify()
            self.flush(min(timeout, 2.0))
        with self._cv:
            self._stop = True
            self.link_state.closed()
            left = Leftover.of(self._q, self._outstanding.values())
            self.undelivered = n = left.counts()
            self._cv.notify_all()
        if sum(n.values()) and successor is None:
            log.warning("mqtt: %d messages (%d new/end events, %d updates) not delivered to %s before exit",
                        sum(n.values()), n["critical"], n["update"], self.broker)
        if self._sender.is_alive():
            self._sender.join(timeout=2.0)
        self._client.disconnect()
        self._client.loop_stop()
        return left.events

    def adopt(self, events: list[Message], first: bool = True) -> None:
        """Events to send before this publisher's own (a predecessor's undelivered ones), or next in line."""
        with self._cv:
            for m in reversed(events) if first else events:
                self._q.events.appendleft(m) if first else self._q.put_event(m)
            self._cv.notify()

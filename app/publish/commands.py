"""Commands Home Assistant (or anyone) sends over MQTT: line count resets on `<prefix>/counts/reset/set`.

Protected the way the HTTP reset is (docs/mqtt.md, *Resetting counts from Home Assistant*): the
HTTP API takes a change from a client that proved who it is (the bearer token) or that is on this
machine (loopback); anyone else only with an explicit opt-in. Over MQTT the broker is the one
that knows who publishes, so Vigil accepts resets when the broker checks credentials (Vigil logs
in with `mqtt.username`; restrict who may publish to the topic with the broker's ACL), when the
broker is on this machine, or with `mqtt.allow_unauthenticated_changes: true`. Otherwise it does
not subscribe, and the reset buttons are not announced. Never the API token in a payload: Home
Assistant's button would have to carry it in a retained discovery config anyone can read.
"""
from __future__ import annotations

import json
import logging
import threading
from typing import Callable

from app.api.config import is_loopback
from app.callbacks import short
from app.logtext import shorten_list
from app.publish.config import MqttConfig

log = logging.getLogger(__name__)
MAX_PAYLOAD = 16384  # bytes of a reset message: a few hundred line names
MAX_DEPTH = 1  # a JSON list of names; nothing nested in it


def nesting(text: str, limit: int) -> int:
    """How deep JSON brackets nest in `text` (strings skipped), counting no further than limit + 1: a
    cheap look before json.loads, whose recursion a deeply nested payload would exhaust."""
    depth = deepest = 0
    in_string = escaped = False
    for c in text:
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                break
        elif c in "]}":
            depth -= 1
    return deepest


def resets_allowed(cfg: MqttConfig) -> tuple[bool, str]:
    """Whether MQTT resets are accepted, and why (for the log)."""
    if cfg.username:
        return True, f"the broker checks credentials (user {cfg.username!r}); restrict the topic with its ACL"
    if is_loopback(cfg.host):
        return True, "the broker is on this machine"
    if cfg.allow_unauthenticated_changes:
        return True, "mqtt.allow_unauthenticated_changes is set"
    return False, (f"the broker {cfg.host} is reached without credentials; set mqtt.username (and the broker's ACL) "
                   "or mqtt.allow_unauthenticated_changes: true")


def parse_reset(payload: bytes, lines: list[str]) -> list[str] | None:
    """The lines a reset message names: None for all (PRESS, all), else the names; ValueError for an
    empty message, an unknown line or a payload that is not a name, a comma list or a JSON list of
    names. An empty message is what deleting a retained message on the topic sends to everyone
    subscribed, so it resets nothing. Size and nesting are checked before anything is parsed."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"message of {len(payload)} bytes (at most {MAX_PAYLOAD}); send all, PRESS or line names")
    text = payload.decode("utf-8", "replace").strip()
    if text in ("PRESS", "all", "ALL"):
        return None
    if not text:
        raise ValueError("empty message (as deleting a retained message sends); send all, PRESS or line names")
    if text.startswith("["):
        if nesting(text, MAX_DEPTH) > MAX_DEPTH:
            raise ValueError("nested JSON; send a flat JSON list of line names")
        try:
            names = json.loads(text)
        except ValueError:
            raise ValueError("not a JSON list of line names") from None
        except RecursionError:  # not reached after the nesting check; kept so no payload can kill the thread
            raise ValueError("nested JSON; send a flat JSON list of line names") from None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError("not a JSON list of line names")
    else:
        names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ValueError("no line names in the message; send all, PRESS or line names")
    unknown = [n for n in names if n not in lines]
    if unknown:
        raise ValueError(f"no line named {short(unknown[0], 80)!r} (lines: {short(', '.join(lines) or 'none')})")
    return names


class ResetCommands:
    """The reset topic of one publisher: whether it is accepted, and what a message on it does."""

    def __init__(self, cfg: MqttConfig, topic: str, lines: list[str]) -> None:
        self.topic = topic
        self.lines = list(lines)
        allowed, why = resets_allowed(cfg)
        self.enabled = allowed and bool(self.lines)
        if self.lines:
            log.info("mqtt: line count resets on %s %s: %s", topic, "accepted" if allowed else "refused", why)
        self.on_reset: Callable[[list[str] | None], object] | None = None  # Run.reset_counts

    def subscribe(self, client) -> None:
        """Subscribe on a (re)connect: the session is clean, so every time."""
        if self.enabled:
            client.subscribe(self.topic, 1)

    def handle(self, msg) -> None:
        """A message on the topic (paho's thread): checked here, done on a thread of its own (the reset
        waits for the outputs, and paho's thread must go on)."""
        if msg.retain or not self.enabled or self.on_reset is None:
            return  # a retained command would reset at every start
        try:
            names = parse_reset(msg.payload, self.lines)
        except ValueError as e:
            log.warning("mqtt: reset on %s ignored: %s", msg.topic, short(e))
            return
        log.info("mqtt: line counts reset by %s: %s", msg.topic, shorten_list(names or self.lines, 20))
        threading.Thread(target=self._reset, args=(names,), name="mqtt-reset", daemon=True).start()

    def _reset(self, names: list[str] | None) -> None:
        try:
            self.on_reset(names)
        except Exception as e:  # noqa: BLE001 - a thread of our own: say it, never a bare traceback
            log.error("mqtt: the line count reset failed: %s", short(f"{type(e).__name__}: {e}"))

"""What a configuration implies Vigil publishes retained, before it has published it.

The first connect of a publisher clears retained topics of zones, lines and labels an earlier
configuration had (app/publish/sweep.py). A topic this run has not published *yet* is not stale:
a label's count, a zone's per-label count or a label's snapshot image appears only once that label
is seen, which may be days after a restart. Clearing it at start would delete its Home Assistant
entity (and the name and settings a user gave it) only for it to come back later as a new one.

So the sweep keeps every topic the configuration can still produce:
- `counts/<label>` and `zones/<zone>/<label>` for the labels the model can report (`decoder.classes`
  when set, else every label of the model), the zone's own labels, the label groups and `all`, for
  the configured zones;
- `lines/<line>` for the configured lines;
- the Home Assistant discovery configs of all of those, of the static entities this publisher
  announces, and of the per-label snapshot images when snapshots go out over MQTT.
And with snapshots over MQTT, the image entities of the labels named by `snapshots.labels` (else
`decoder.classes`, else a model's labels when there are at most 20) are announced at start.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from app.publish.commands import resets_allowed
from app.publish.payloads import Topics

ANNOUNCE_MAX = 20  # with no label list given, a model with more labels gets its images as each label first appears


@dataclass
class Expected:
    labels: list[str]  # labels the model can report under this configuration
    zones: dict[str, list[str]] = field(default_factory=dict)  # zone -> its own labels (empty: every label)
    lines: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    snapshots: bool = False  # snapshots go out over MQTT
    snapshot_labels: list[str] = field(default_factory=list)  # their image entities are announced at start
    switches: list[str] = field(default_factory=list)  # switches Home Assistant may flip (app/publish/switches.py)
    loitering: list[str] = field(default_factory=list)  # zones with a loitering_time (a device trigger each)

    @classmethod
    def of(cls, cfg, model_labels: list[str]) -> "Expected":
        """From a validated Config and the model's labels."""
        classes = [lab for lab in cfg.decoder.classes if lab in model_labels] or list(model_labels)
        snapshots = bool(cfg.snapshots.enabled and cfg.snapshots.mqtt.enabled)
        named = cfg.snapshots.labels or cfg.decoder.classes or (classes if len(classes) <= ANNOUNCE_MAX else [])
        allowed = resets_allowed(cfg.mqtt)[0]
        switches = (["snapshots"] if cfg.snapshots.enabled and allowed else []) + (["detection"] if allowed else [])
        return cls(labels=classes, zones={n: list(z.labels) for n, z in cfg.zones.items()}, lines=list(cfg.lines),
                   groups=list(cfg.model.groups), snapshots=snapshots,
                   snapshot_labels=[lab for lab in dict.fromkeys(named) if lab in classes] if snapshots else [],
                   switches=switches, loitering=[n for n, z in cfg.zones.items() if z.loitering_time > 0])

    def state_topics(self, topics: Topics) -> set[str]:
        """The retained count, zone and line topics this configuration can publish."""
        extra = ["all", *self.groups]
        zone_labels = {lab for z in self.zones.values() for lab in z}
        counted = [*self.labels, *zone_labels, *extra]
        out = {topics.count(lab) for lab in counted}
        for zone, own in self.zones.items():
            out |= {topics.zone(zone, lab) for lab in [*(own or self.labels), *extra]}
        out |= {topics.line(ln) for ln in self.lines}
        return out

    def kept(self, topics: Topics, discovery) -> set[str]:
        """Every retained topic the sweep must leave alone: state topics and their discovery configs."""
        states = self.state_topics(topics)
        out = set(states)
        if discovery is None:
            return out
        for t in sorted(states):
            out |= {ht for ht, _ in discovery.for_state(t)}
        out |= {ht for ht, _ in discovery.static()}
        if self.snapshots:
            for lab in self.labels:
                out |= {ht for ht, _ in discovery.for_state(topics.snapshot(lab))}
        return out

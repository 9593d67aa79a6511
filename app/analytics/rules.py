"""Zone and line rules: what the analytics asks of every rule, and the registry of rules set in `rules:`.

A rule looks at the tracks seen in one frame and says, per track, which of its change reasons
happened (an `update` event lists them). Zones, lines and stationary objects are rules with their
own config sections (`zones`, `lines`, `stationary`); a new rule is one module with

    class Config(PluginConfig):                    # one entry of `rules:`, tagged by type
        type: Literal["mine"] = "mine"
    def build(cfg: Config, ctx: RunContext) -> Rule: ...

and one line `"mine": "app.analytics.mine"` in RULES. Its per-track state is columns of the
analytics table (rows come and go with the tracks, so nothing else needs forgetting). Rules run in
a fixed order, built-ins first, then `rules:` in the order written, and a rule may read the columns
of the rules before it (a zone's `member`); docs/plugins.md has the guide.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from app.analytics.geometry import anchor_points
from app.analytics.table import ColumnSpec, Table
from app.plugins import PluginConfig, Registry, RunContext

# one line per rule: type name -> module (its Config and build); the built-in rules have sections of their own
RULES = Registry("rule", "rules.*", {})


@dataclass
class Seen:
    """The tracks observed in one frame, as a rule sees them: `rows` of the table `T` (k of them), their
    class ids and normalised boxes (x1, y1, x2, y2 in 0..1), and per row whether it is new this frame,
    was published before it (only those raise change reasons) and is published now."""

    T: Table
    rows: np.ndarray
    class_ids: np.ndarray
    norm: np.ndarray
    now: float  # seconds on the source's clock
    epoch: float  # the same instant as Unix time
    fresh: np.ndarray
    was_published: np.ndarray
    published: np.ndarray
    relabelled: np.ndarray  # the tracker's label vote changed the class
    zone_names: list[str]
    _points: dict[str, np.ndarray] = field(default_factory=dict)

    def points(self, anchor: str) -> np.ndarray:
        """(k, 2) the anchor point (`bottom_center`, …) of each box, computed once per frame."""
        p = self._points.get(anchor)
        if p is None:
            p = self._points[anchor] = anchor_points(self.norm, anchor)
        return p


class Rule(Protocol):
    """What the analytics needs from a rule."""

    reasons: tuple[str, ...]  # the change reasons it raises, in the order an update lists them

    def columns(self) -> ColumnSpec:
        """Its per-track columns in the analytics table (names unique among the rules)."""
        ...

    def update(self, seen: Seen) -> dict[str, np.ndarray]:
        """Update its columns for the rows seen; return each of its reasons with a (k,) bool mask:
        where that change happened this frame."""
        ...


class LabelChange:
    """The tracker's label vote changed an object's label (app/tracking/labelvote.py)."""

    reasons = ("label",)

    def columns(self) -> ColumnSpec:
        return {}

    def update(self, seen: Seen) -> dict[str, np.ndarray]:
        return {"label": seen.relabelled}


class ScoreRise:
    """An object's top score rose by `events.score_change` since its last event."""

    reasons = ("score",)

    def __init__(self, score_change: float) -> None:
        self.score_change = score_change

    def columns(self) -> ColumnSpec:
        return {}

    def update(self, seen: Seen) -> dict[str, np.ndarray]:
        T, rows = seen.T, seen.rows
        return {"score": T.top[rows] - T.last_event_top[rows] >= self.score_change}


def reasons_by_row(rules: list[Rule], seen: Seen) -> dict[int, list[str]]:
    """Run every rule in order; return, for each row index (0..k) of a track published before this
    frame, the reasons raised for it, in rule order."""
    masks = [(name, m) for rule in rules for name, m in rule.update(seen).items()]
    out: dict[int, list[str]] = {}
    if not masks:
        return out
    hit = np.stack([m for _, m in masks]) & seen.was_published
    for i in np.flatnonzero(hit.any(axis=0)).tolist():
        out[i] = [name for (name, _), h in zip(masks, hit[:, i]) if h]
    return out


def build_rules(cfgs: dict[str, PluginConfig], ctx: RunContext | None = None) -> list[Rule]:
    """The rules of the `rules:` section, in the order written."""
    return [RULES.build(c, ctx) for c in cfgs.values()]


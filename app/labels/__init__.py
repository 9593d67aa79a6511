"""What a model's class ids mean, said once: the label names, the label groups whose members count as one
class, and the ids that merging compares. `app.config.model_labels(cfg)` builds the one `ModelLabels` of a
run, handed to the detector (its NMS across a group) and to the tracker (its per-class matching) alike.
Also Vigil's own labels files (coco_labels.txt)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np


def label_name(labels: Sequence[str], class_id: int) -> str:
    """The label of a class id; the id itself for a class the labels do not name."""
    return labels[class_id] if 0 <= class_id < len(labels) else str(class_id)


def merge_ids(labels: Sequence[str], groups: dict[str, list[str]]) -> np.ndarray | None:
    """Per class id, the id NMS uses when group members count as one class (None: no group has two
    of these labels, nothing to merge)."""
    ids = np.arange(max(len(labels), 1))
    merged = False
    for members in groups.values():
        present = [labels.index(m) for m in members if m in labels]
        if len(present) > 1:
            ids[present] = present[0]
            merged = True
    return ids if merged else None


@dataclass(frozen=True)
class ModelLabels:
    """A model's labels, its label groups and, when groups merge, the id each class merges as."""

    names: list[str]
    groups: dict[str, list[str]] = field(default_factory=dict)
    merge_ids: np.ndarray | None = None  # per class id (see merge_ids); None: classes merge with none

    @classmethod
    def of(cls, names: list[str], groups: dict[str, list[str]] | None = None, merge: bool = True) -> "ModelLabels":
        groups = dict(groups or {})
        return cls(names, groups, merge_ids(names, groups) if merge else None)

    def name(self, class_id: int) -> str:
        return label_name(self.names, class_id)

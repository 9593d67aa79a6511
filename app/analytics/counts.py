"""The count documents (`counts`, per-zone counts) of the objects published now, made per class id present
(a handful) rather than per object."""
from __future__ import annotations

import numpy as np

from app.labels import label_name


def per_label(labels: list[str], class_ids: np.ndarray) -> dict[str, int]:
    """Objects per label name (ids without a label count under their number)."""
    present, n = np.unique(class_ids, return_counts=True)
    out: dict[str, int] = {}
    for c, k in zip(present.tolist(), n.tolist()):
        name = label_name(labels, c)
        out[name] = out.get(name, 0) + k
    return out


def count_doc(total: int, by_name: dict[str, int], wanted: list[str], groups: dict[str, list[str]],
              every_group: bool = False) -> dict[str, int]:
    """{"all": total, each wanted label: its count, each group: the sum of its members' counts}: every
    group with all its members, or (a zone's counts) the groups with a wanted member, over those."""
    doc = {"all": total, **{lab: by_name.get(lab, 0) for lab in wanted}}
    for g, members in groups.items():
        inside = [m for m in dict.fromkeys(members) if every_group or m in wanted]
        if inside:
            doc[g] = sum(by_name.get(m, 0) for m in inside)
    return doc

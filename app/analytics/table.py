"""Per-track state held as columns of arrays, one row per track, plus a track id → row map."""
from __future__ import annotations

from typing import Any

import numpy as np

ColumnSpec = dict[str, tuple[tuple[int, ...], Any, Any]]  # name -> (shape after the row axis, dtype, fill)


class Table:
    """Rows are tracks; `T.name` is the column array (rows first). Add and drop rows in batches."""

    def __init__(self, spec: ColumnSpec) -> None:
        self._spec = spec
        self.cols = {n: np.full((0, *shape), fill, dtype) for n, (shape, dtype, fill) in spec.items()}
        self.row: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.row)

    def __getattr__(self, name: str) -> np.ndarray:
        cols = self.__dict__.get("cols")
        if cols is not None and name in cols:
            return cols[name]
        raise AttributeError(name)

    def add(self, ids: np.ndarray) -> np.ndarray:
        """Append one row per id (filled with defaults; column `tid` gets the id); return their rows."""
        k = len(ids)
        n = len(self.row)
        for name, (shape, dtype, fill) in self._spec.items():
            self.cols[name] = np.concatenate((self.cols[name], np.full((k, *shape), fill, dtype)))
        self.cols["tid"][n:] = ids
        for r, tid in enumerate(ids.tolist(), start=n):
            self.row[tid] = r
        return np.arange(n, n + k)

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """Rows of ids that are all present."""
        row = self.row
        return np.fromiter((row[t] for t in ids.tolist()), np.int64, len(ids))

    def keep(self, mask: np.ndarray) -> None:
        """Drop the rows where mask is False."""
        for name in self.cols:
            self.cols[name] = self.cols[name][mask]
        self.row = {tid: r for r, tid in enumerate(self.cols["tid"].tolist())}

    def copy(self) -> "Table":
        """An independent copy (for readers in other threads)."""
        t = object.__new__(Table)
        t._spec = self._spec
        t.cols = {n: a.copy() for n, a in self.cols.items()}
        t.row = dict(self.row)
        return t

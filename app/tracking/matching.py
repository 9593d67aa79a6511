"""Association helpers: IoU as one matrix, gated minimum-cost assignment."""
from __future__ import annotations

import sys

import numpy as np

from app.ops import iou_matrix  # noqa: F401 - re-exported: the trackers' IoU

_EMPTY = np.zeros(0, np.intp)
_solver = None


def _load_solver():
    """scipy's compiled linear_sum_assignment without importing scipy.optimize.

    `import scipy.optimize` runs the package's __init__, which imports linalg, sparse, fft, special
    and the rest of optimize: about 320 modules, 50 MiB of RSS and 0.7 s, for this one function.
    The solver itself is the small extension module scipy.optimize._lsap, which needs only numpy;
    it is loaded from its file. Where that fails (another scipy layout), the public import.
    """
    if "scipy.optimize" in sys.modules:  # already paid for by someone else
        return sys.modules["scipy.optimize"].linear_sum_assignment
    try:
        import importlib.machinery
        import importlib.util
        from pathlib import Path

        name = "scipy.optimize._lsap"
        module = sys.modules.get(name)
        if module is None:
            spec = importlib.util.find_spec("scipy")  # finds the package without running it
            folder = Path(spec.submodule_search_locations[0]) / "optimize"
            path = next(folder / f"_lsap{s}" for s in importlib.machinery.EXTENSION_SUFFIXES
                        if (folder / f"_lsap{s}").is_file())
            loader = importlib.machinery.ExtensionFileLoader(name, str(path))
            module = importlib.util.module_from_spec(importlib.util.spec_from_loader(name, loader))
            loader.exec_module(module)
            sys.modules[name] = module  # a later `import scipy.optimize` reuses it
        return module.linear_sum_assignment
    except Exception:  # noqa: BLE001 - any surprise in scipy's layout: pay for the full import
        from scipy.optimize import linear_sum_assignment

        return linear_sum_assignment


def linear_sum_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """scipy.optimize.linear_sum_assignment (minimum cost; rows ascending), loaded on first use."""
    global _solver
    if _solver is None:
        _solver = _load_solver()
    return _solver(cost)


def linear_assignment(cost: np.ndarray, thresh: float) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost one-to-one matching keeping only pairs with cost <= thresh; (rows, cols)."""
    if cost.size == 0:
        return _EMPTY, _EMPTY
    valid = cost <= thresh
    per_row = valid.sum(axis=1)
    per_col = valid.sum(axis=0)
    if per_row.max() <= 1 and per_col.max() <= 1:
        # Already one-to-one (the common case with separated objects): nothing to solve.
        return valid.nonzero()
    # A pair that is the only candidate of both its row and its column is a component of
    # its own and belongs to every optimal matching; solve only what is left.
    lone = valid & (per_row == 1)[:, None] & (per_col == 1)[None, :]
    lone_rows, lone_cols = lone.nonzero()
    rest_rows = (per_row - lone.sum(axis=1)).nonzero()[0]
    rest_cols = (per_col - lone.sum(axis=0)).nonzero()[0]
    sub = cost.take(rest_rows, 0).take(rest_cols, 1)
    # Clipping gated-out costs to just above the gate makes "assign a gated pair" cost the
    # same as "leave both unmatched", which is ByteTrack's lapjv cost_limit behaviour.
    r, c = linear_sum_assignment(np.minimum(sub, thresh + 1e-4))
    keep = sub[r, c] <= thresh
    rows = np.concatenate((lone_rows, rest_rows.take(r[keep])))
    cols = np.concatenate((lone_cols, rest_cols.take(c[keep])))
    return rows, cols

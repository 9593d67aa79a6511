"""How many CPUs this process may actually use: its CPU affinity (taskset, a container's cpuset) capped by
the CPU quota of its cgroup (cgroup v2 cpu.max, or v1 cpu.cfs_quota_us / cpu.cfs_period_us), e.g.
`docker run --cpus 1.5` on a 16-core host is 2 CPUs here, not 16. The host's core count alone
(os.cpu_count) would start more interpreter threads than the process gets time for."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CpuBudget:
    cpus: int  # what the process may use: min(affinity, quota rounded up), at least 1
    affinity: int  # CPUs in the affinity mask
    quota: float | None  # CPUs' worth of time the cgroup allows per period; None: no quota

    def describe(self) -> str:
        quota = "no cgroup CPU quota" if self.quota is None else f"cgroup CPU quota {self.quota:g}"
        return f"{self.cpus} (CPU affinity {self.affinity}, {quota})"


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _v2_quota(text: str | None) -> float | None:
    """cpu.max is '<quota> <period>' in microseconds, quota 'max' for none."""
    parts = (text or "").split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    try:
        quota, period = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _v1_quota(quota: str | None, period: str | None) -> float | None:
    """cpu.cfs_quota_us is -1 for none."""
    try:
        q, p = int(quota or ""), int(period or "")
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def cgroup_quota(proc_cgroup: str | None = None, root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The tightest CPU quota (in CPUs) on the way from this process's cgroup up to the root, or None.

    proc_cgroup is the text of /proc/self/cgroup; root the cgroup file system's mount point. A
    container usually sees its own cgroup as the root of its mount, so the root is looked at too."""
    if proc_cgroup is None:
        proc_cgroup = _read(Path("/proc/self/cgroup")) or ""
    quotas = []
    for line in proc_cgroup.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if not path.startswith("/"):
            continue
        if hierarchy == "0" and controllers == "":  # cgroup v2, unified hierarchy
            for d in _ancestors(root, path):
                quotas.append(_v2_quota(_read(d / "cpu.max")))
        elif "cpu" in controllers.split(","):  # cgroup v1, the cpu controller's hierarchy
            for base in (root / "cpu,cpuacct", root / "cpu"):
                for d in _ancestors(base, path):
                    quotas.append(_v1_quota(_read(d / "cpu.cfs_quota_us"), _read(d / "cpu.cfs_period_us")))
    found = [q for q in quotas if q is not None]
    return min(found) if found else None


def _ancestors(base: Path, path: str) -> list[Path]:
    """base/path and each of its parents up to base itself."""
    parts = [p for p in path.split("/") if p and p != ".."]
    return [base.joinpath(*parts[:i]) for i in range(len(parts), -1, -1)]


def affinity() -> int:
    """CPUs in this process's affinity mask (os.cpu_count where the platform has no affinity call)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def cpu_budget() -> CpuBudget:
    """The CPUs this process may use now."""
    n = affinity()
    quota = cgroup_quota()
    cpus = n if quota is None else min(n, math.ceil(quota))
    return CpuBudget(max(1, cpus), n, quota)

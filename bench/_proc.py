"""CPU time the kernel has counted for a process or a thread, from its /proc stat file (Linux): the
benches that measure other processes (fleet.py, fleet_status.py) and every thread of this one
(thread_cpu.py) read it the same way. Counted in clock ticks (10 ms at the usual 100 Hz)."""
from __future__ import annotations

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def stat_cpu(stat_file: str | Path) -> tuple[str, float]:
    """(the kernel's name for it, CPU seconds used, user + system) of /proc/<pid>/stat or
    /proc/<pid>/task/<tid>/stat; OSError once it has ended."""
    text = Path(stat_file).read_text()
    name = text[text.index("(") + 1: text.rindex(")")]  # the name may hold spaces and parentheses
    fields = text[text.rindex(")") + 2:].split()
    return name, (int(fields[11]) + int(fields[12])) / TICK


def cpu(pid: int) -> float:
    """CPU seconds process `pid` has used."""
    return stat_cpu(f"/proc/{pid}/stat")[1]

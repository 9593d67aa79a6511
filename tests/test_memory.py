"""app.memory: the C heap returns frame-sized buffers to the OS after a long run's churn."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

# In a fresh interpreter: free one 4 MiB mmapped buffer (glibc then raises its mmap threshold to
# 4 MiB unless it was fixed), then count the mmapped blocks while a 1 MiB buffer is alive.
PROBE = """
import ctypes, json, sys
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "tuned":
    from app.memory import tune_malloc
    assert tune_malloc()
big = bytearray(4 << 20)
del big
before = libc.mallinfo2().hblks
frame = bytearray(1 << 20)
print(json.dumps(libc.mallinfo2().hblks - before))
"""


def mmapped_blocks_for_a_frame(mode: str) -> int:
    p = subprocess.run([sys.executable, "-c", PROBE, mode], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc")
def test_frame_sized_buffers_stay_mmapped_after_a_larger_one_was_freed():
    assert mmapped_blocks_for_a_frame("default") == 0  # glibc's default: from the heap, where holes pin RSS
    assert mmapped_blocks_for_a_frame("tuned") == 1  # tuned: its own mapping, returned to the OS on free

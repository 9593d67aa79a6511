"""Signals a site sends a running `vigil run`: SIGHUP reads the configuration again (issue 23 §4)."""
import os
import re
import signal
import subprocess
import sys

import httpx

from tests.conftest import ROOT
from tests.mqtt_util import free_port, wait_until


def config_text(line: str, port: int, state) -> str:
    return f"""
state: {{file: {state}}}
preprocess: {{tiling: {{tile_size: 256, full_frame: false}}}}
source: {{loop: true, fps: 2}}
output: {{progress: false}}
api: {{enabled: true, port: {port}}}
lines:
  {line}: {{start: [0.7, 0.8], end: [0.7, 0.25]}}
"""


def test_sighup_ends_the_run_cleanly_and_starts_again_with_the_configuration_read_again(tmp_path):
    port = free_port()
    cfg = tmp_path / "vigil.yaml"
    cfg.write_text(config_text("door", port, tmp_path / "state.json"))
    log = tmp_path / "stderr.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "app", "run", "--config", str(cfg)], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=err)

    def lines() -> set[str]:
        try:
            return set(httpx.get(f"http://127.0.0.1:{port}/api/counts", timeout=5).json()["lines"])
        except (httpx.HTTPError, ValueError, KeyError):
            return set()

    try:
        wait_until(lambda: lines() == {"door"}, 120, what="the first run serving")
        cfg.write_text(config_text("gate", port, tmp_path / "state.json"))
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: proc.poll() is not None or lines() == {"gate"}, 120,
                   what="the line of the configuration read again")
        assert proc.poll() is None, f"exit {proc.returncode}"  # the same process, running on
        # a reload that reads a broken file keeps the configuration it had
        cfg.write_text("lines: [not, a, mapping\n")
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "running on with the configuration read before" in log.read_text(), 60, what="the refusal")
        wait_until(lambda: lines() == {"gate"}, 120, what="the third run serving")
        proc.send_signal(signal.SIGTERM)  # still a stop
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    text = log.read_text()
    assert proc.returncode == 0, text[-3000:]
    assert text.count("vigil: SIGHUP (reload the configuration); starting again to apply them") == 2
    assert "Traceback" not in text
    # each run ended cleanly: its summary, with an end for every track it published
    runs = re.findall(r"vigil: events: (\d+) new, \d+ update, (\d+) end", text)
    assert len(runs) == 3 and all(new == end for new, end in runs), runs
    assert "in use by another Vigil" not in text  # each run let go of the state file before the next took it

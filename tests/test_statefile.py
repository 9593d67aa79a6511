"""Line counts survive a restart: the state file, through real pipeline runs on the sample clip."""
import json
from pathlib import Path

import pytest

from app import pipeline
from app.config import load_config
from app.errors import ConfigError
from app.publish.statefile import LineStateFile
from tests.conftest import run_vigil
from tests.test_mqtt import FAST, SCENE


def run_clip(state_file, frames: int = 100):
    cfg = load_config(None, {**FAST, **SCENE, "state": {"file": str(state_file)}}, env={})
    return pipeline.run(cfg, max_frames=frames)


def saved_lines(path) -> dict:
    return json.loads(path.read_text())["lines"]


def test_a_second_run_continues_the_counts_of_the_first(tmp_path):
    path = tmp_path / "state.json"
    run_clip(path)
    first = saved_lines(path)["crossing"]
    assert first["in"] + first["out"] > 0  # people crossed in these frames
    run_clip(path)  # the same frames again: every crossing counted a second time
    second = saved_lines(path)["crossing"]
    assert (second["in"], second["out"]) == (2 * first["in"], 2 * first["out"])
    assert second["since"] == first["since"]  # still counting since the first start


def test_damaged_state_file_is_set_aside_and_counting_starts_from_zero(tmp_path, caplog):
    path = tmp_path / "state.json"
    path.write_text('{"version": 1, "lines": {"crossing": ')  # cut off by a power failure
    run_clip(path, frames=20)
    assert "unreadable" in caplog.text
    assert (tmp_path / "state.json.bad").read_text().startswith('{"version": 1')
    assert set(saved_lines(path)) == {"crossing"}


def test_unwritable_state_file_is_a_config_error_at_start(tmp_path):
    r = run_vigil("run", "--max-frames", "3", "--no-progress", "--set", "lines.door.start=[0.5,0]",
                  "--set", "lines.door.end=[0.5,1]", "--set", f"state.file={tmp_path}/missing/dir/state.json")
    assert r.returncode == 2, r.stderr
    assert "state.file: cannot write" in r.stderr and "Traceback" not in r.stderr


def test_saves_are_spaced_by_the_interval_and_the_last_change_is_saved_at_close(tmp_path):
    from app.types import FrameResult
    from app.types import Detections

    def result(n):
        return FrameResult(seq=n, timestamp=0.0, epoch=0.0, size=(1, 1), objects=Detections(),
                           lines={"door": {"in": n, "out": 0, "since": 1.0, "labels": {}}})

    path = tmp_path / "s.json"
    store = LineStateFile(path, interval=3600)
    store.save(result(0).lines)
    for n in range(1, 5):  # changes within the interval: not written yet
        store.on_result(result(n))
    assert saved_lines(path)["door"]["in"] == 0
    store.close()
    assert saved_lines(path)["door"]["in"] == 4
    assert LineStateFile(path).load() == {"door": {"in": 4, "out": 0, "since": 1.0, "labels": {}}}


def test_state_file_naming_a_directory_is_a_config_error_and_the_directory_is_untouched(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "keep.txt").write_text("precious")
    r = run_vigil("run", "--max-frames", "3", "--no-progress", "--set", "lines.door.start=[0.5,0]",
                  "--set", "lines.door.end=[0.5,1]", "--set", f"state.file={data}")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert f"vigil: config error: state.file: {data} is a directory; name a file in it" in r.stderr
    assert (data / "keep.txt").read_text() == "precious" and sorted(p.name for p in tmp_path.iterdir()) == ["data"]


@pytest.mark.parametrize("where", ["directory", "unwritable"])
def test_unusable_state_file_without_lines_is_a_config_error_at_start(tmp_path, where):
    # without lines only the open-tracks file used it: a warning at the first track, exit 0, nothing kept
    if where == "directory":
        path, message = tmp_path, f"state.file: {tmp_path} is a directory; name a file in it"
    else:
        path, message = Path("/proc/vigil-none/state.json"), "state.file: cannot write /proc/vigil-none/state.json"
    r = run_vigil("run", "--max-frames", "3", "--no-progress", "--set", f"state.file={path}")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert f"vigil: config error: {message}" in r.stderr
    assert list(tmp_path.iterdir()) == []  # no probe or tracks file left behind


def test_state_file_that_is_not_a_regular_file_is_a_config_error_and_is_not_moved(tmp_path):
    import os

    path = tmp_path / "state.json"
    os.mkfifo(path)  # exists, but is nothing Vigil may read as JSON or set aside (and opening it would block)
    with pytest.raises(ConfigError, match=f"^state.file: {path} is not a regular file$"):
        LineStateFile(path).load()
    assert path.exists() and not (tmp_path / "state.json.bad").exists()


def _result(*events):
    from app.types import FrameResult
    from app.types import Detections

    from tests.event_util import event

    evs = tuple(event(t, i, motionless_count=n) for t, i, n in events)
    return FrameResult(seq=0, timestamp=0.0, epoch=0.0, size=(1, 1), objects=Detections(), events=evs)


def test_open_tracks_stay_on_disk_until_the_broker_acknowledged_their_end(tmp_path):
    from app.publish.statefile import OpenTracksFile, tracks_path

    path = tracks_path(tmp_path / "state.json")
    assert path == tmp_path / "state.tracks.json"
    j = OpenTracksFile(path, wait_for_ack=True)

    def on_disk():
        return {o["id"]: o for o in json.loads(path.read_text())["open"]} if path.exists() else {}

    j.on_result(_result(("new", "r-1", 0), ("new", "r-2", 0)))
    assert set(on_disk()) == {"r-1", "r-2"}  # written before the publisher queues these new events
    j.on_result(_result(("update", "r-1", 1), ("end", "r-2", 1)))
    assert set(on_disk()) == {"r-1", "r-2"}  # the end is not acknowledged yet: a crash now re-ends r-2
    j.confirm("r-2")
    j.on_result(_result(("update", "r-1", 2)))
    assert set(on_disk()) == {"r-1"} and on_disk()["r-1"]["motionless_count"] == 2
    j.on_result(_result(("end", "r-1", 3)))
    j.close()  # a clean stop while the broker was away: r-1's end never reached it
    assert set(on_disk()) == {"r-1"}
    again = OpenTracksFile(path, wait_for_ack=True)
    assert [o.id for o in again.load()] == ["r-1"]
    j.confirm("r-1")
    j.close()
    assert not path.exists()


def test_a_damaged_open_tracks_file_is_set_aside(tmp_path, caplog):
    from app.publish.statefile import OpenTracksFile

    path = tmp_path / "state.tracks.json"
    path.write_text('{"version": 1, "open": [{"no id": 1}]}')
    assert OpenTracksFile(path, wait_for_ack=False).load() == []
    assert (tmp_path / "state.tracks.json.bad").exists() and "unreadable" in caplog.text


def test_a_directory_where_the_open_tracks_file_goes_is_left_alone(tmp_path, caplog):
    from app.publish.statefile import OpenTracksFile

    path = tmp_path / "state.tracks.json"
    path.mkdir()
    j = OpenTracksFile(path, wait_for_ack=False)
    assert j.load() == []
    assert path.is_dir() and not (tmp_path / "state.tracks.json.bad").exists()
    j.on_result(_result(("new", "r-1", 0)))  # cannot write there: one warning, no exception
    assert "not a regular file" in caplog.text and "cannot write" in caplog.text


# ---- one instance per state file; counts survive a crash (issue 23 §3, §7) ----------------------------

LINE = ["--set", "lines.crossing.start=[0.7,0.8]", "--set", "lines.crossing.end=[0.7,0.25]"]
QUICK = ["--set", "preprocess.tiling.tile_size=256", "--set", "preprocess.tiling.full_frame=false"]


def start_vigil(*args: str):
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    return subprocess.Popen([sys.executable, "-m", "app", "run", "--no-progress", *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def stop_vigil(proc) -> str:
    import signal

    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=60)
    except Exception:
        proc.kill()
        _, err = proc.communicate(timeout=10)
    return err


def test_a_second_vigil_on_the_same_state_file_is_refused_naming_the_first(tmp_path):
    from tests.mqtt_util import wait_until

    state = tmp_path / "state.json"
    first = start_vigil("--loop", "--fps", "2", *QUICK, *LINE, "--set", f"state.file={state}")
    try:
        lock = tmp_path / "state.lock"
        wait_until(lambda: lock.exists() and lock.read_text().strip() == str(first.pid), 120,
                   what="the first instance holding the state")
        second = run_vigil("run", "--max-frames", "3", "--no-progress", *QUICK, *LINE, "--set", f"state.file={state}")
        assert second.returncode == 2 and "Traceback" not in second.stderr, second.stderr
        assert (f"vigil: config error: state.file: {state} is in use by another Vigil (pid {first.pid}); "
                "give each instance its own state.file") in second.stderr
        assert first.poll() is None  # the first one runs on, its counts untouched
    finally:
        err = stop_vigil(first)
    assert first.returncode == 0, err[-2000:]
    # the lock went with the first: the next instance runs
    third = run_vigil("run", "--max-frames", "3", "--no-progress", *QUICK, *LINE, "--set", f"state.file={state}")
    assert third.returncode == 0, third.stderr


def test_line_changes_between_saves_are_in_the_journal_and_replayed_after_a_crash(tmp_path):
    from app.publish.linejournal import journal_path

    def lines(n):
        return {"door": {"in": n, "out": 0, "since": 1.0, "labels": {}}, "gate": {"in": 0, "out": 0, "since": 1.0,
                                                                             "labels": {}}}

    path = tmp_path / "state.json"
    store = LineStateFile(path, interval=3600)
    store.save(lines(0))
    store.open_journal()
    for n in range(1, 6):  # within the interval: only the journal has them
        store.on_result(_lines_result(lines(n)))
    assert saved_lines(path)["door"]["in"] == 0
    journal = journal_path(path)
    assert len(journal.read_text().splitlines()) == 5  # one record per change, only the line that changed
    assert all(set(json.loads(t)["lines"]) == {"door"} for t in journal.read_text().splitlines())
    with open(journal, "a") as f:
        f.write('{"lines": {"door": {"in": 9')  # a record cut off by the crash
    # the process dies here (no close): the next start sees the last change
    assert LineStateFile(path).load()["door"]["in"] == 5
    store.save(lines(5))  # the periodic save compacts the journal
    assert journal.read_text() == ""
    store.close()
    assert not journal.exists() and LineStateFile(path).load()["door"]["in"] == 5


def _lines_result(lines):
    from app.types import Detections, FrameResult

    return FrameResult(seq=0, timestamp=0.0, epoch=0.0, size=(1, 1), objects=Detections(), lines=lines)


def test_after_sigkill_at_most_the_last_second_of_crossings_is_lost(tmp_path):
    import signal
    import time

    import httpx

    from tests.mqtt_util import free_port, wait_until

    state = tmp_path / "state.json"
    port = free_port()
    proc = start_vigil("--loop", "--fps", "5", *QUICK, *LINE, "--set", f"state.file={state}", "--set", "state.interval=600",
                       "--set", "api.enabled=true", "--set", f"api.port={port}")
    seen: list[tuple[float, int]] = []  # (when, crossings the API showed then)

    def crossings() -> int:
        try:
            body = httpx.get(f"http://127.0.0.1:{port}/api/counts", timeout=5).json()
        except httpx.HTTPError:
            return -1
        n = sum(v["in"] + v["out"] for v in body["lines"].values())
        seen.append((time.monotonic(), n))
        return n

    try:
        wait_until(lambda: crossings() >= 4, 180, what="four crossings counted")
        floor = seen[-1]
        # counting goes on: kill it a while after (the periodic save is 10 min away)
        wait_until(lambda: crossings() > floor[1] and seen[-1][0] - floor[0] >= 2.0, 180, what="more crossings")
        proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    line = LineStateFile(state).load()["crossing"]
    restored = line["in"] + line["out"]
    before = max(n for t, n in seen if t <= killed - 1.0)  # counted at least a second before the kill
    print(f"crossings shown {before} s>=1 s before the kill, {seen[-1][1]} at the kill; restored {restored}")
    assert restored >= before > 0
    # and the next start continues from there
    again = run_vigil("run", "--max-frames", "1", "--no-progress", *QUICK, *LINE, "--set", f"state.file={state}")
    assert again.returncode == 0 and "line counts of crossing restored" in again.stderr, again.stderr

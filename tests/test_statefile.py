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

    evs = [{"type": t, "seq": 0, "run_id": "r", "before": {"id": i}, "after": {"id": i, "n": n}, "changes": []}
           for t, i, n in events]
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
    assert set(on_disk()) == {"r-1"} and on_disk()["r-1"]["n"] == 2
    j.on_result(_result(("end", "r-1", 3)))
    j.close()  # a clean stop while the broker was away: r-1's end never reached it
    assert set(on_disk()) == {"r-1"}
    again = OpenTracksFile(path, wait_for_ack=True)
    assert [o["id"] for o in again.load()] == ["r-1"]
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

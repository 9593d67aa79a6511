"""Exit codes and one-line messages for each kind of bad input, through the real `vigil` command."""
import pytest

from tests.conftest import DEFAULT_MODEL, SAMPLE_CLIP, run_vigil


def assert_one_clean_line(proc, code, *fragments):
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("vigil:")]
    assert len(lines) == 1, proc.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


def test_missing_model(tmp_path):
    p = run_vigil("run", "--model", str(tmp_path / "nope.tflite"), "--no-progress")
    assert_one_clean_line(p, 3, "model error", "model not found", "nope.tflite")


def test_non_tflite_model(tmp_path):
    bad = tmp_path / "model.tflite"
    bad.write_text("definitely not a flatbuffer")
    assert_one_clean_line(run_vigil("run", "--model", str(bad)), 3, "not a TFLite model")


def test_truncated_tflite_model(tmp_path):
    bad = tmp_path / "cut.tflite"
    bad.write_bytes(DEFAULT_MODEL.read_bytes()[:4096])
    assert_one_clean_line(run_vigil("run", "--model", str(bad)), 3, "cannot load model", "cut.tflite")


def test_model_matching_no_decoder(tmp_path):
    from tests.conftest import FIXTURE_MODELS

    p = run_vigil("run", "--model", str(FIXTURE_MODELS / "classifier_int8.tflite"))
    assert_one_clean_line(p, 3, "match no decoder")


def test_unreadable_video(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 10000)
    assert_one_clean_line(run_vigil("run", "--source", str(bad)), 4, "source error", "broken.mp4")


def test_missing_video(tmp_path):
    assert_one_clean_line(run_vigil("run", "--source", str(tmp_path / "gone.mp4")), 4, "video file not found")


def test_bad_config_value_exits_2_naming_key(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("preprocess:\n  planner:\n    overlap: 3\n")
    assert_one_clean_line(run_vigil("run", "--config", str(cfg)), 2, "config error", "preprocess.planner.overlap", "(got 3)")


def test_bad_env_value_exits_2():
    p = run_vigil("run", env={"VIGIL_MODEL__BACKEND__THREADS": "many"})
    assert_one_clean_line(p, 2, "model.backend.threads")


def test_bad_set_syntax_exits_2():
    assert_one_clean_line(run_vigil("run", "--set", "decoder.score_threshold"), 2, "--set expects KEY=VALUE")


@pytest.mark.parametrize("item", [".x=1", "source..uri=x", "source.=x"])
def test_set_key_with_an_empty_part_is_named(item):
    # was ': unknown key' or 'source.: unknown key for source.type opencv'
    key = item.partition("=")[0]
    assert_one_clean_line(run_vigil("run", "--set", item), 2, f"--set: {key!r} is not a config key")


def test_vigil_config_naming_no_file_says_it_is_the_environment_variable(tmp_path):
    # was 'config file not found: …', a path the user never typed on this command line
    p = run_vigil("run", env={"VIGIL_CONFIG": str(tmp_path / "gone.yaml")})
    assert_one_clean_line(p, 2, f"environment variable VIGIL_CONFIG={tmp_path / 'gone.yaml'}: config file not found")


def test_debug_shows_traceback(tmp_path):
    p = run_vigil("--debug", "run", "--model", str(tmp_path / "nope.tflite"))
    assert p.returncode != 0 and "Traceback" in p.stderr


def test_run_prints_summary_and_writes_jsonl(tmp_path):
    out = tmp_path / "o.jsonl"
    p = run_vigil("run", "--source", str(SAMPLE_CLIP), "--max-frames", "5", "--jsonl", str(out), "--no-progress")
    assert p.returncode == 0, p.stderr
    assert "5 frames in" in p.stderr and "tracks seen" in p.stderr and str(out) in p.stderr
    assert len(out.read_text().splitlines()) == 5


def test_zone_label_the_model_does_not_have_is_one_clear_line(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("zones:\n  door:\n    polygon: [[0, 0], [1, 0], [1, 1]]\n    labels: [persn]\n")
    p = run_vigil("run", "--config", str(cfg), "--api", "0", "--max-frames", "1", "--no-progress")
    assert_one_clean_line(p, 2, "config error", "zones.door.labels: 'persn' is not one of the model's labels (person, bicycle, car")


def test_closed_stdout_pipe_is_a_quiet_normal_end():
    """`vigil run --jsonl - | head -n 2`, with the real head: exit 0, no traceback, the summary printed."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    vigil = subprocess.Popen([sys.executable, "-m", "app", "run", "--jsonl", "-", "--no-progress"], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    head = subprocess.run(["head", "-n", "2"], stdin=vigil.stdout, capture_output=True, text=True, timeout=300)
    vigil.stdout.close()  # only head holds the pipe, as in a shell
    err = vigil.stderr.read()
    assert vigil.wait(timeout=300) == 0, err
    assert len(head.stdout.splitlines()) == 2 and head.stdout.startswith('{"seq":0,')
    assert "Traceback" not in err and "Exception ignored" not in err and "BrokenPipe" not in err, err
    assert "the reader of stdout went away" in err and "frames in" in err


def test_full_disk_for_jsonl_is_one_line_and_end_events_are_still_published(tmp_path, mosquitto):
    from tests.mqtt_util import Subscriber

    sub = Subscriber(mosquitto.port, "vigil/fulldisk/events")
    try:
        video = tmp_path / "annotated.avi"
        p = run_vigil("run", "--jsonl", "/dev/full", "--save-video", str(video), "--mqtt", f"127.0.0.1:{mosquitto.port}",
                      "--set", "device_id=fulldisk", "--set", "source.fps=5", "--max-frames", "60", "--no-progress")
        assert_one_clean_line(p, 2, "config error: output.jsonl: cannot write /dev/full: No space left on device")
        events = [m.json() for m in sub.messages]
        new = {e["after"]["id"] for e in events if e["type"] == "new"}
        end = {e["after"]["id"] for e in events if e["type"] == "end"}
    finally:
        sub.close()
    assert new and end == new  # every object that started also ended
    import cv2

    cap = cv2.VideoCapture(str(video))  # the other output was closed properly: a readable file
    assert cap.isOpened() and cap.read()[0]
    cap.release()


def test_full_disk_on_stdout_is_one_line():
    import subprocess
    import sys

    from tests.conftest import ROOT

    with open("/dev/full", "w") as full:
        p = subprocess.run([sys.executable, "-m", "app", "run", "--jsonl", "-", "--max-frames", "3", "--no-progress"],
                           cwd=ROOT, stdout=full, stderr=subprocess.PIPE, text=True, timeout=300)
    assert_one_clean_line(p, 2, "output.jsonl: cannot write stdout: No space left on device")


def test_full_disk_for_the_annotated_video_is_one_line_not_exit_0(tmp_path):
    video = tmp_path / "annotated.avi"
    video.symlink_to("/dev/full")  # OpenCV's writer opens it, then every frame fails (it only logs a warning)
    p = run_vigil("run", "--save-video", str(video), "--max-frames", "30", "--no-progress")
    assert_one_clean_line(p, 2, "config error: output.video: cannot write", "annotated.avi")


def test_latest_image_that_cannot_be_written_is_one_line_not_a_traceback(tmp_path):
    image = tmp_path / "latest.jpg"
    image.mkdir()
    p = run_vigil("run", "--save-video", str(image), "--max-frames", "3", "--no-progress")
    assert_one_clean_line(p, 2, "config error: output.video: cannot write", "latest.jpg: Is a directory")


@pytest.mark.parametrize("flag", ["--jsonl", "--save-video"])
def test_an_output_that_is_the_source_video_is_refused_and_the_video_kept(small_clip, flag):
    # it was opened for writing: the clip was truncated mid-run and the run ended with exit 0
    before = small_clip.read_bytes()
    p = run_vigil("run", "--source", str(small_clip), flag, str(small_clip.parent / "." / small_clip.name), "--no-progress")
    key = "output.jsonl" if flag == "--jsonl" else "output.video"
    assert_one_clean_line(p, 2, f"config error: {key}:", "is also source.uri; writing it would destroy it")
    assert small_clip.read_bytes() == before


def test_an_output_that_is_the_model_is_refused_and_the_model_kept(tmp_path):
    model = tmp_path / "m.tflite"
    model.write_bytes(DEFAULT_MODEL.read_bytes())
    p = run_vigil("run", "--model", str(model), "--jsonl", str(model), "--max-frames", "2", "--no-progress")
    assert_one_clean_line(p, 2, "output.jsonl:", "is also model.path")
    assert model.read_bytes() == DEFAULT_MODEL.read_bytes()


@pytest.mark.parametrize("value", ["0", "-5"])
def test_bench_invokes_below_one_is_refused(value):
    # 0 ended in a ZeroDivisionError traceback, -5 printed a made-up rate
    p = run_vigil("bench", "--invokes", value, "--max-frames", "3")
    assert_one_clean_line(p, 2, f"--invokes must be at least 1 (got {value})")


def test_bench_baseline_config_error_comes_before_any_measuring(tmp_path):
    p = run_vigil("bench", "--invokes", "5", "--max-frames", "3", "--baseline", str(tmp_path / "gone.yaml"))
    assert_one_clean_line(p, 2, "config file not found", "gone.yaml")
    assert p.stdout == ""  # refused at once, not after the main run was measured


@pytest.mark.parametrize("args", [
    ["check-model", str(DEFAULT_MODEL)],  # a report larger than the buffer: print() itself fails
    ["check-model", str(DEFAULT_MODEL), "--json"],
    ["bench", "--invokes", "5", "--max-frames", "3"],
])
def test_a_full_disk_behind_stdout_of_any_command_is_one_line(args):
    import subprocess
    import sys

    from tests.conftest import ROOT

    with open("/dev/full", "w") as full:  # was an OSError traceback, exit 1
        p = subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, stdout=full, stderr=subprocess.PIPE,
                           text=True, timeout=300)
    assert_one_clean_line(p, 2, "config error: cannot write stdout: No space left on device")


@pytest.mark.parametrize("value", ["-1", "0"])
def test_max_frames_below_one_is_refused(value):
    assert_one_clean_line(run_vigil("run", "--max-frames", value), 2, f"--max-frames must be at least 1 (got {value})")


def test_debug_after_the_subcommand_is_accepted(tmp_path):
    p = run_vigil("run", "--debug", "--model", str(tmp_path / "nope.tflite"))
    assert p.returncode == 3 and "Traceback" in p.stderr
    p = run_vigil("emulator", "--debug", "--video", str(tmp_path / "nope.mp4"))
    assert p.returncode == 2 and "Traceback" in p.stderr


def test_log_lines_carry_iso8601_utc_timestamps():
    import re
    from datetime import datetime, timezone

    p = run_vigil("run", "--max-frames", "1", "--no-progress")
    assert p.returncode == 0, p.stderr
    logs = [ln for ln in p.stderr.splitlines() if " INFO app." in ln]
    assert logs, p.stderr
    for ln in logs:
        m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z INFO app\.", ln)
        assert m, ln
        stamp = datetime.fromisoformat(m[1]).replace(tzinfo=timezone.utc)
        assert abs((datetime.now(timezone.utc) - stamp).total_seconds()) < 600  # UTC, not local time


def test_tracker_key_without_type_runs(tmp_path):
    p = run_vigil("run", "--max-frames", "1", "--no-progress", "--set", "tracker.track_thresh=0.6")
    assert p.returncode == 0, p.stderr


def test_non_utf8_config_is_one_line(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_bytes(b"model:\n  threads: 1 # \xff\n")
    assert_one_clean_line(run_vigil("run", "--config", str(cfg)), 2, "config error", "line 2: not UTF-8 text (byte 0xff)")


def test_emulator_with_a_non_tflite_model_is_one_model_error_line(tmp_path):
    bad = tmp_path / "notes.tflite"
    bad.write_text("not a model")
    p = run_vigil("emulator", "--address", f"unix://{tmp_path}/rt.sock", "--model", str(bad))
    assert_one_clean_line(p, 3, "model error", f"--model {bad}", "Failed to load model notes.tflite")


@pytest.mark.parametrize("address", ["bogus:::addr", "localhost", "unix:///proc/no/such/dir/rt.sock"])
def test_emulator_with_an_address_it_cannot_listen_on_is_one_config_error_line(address):
    p = run_vigil("emulator", "--address", address, "--chip", "0")
    assert_one_clean_line(p, 2, "config error", address)


# -- what a run loads: memory on a camera that shares 2 GB with video ---------------------------------
HTTP_STACK = {"fastapi", "uvicorn", "starlette", "prometheus_client"}
GRPC_STACK = {"grpc", "google.protobuf", "app.protos"}
SCIPY = {"scipy", "scipy.optimize"}  # the tracker's solver is loaded without the package (50 MiB)


def modules_after_run(*args: str) -> set[str]:
    """sys.modules after `vigil run ARGS` in a fresh interpreter."""
    import json
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = ("import json, sys\nfrom app.cli import main\nrc = main(sys.argv[1:])\n"
            "print(json.dumps({'rc': rc, 'modules': sorted(sys.modules)}))")
    p = subprocess.run([sys.executable, "-c", code, "run", "--no-progress", *args], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    out = json.loads(p.stdout.splitlines()[-1])
    assert out["rc"] == 0, p.stderr
    return set(out["modules"])


def test_a_file_run_without_feed_or_camera_never_imports_the_http_mqtt_grpc_or_scipy_stacks(tmp_path):
    mods = modules_after_run("--source", str(SAMPLE_CLIP), "--max-frames", "3", "--jsonl", str(tmp_path / "o.jsonl"))
    assert "app.tracking.bytetrack" in mods and "cv2" in mods  # it did run the pipeline
    assert sorted(mods & (HTTP_STACK | GRPC_STACK | SCIPY | {"paho"})) == []


def test_a_run_with_api_and_mqtt_imports_neither_grpc_nor_scipy_nor_prometheus_before_a_scrape(mosquitto):
    from tests.mqtt_util import free_port

    mods = modules_after_run("--source", str(SAMPLE_CLIP), "--max-frames", "3", "--api", str(free_port()),
                             "--mqtt", f"127.0.0.1:{mosquitto.port}")
    assert {"fastapi", "uvicorn", "paho"} <= mods
    assert sorted(mods & (GRPC_STACK | SCIPY | {"prometheus_client"})) == []

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
    cfg.write_text("preprocess:\n  tiling:\n    overlap: 3\n")
    assert_one_clean_line(run_vigil("run", "--config", str(cfg)), 2, "config error", "preprocess.tiling.overlap", "(got 3)")


def test_bad_env_value_exits_2():
    p = run_vigil("run", env={"VIGIL_MODEL__THREADS": "many"})
    assert_one_clean_line(p, 2, "model.threads")


def test_bad_set_syntax_exits_2():
    assert_one_clean_line(run_vigil("run", "--set", "decoder.score_threshold"), 2, "--set expects KEY=VALUE")


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
    assert_one_clean_line(p, 2, "config error", "zones.door.labels: 'persn' is not one of the model's labels (person)")

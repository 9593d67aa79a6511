import json

import cv2
import numpy as np
import pytest

from app.errors import ConfigError
from app.sinks.jsonl import JsonlSink
from app.sinks.video import VideoSink
from app.types import Detections, Frame, FrameResult


def shown(frame: Frame, objects: Detections) -> FrameResult:
    """The result of a frame whose published objects are `objects`."""
    return FrameResult(seq=frame.seq, timestamp=frame.timestamp, epoch=frame.timestamp, size=frame.size,
                       objects=objects, frame=frame)


def dets():
    return Detections([[10, 20, 50, 100], [60, 10, 90, 40]], [0.9, 0.7], [0, 1], [7, 8])


def test_jsonl_records_reach_the_file_while_the_run_goes_on(tmp_path):
    # a live run: a reader tailing the file (or a crash) must not wait for 64 kB of records
    p = tmp_path / "live.jsonl"
    s = JsonlSink(str(p), ["person", "car"])
    img = np.zeros((120, 160, 3), np.uint8)
    s.flush_interval = 0.0  # the 1 s interval, due at once
    s.on_result(shown(Frame(img, 0.5, 5), dets()))
    assert [json.loads(line)["seq"] for line in p.read_text().splitlines()] == [5]  # before close()
    s.flush_interval = 3600.0
    s.on_result(shown(Frame(img, 0.6, 6), dets()))
    assert len(p.read_text().splitlines()) == 1  # between flushes, still buffered
    s.close()
    assert len(p.read_text().splitlines()) == 2


def test_jsonl_writes_one_record_per_frame(tmp_path):
    p = tmp_path / "o.jsonl"
    s = JsonlSink(str(p), ["person", "car"])
    img = np.zeros((120, 160, 3), np.uint8)
    s.on_result(shown(Frame(img, 0.5, 5), dets()))
    s.on_result(shown(Frame(img, 0.6, 6), Detections()))
    s.on_result(FrameResult(seq=-1, timestamp=0.0, epoch=0.0, size=(160, 120), objects=dets()))  # no frame: no line
    s.close()
    recs = [json.loads(line) for line in p.read_text().splitlines()]
    assert len(recs) == 2
    assert recs[0]["seq"] == 5 and recs[0]["frame_size"] == [160, 120]
    assert recs[0]["objects"][1] == {"track_id": 8, "class_id": 1, "label": "car", "score": 0.7, "box": [60, 10, 90, 40]}
    assert recs[1]["objects"] == []


def test_jsonl_append_adds_to_the_file_and_numbered_videos_go_beside_it(tmp_path):
    from app.sinks.video import numbered

    p = tmp_path / "o.jsonl"
    img = np.zeros((120, 160, 3), np.uint8)
    for seq, append in ((1, False), (2, True)):
        s = JsonlSink(str(p), ["person", "car"], append=append)
        s.on_result(shown(Frame(img, seq / 10, seq), dets()))
        s.close()
    assert [json.loads(line)["seq"] for line in p.read_text().splitlines()] == [1, 2]
    s = JsonlSink(str(p), ["person", "car"])  # without append, a new file
    s.close()
    assert p.read_text() == ""
    assert numbered("out/clip.mp4", 1) == "out/clip.mp4" and numbered("out/clip.mp4", 3) == "out/clip.3.mp4"
    assert numbered("latest.jpg", 2) == "latest.jpg" and numbered(None, 2) is None  # an image is replaced


def test_published_boxes_are_the_part_inside_the_frame_once_for_every_output(tmp_path):
    """The tracker's smoothed box can reach half a pixel past an edge; the result every output gets says
    what is visible (clipped once, in analytics), as the events do: JSON Lines and the Axis metadata as is."""
    from app.analytics import Analytics
    from app.publish.payloads import frame_message

    frame = Frame(np.zeros((120, 160, 3), np.uint8), 0.5, 5)
    result = Analytics(["person"]).update(frame, Detections([[-0.4, 10, 160.5, 120.3]], [0.9], [0], [3]))
    assert result.objects.xyxy.tolist() == [[0.0, 10.0, 160.0, 120.0]]
    assert list(result.events[0].after.box) == [0, 10, 160, 120]
    p = tmp_path / "o.jsonl"
    s = JsonlSink(str(p), ["person"])
    s.on_result(result)
    s.close()
    assert json.loads(p.read_text())["objects"][0]["box"] == [0.0, 10.0, 160.0, 120.0]
    box = frame_message(result.epoch, result.size, result.objects, [], ["person"])["detections"][0]
    assert box["bounding_box"] == {"left": 0.0, "top": round(10 / 120, 4), "right": 1.0, "bottom": 1.0}


def test_video_sink_writes_annotated_frames(tmp_path):
    p = tmp_path / "o.mp4"
    s = VideoSink(str(p), ["person", "car"], 10)
    img = np.zeros((120, 160, 3), np.uint8)
    for i in range(5):
        s.on_result(shown(Frame(img, i / 10, i), dets()))
    s.close()
    cap = cv2.VideoCapture(str(p))
    n, first = 0, None
    while True:
        ok, f = cap.read()
        if not ok:
            break
        first = f if first is None else first
        n += 1
    assert n == 5
    assert first[20:100, 10].max() > 100  # the box edge was drawn on a black frame


def test_image_sink_replaces_latest_image(tmp_path):
    p = tmp_path / "latest.jpg"
    s = VideoSink(str(p), ["person"], None)
    s.on_result(shown(Frame(np.zeros((50, 60, 3), np.uint8), 0, 0), Detections()))
    assert cv2.imread(str(p)).shape == (50, 60, 3)
    assert [x.name for x in tmp_path.iterdir()] == ["latest.jpg"]


def test_unsupported_video_suffix_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="output.video: unsupported file type '.gif'"):
        VideoSink(str(tmp_path / "x.gif"), [], None)


def test_video_sink_on_a_full_disk_is_a_config_error_not_a_silent_loss(tmp_path):
    # OpenCV's writer only logs "Failed to write frame" and carries on; the sink must say the output is lost
    p = tmp_path / "o.avi"
    p.symlink_to("/dev/full")
    s = VideoSink(str(p), ["person"], 10)
    noise = np.random.default_rng(0).integers(0, 256, (240, 320, 3), np.uint8)  # MJPG cannot shrink it
    with pytest.raises(ConfigError, match=r"output.video: cannot write .*o\.avi"):
        for i in range(50):
            s.on_result(shown(Frame(noise, i / 10, i), Detections()))
    s.close()


def test_image_sink_that_cannot_replace_its_file_is_a_config_error_and_leaves_no_temporary(tmp_path):
    p = tmp_path / "latest.jpg"
    p.mkdir()  # something in the way that even root cannot replace with a file
    s = VideoSink(str(p), ["person"], None)
    with pytest.raises(ConfigError, match="output.video: cannot write .*latest.jpg: Is a directory"):
        s.on_result(shown(Frame(np.zeros((50, 60, 3), np.uint8), 0, 0), Detections()))
    assert [x.name for x in tmp_path.iterdir()] == ["latest.jpg"]


def test_a_video_too_small_for_the_encoder_says_the_encoder_refused_its_size(tmp_path):
    # a 1x1 source and --save-video out.mp4 said "cannot open out.mp4 for writing", of a writable path
    from tests.conftest import make_clip, run_vigil

    clip = make_clip(tmp_path / "dot.avi", frames=3, size=(1, 1))
    out = tmp_path / "out.mp4"
    r = run_vigil("run", "--source", str(clip), "--save-video", str(out), "--no-progress")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert (f"vigil: config error: output.video: the mp4v encoder for .mp4 refuses 1x1 frames ({out} is writable); "
            "use .avi or an image (.jpg, .png) for a source this small") in r.stderr
    assert "cannot open" not in r.stderr and not out.exists()
    ok = run_vigil("run", "--source", str(clip), "--save-video", str(tmp_path / "out.avi"), "--no-progress")
    assert ok.returncode == 0, ok.stderr  # the suggested way works

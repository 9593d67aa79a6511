"""app/render.py: one overlay renderer and one JPEG encoder behind every picture Vigil hands out
(/api/latest.jpg, MQTT's latest_image, snapshots), and app/api/images.py's Images that serves them."""
import threading

import cv2
import numpy as np
import pytest

from app.analytics.config import LineConfig, ZoneConfig
from app.api.images import Images
from app.health import Health
from app.publish.config import LatestImageConfig
from app.publish.images import LatestImage
from app.render import Layers, decode_jpeg, encode_jpeg, overlaid
from app.status import Parts, Status
from app.timing import StageTimer
from app.types import Detections, Frame, FrameResult
from tests.conftest import SAMPLE_CLIP

LABELS = ["person", "car"]
ZONES = {"left": ZoneConfig(polygon=[(0, 0), (0.5, 0), (0.5, 1), (0, 1)])}
LINES = {"door": LineConfig(start=(0.5, 0.0), end=(0.5, 1.0))}


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(SAMPLE_CLIP))
    out = [cap.read()[1] for _ in range(2)]
    cap.release()
    assert all(f is not None for f in out)
    return out


def result_of(image: np.ndarray, seq: int) -> FrameResult:
    h, w = image.shape[:2]
    objects = Detections(np.array([[100.0, 120.0, 180.0, 300.0]]), [0.9], [0], [7])
    return FrameResult(seq, float(seq), float(seq), (w, h), objects, frame=Frame(image, float(seq), seq),
                       zones={"left": {"all": 1, "person": 1}}, lines={"door": {"in": 2, "out": 1}})


def status_with(result: FrameResult) -> Status:
    status = Status(LABELS, "dev", StageTimer(), Parts(Health(), Health()), "r", zones=ZONES, lines=LINES)
    status.on_result(result)
    return status


def test_api_and_mqtt_latest_frames_are_the_same_picture(frames):
    result = result_of(frames[0], 1)
    cfg = LatestImageConfig(interval=1.0, height=240, quality=60)
    mqtt = LatestImage(cfg, LABELS, ZONES, LINES).due(result)
    api = Images(status_with(result)).latest(240, 60, Layers())
    assert mqtt is not None and mqtt == api  # one renderer: a user sees the same frame in HA and on the page
    assert decode_jpeg(api).shape[0] == 240


def test_layers_decide_what_is_drawn(frames):
    result = result_of(frames[0], 1)
    bare = overlaid(result, LABELS, ZONES, LINES, Layers(bbox=False, zones=False, lines=False))
    assert np.array_equal(bare, frames[0]) and bare is not frames[0]  # a copy: the frame is shared
    boxed = overlaid(result, LABELS, ZONES, LINES, Layers(zones=False, lines=False))
    changed = np.argwhere((boxed != frames[0]).any(axis=2))
    assert len(changed)
    (y0, x0), (y1, x1) = changed.min(axis=0), changed.max(axis=0)
    # the box and its tag (which may be wider than the box), nothing near the line at mid-frame
    assert x0 >= 90 and x1 < frames[0].shape[1] // 2 - 20 and y1 <= 310, (x0, x1, y1)
    zoned = overlaid(result, LABELS, ZONES, LINES, Layers(bbox=False, lines=False))
    lined = overlaid(result, LABELS, ZONES, LINES, Layers(bbox=False, zones=False))
    assert (zoned != frames[0]).any() and (lined != frames[0]).any() and not np.array_equal(zoned, lined)
    assert np.array_equal(overlaid(result, LABELS, {}, {}, Layers(bbox=False)), frames[0])  # nothing configured


def test_encode_jpeg_scales_down_never_up(frames):
    h = frames[0].shape[0]
    assert decode_jpeg(encode_jpeg(frames[0], 80, h // 2)).shape[0] == h // 2
    assert decode_jpeg(encode_jpeg(frames[0], 80, h * 2)).shape[0] == h
    assert decode_jpeg(b"not a jpeg") is None


def test_latest_jpeg_is_made_once_per_frame_and_options(frames):
    first = result_of(frames[0], 1)
    status = status_with(first)
    images = Images(status)
    a = images.latest(None, 70, Layers())
    assert images.latest(None, 70, Layers()) is a  # the same frame and options: the kept bytes, not a new encode
    assert images.latest(None, 50, Layers()) != a
    assert images.latest(10_000, 70, Layers()) == a  # never upscaled: the frame's own height is the same picture
    status.on_result(result_of(frames[1], 2))
    assert images.latest(None, 70, Layers()) != a  # a new frame


def test_concurrent_latest_requests_get_whole_pictures(frames):
    status = status_with(result_of(frames[0], 1))
    images = Images(status)
    got: list[bytes] = []
    errors: list[BaseException] = []

    def ask(quality: int) -> None:
        try:
            for _ in range(5):
                got.append(images.latest(200, quality, Layers()))
        except BaseException as e:  # noqa: BLE001 - collected for the assertion
            errors.append(e)

    threads = [threading.Thread(target=ask, args=(q,)) for q in (40, 60, 80, 40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and len(got) == 20
    by_quality = {q: Images(status).latest(200, q, Layers()) for q in (40, 60, 80)}
    assert set(got) == set(by_quality.values())  # each answer is the picture asked for, never another's


def test_no_frame_yet_is_none():
    status = Status(LABELS, "dev", StageTimer(), Parts(Health(), Health()), "r")
    assert Images(status).latest(None, 70, Layers()) is None
    assert Images(status).snapshot("r-1", False, None, None) is None  # snapshots off

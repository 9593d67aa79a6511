import numpy as np
import pytest

from app.modelfile import TensorSpec
from app.errors import ModelError
from app.preprocess import InputConverter, infer_input_range, make_view, plan_views, tile_starts


@pytest.mark.parametrize("mode", ["letterbox", "stretch"])
@pytest.mark.parametrize("rect", [(0, 0, 768, 576), (100, 50, 192, 192), (576, 384, 192, 192), (0, 0, 640, 360)])
def test_view_mapping_round_trips(mode, rect):
    view = make_view(*rect, 224, 224, mode)
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 700, (50, 4))
    np.testing.assert_allclose(view.to_source(view.to_model(src)), src, atol=1e-9)
    norm = rng.uniform(0, 1, (50, 4))
    np.testing.assert_allclose(view.to_model(view.to_source(norm)), norm, atol=1e-12)


def test_letterbox_maps_model_corners_of_content_to_frame_corners():
    view = make_view(0, 0, 768, 576, 224, 224, "letterbox")
    # content is 224x168 centred: rows 28..196
    assert (view.pad_x, view.pad_y) == (0, 28)
    corners = np.array([[0, 28 / 224, 1, 196 / 224]])
    np.testing.assert_allclose(view.to_source(corners), [[0, 0, 768, 576]], atol=1e-9)


def test_letterbox_render_puts_pixels_where_the_mapping_says():
    img = np.zeros((576, 768, 3), np.uint8)
    img[200:300, 400:500] = 255  # a white square in the source
    view = make_view(0, 0, 768, 576, 224, 224, "letterbox")
    out = view.render(img, rgb=False)
    assert out.shape == (224, 224, 3)
    x1, y1, x2, y2 = view.to_model(np.array([[400, 200, 500, 300]]))[0] * 224
    inside = out[int(y1) + 2 : int(y2) - 2, int(x1) + 2 : int(x2) - 2]
    assert inside.min() > 200
    assert out[5, 5, 0] == 114  # padding row


def test_tile_view_maps_tile_pixels_to_frame_offsets():
    view = make_view(576, 384, 192, 192, 224, 224, "letterbox")
    np.testing.assert_allclose(view.to_source(np.array([[0, 0, 1, 1]])), [[576, 384, 768, 576]])


def test_tiles_cover_frame_with_requested_overlap():
    starts = tile_starts(768, 192, 0.25)
    assert starts[0] == 0 and starts[-1] == 768 - 192
    gaps = np.diff(starts)
    assert gaps.max() <= 192 * 0.75 + 1
    assert tile_starts(100, 192, 0.25) == [0]


def test_plan_views_counts_tiles_and_full_frame():
    views = plan_views(768, 576, 224, 224, tile_size=192, overlap=0.25, full_frame=True)
    assert len(views) == 1 + 5 * 4
    assert (views[0].w, views[0].h) == (768, 576)
    covered = np.zeros((576, 768), bool)
    for v in views[1:]:
        covered[v.y0 : v.y0 + v.h, v.x0 : v.x0 + v.w] = True
    assert covered.all()
    assert len(plan_views(768, 576, 224, 224, tile_size=192, full_frame=False)) == 20


def test_int8_input_is_quantised_with_scale_and_zero_point():
    scale = float(np.float32(2 / 255))  # as stored in a model: float32, a hair above 2/255
    spec = TensorSpec("in", (1, 2, 2, 3), np.dtype(np.int8), scale=scale, zero_point=-1)
    conv = InputConverter(spec)
    assert conv.input_range == (-1.0, 1.0)
    px = np.array([[[0, 128, 255]] * 2] * 2, np.uint8)
    out = conv(px)
    assert out.dtype == np.int8 and out.shape == (1, 2, 2, 3)
    # real = -1 + p/255*2 ; q = round(real/scale) + zp
    expected = [round((-1 + p / 255 * 2) / scale) - 1 for p in (0, 128, 255)]
    assert out[0, 0, 0].tolist() == expected == [-128, -1, 126]


def test_uint8_unit_range_model_gets_raw_pixels():
    spec = TensorSpec("in", (1, 2, 2, 3), np.dtype(np.uint8), scale=1 / 255, zero_point=0)
    conv = InputConverter(spec)
    assert conv.identity
    px = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    assert np.array_equal(conv(px)[0], px)


def test_float_model_gets_float_in_configured_range():
    spec = TensorSpec("in", (1, 1, 1, 3), np.dtype(np.float32))
    out = InputConverter(spec, (-1.0, 1.0))(np.array([[[0, 255, 51]]], np.uint8))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0, 0, 0], [-1.0, 1.0, -0.6], atol=1e-6)


def test_inferred_ranges_for_common_quantisations():
    assert infer_input_range(TensorSpec("a", (1, 1, 1, 3), np.dtype(np.uint8), 1 / 128, 128)) == (-1.0, 1.0)
    assert infer_input_range(TensorSpec("a", (1, 1, 1, 3), np.dtype(np.uint8), 1.0, 0)) == (0.0, 255.0)


def test_non_image_input_is_a_model_error():
    with pytest.raises(ModelError, match="NHWC"):
        InputConverter(TensorSpec("x", (1, 100), np.dtype(np.float32)))


def _reference_render(view, image, rgb):
    """The letterbox as written before rendering went in place: resize, paste on a grey canvas, swap channels."""
    import cv2

    crop = image[view.y0 : view.y0 + view.h, view.x0 : view.x0 + view.w]
    nw, nh = round(view.w * view.scale_x), round(view.h * view.scale_y)
    if (nw, nh) != (view.w, view.h):
        crop = cv2.resize(crop, (nw, nh), interpolation=cv2.INTER_LINEAR)
    canvas = np.full((view.model_h, view.model_w, 3), 114, np.uint8)
    canvas[view.pad_y : view.pad_y + nh, view.pad_x : view.pad_x + nw] = crop
    return cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB) if rgb else canvas


@pytest.mark.parametrize("dtype,scale,zp", [(np.uint8, 1.0, 0), (np.int8, float(np.float32(2 / 255)), -1),
                                            (np.uint8, 1 / 255, 0), (np.float32, 0.0, 0)])
@pytest.mark.parametrize("frame", [(768, 576), (576, 768), (320, 320), (200, 90)])
def test_tensor_rendered_in_place_equals_render_then_convert(dtype, scale, zp, frame):
    rng = np.random.default_rng(7)
    w, h = frame
    image = rng.integers(0, 256, (h, w, 3), np.uint8)
    spec = TensorSpec("in", (1, 96, 128, 3), np.dtype(dtype), scale=scale, zero_point=zp)
    conv = InputConverter(spec, (0.0, 1.0) if dtype == np.float32 else None)
    views = plan_views(w, h, 128, 96, "letterbox", tile_size=160) + plan_views(w, h, 128, 96, "stretch")
    for view in views:
        for rgb in (False, True):
            got = conv.tensor(view, image, rgb)
            want = conv(_reference_render(view, image, rgb))
            assert got.dtype == want.dtype and got.shape == (1, 96, 128, 3)
            assert np.array_equal(got, want), (view, rgb)

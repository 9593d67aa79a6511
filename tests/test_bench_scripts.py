"""Bench scripts that the docs tell users to run still work with today's config tree."""
import importlib.util
from pathlib import Path

from app.backends import load

ROOT = Path(__file__).resolve().parents[1]


def bench_module(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_grpc_overhead_prepares_the_views_of_the_default_config():
    # `python bench/grpc_overhead.py` (docs/camera.md, make bench-grpc) set preprocess.tiling.enabled,
    # a key the planners replaced, and died with AttributeError before measuring anything
    grpc_overhead = bench_module("grpc_overhead")
    model = load(str(ROOT / "models" / "nanodet_int8_pertensor.tflite"), "tflite", threads=1)
    try:
        whole = grpc_overhead.frame_views(model, 2, tiling=False)
        tiled = grpc_overhead.frame_views(model, 1, tiling=True)
    finally:
        model.close()
    assert [len(views) for views in whole] == [1, 1]
    assert whole[0][0].shape == (1, 416, 416, 3)
    assert len(tiled[0]) > 1  # tiles of the 768x576 clip frame plus the whole frame

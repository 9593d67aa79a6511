#!/usr/bin/env python3
"""Build the converter-made check-model fixtures in tests/fixtures/models/dlpu/.

Run with a Python that has TensorFlow (a build-time tool, never a Vigil dependency):

    /path/to/tf-venv/bin/python tools/make_dlpu_recipe_models.py

Each model is converted with Axis's recipe (seed 003, "Supported frameworks"):
optimizations DEFAULT, a representative dataset, TFLITE_BUILTINS_INT8, and
_experimental_disable_per_channel for ARTPEC-8. The only thing that varies is the
model's input/output type: uint8 as in Axis's example, or int8. The network uses
ARTPEC-8-listed ops only (CONV_2D, MAX_POOL_2D, FULLY_CONNECTED, RESHAPE), so the
uint8 one differs from the int8 one by the uint8<->int8 QUANTIZE the converter puts
at each end. Weights are random with a fixed seed; only the graph matters.

Files written:

* recipe_uint8_io.tflite - Axis's recipe as published (uint8 I/O).
* recipe_int8_io.tflite - the same with inference_input/output_type = tf.int8.
"""
from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

OUT_DIR = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "models" / "dlpu"
SEED = 14


def network() -> tf.keras.Model:
    """32x32 RGB -> 3x3 conv (12, ReLU) -> 2x2 max pool -> 3x3/2 conv (24, ReLU) -> dense 6."""
    tf.keras.utils.set_random_seed(SEED)
    x = tf.keras.Input((32, 32, 3), batch_size=1)
    y = tf.keras.layers.Conv2D(12, 3, padding="same", activation="relu")(x)
    y = tf.keras.layers.MaxPool2D(2)(y)
    y = tf.keras.layers.Conv2D(24, 3, strides=2, padding="same", activation="relu")(y)
    y = tf.keras.layers.Reshape((8 * 8 * 24,))(y)
    y = tf.keras.layers.Dense(6)(y)
    return tf.keras.Model(x, y)


def convert(model: tf.keras.Model, io_type) -> bytes:
    """Seed 003's converter settings, with the I/O type given."""
    rng = np.random.default_rng(SEED)

    def representative():
        for _ in range(32):
            yield [rng.random((1, 32, 32, 3), np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = io_type
    converter.inference_output_type = io_type
    converter._experimental_disable_per_channel = True  # ARTPEC-8 (seed 003)
    return converter.convert()


def main() -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    model = network()
    for name, io_type in (("recipe_uint8_io", tf.uint8), ("recipe_int8_io", tf.int8)):
        path = OUT_DIR / f"{name}.tflite"
        path.write_bytes(convert(model, io_type))
        print(f"{path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()

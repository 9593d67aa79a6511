#!/usr/bin/env python3
"""Write tests/fixtures/models/tiny_float.tflite: a small float32 CNN for `vigil quantize` tests.

Needs TensorFlow (e.g. /work/tfvenv/bin/python tools/make_float_fixture.py); Vigil itself never does.
Random but seeded weights: the tests compare INT8 against this float model, not against labels.
"""
from pathlib import Path

import numpy as np
import tensorflow as tf

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "models" / "tiny_float.tflite"


def main() -> None:
    tf.keras.utils.set_random_seed(0)
    inputs = tf.keras.Input((32, 32, 3), batch_size=1, name="image")
    x = tf.keras.layers.Conv2D(12, 3, strides=2, padding="same", activation="relu")(inputs)
    x = tf.keras.layers.Conv2D(24, 3, strides=2, padding="same", activation="relu")(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    scores = tf.keras.layers.Dense(4, activation="sigmoid", name="scores")(x)
    model = tf.keras.Model(inputs, scores)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    data = converter.convert()
    OUT.write_bytes(data)
    interp = tf.lite.Interpreter(model_content=data)
    interp.allocate_tensors()
    print(OUT, len(data), "bytes", [d["dtype"].__name__ for d in interp.get_input_details()],
          np.round(interp.get_tensor(interp.get_output_details()[0]["index"]), 3))


if __name__ == "__main__":
    main()

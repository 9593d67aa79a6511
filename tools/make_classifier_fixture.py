"""Build tests/fixtures/models/classifier_int8.tflite: a tiny INT8 image classifier ([1,10] output),
a valid model whose outputs match none of Vigil's detection decoders. Run with a TensorFlow venv:
    /path/to/tf-venv/bin/python tools/make_classifier_fixture.py
"""
from pathlib import Path

import numpy as np
import tensorflow as tf

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "models" / "classifier_int8.tflite"


def main() -> None:
    tf.keras.utils.set_random_seed(0)
    inp = tf.keras.Input((32, 32, 3))
    x = tf.keras.layers.Conv2D(4, 3, strides=2, activation="relu")(inp)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    out = tf.keras.layers.Dense(10, activation="softmax")(x)
    model = tf.keras.Model(inp, out)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    conv.representative_dataset = lambda: ([rng.random((1, 32, 32, 3), np.float32)] for _ in range(20))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.uint8
    conv.inference_output_type = tf.uint8
    OUT.write_bytes(conv.convert())
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()

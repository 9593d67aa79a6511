"""Offline model tools, one job per module.

- `dlpu_check/`: `vigil check-model`, which ops of a .tflite run on an Axis DLPU and why;
- `quantize_cli`: `vigil quantize`, a float model and images to an INT8 model, compared and checked;
- `quantize`: calibration and INT8 quantisation with ai-edge-quantizer, and the read-back report;
- `compare`: an INT8 model against its float original (outputs, detections, kernels, speed);
- `flatbuffer` and `graph_edits`: TFLite object trees and the edits made around quantisation.

Reading a model file is `app.modelfile.read_model`, shared with the app's backends.
"""

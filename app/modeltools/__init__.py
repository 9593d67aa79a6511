"""Offline model tools: TFLite flatbuffer repairs, INT8 calibration and quantisation, checks."""

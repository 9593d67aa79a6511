"""Everything that talks to ACAP Runtime, Axis's gRPC server in the inference-server container.

- `client`: the endpoint, the one gRPC channel per server shared by every part, retries of
  transient failures and their error text.
- `inference`: the Predict client behind the Model protocol (`backends.acap_runtime` is its plugin).
- `video`: the VideoCapture stream client (`capture.acap_runtime` is its plugin).
- `params`: the camera parameters (KeyValueStore) mapped onto config keys, read at start and polled.
- `tensors`, `nv12`: TensorProto and NV12 conversions, shared by the clients and the emulator.
- `chips`: the chip ids of the server's `-j` flag (no gRPC: config validation checks a device name).
- `emulator`, `emulated_camera`: a local stand-in for the server (`vigil emulator`).

Importing `client`, `inference`, `video`, `params` or `emulator` loads gRPC and protobuf; only
the ACAP Runtime plugins, the camera-parameter start-up and `vigil emulator` import them, so a
run that does not use ACAP Runtime never pays for that memory.
"""

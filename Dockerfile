# syntax=docker/dockerfile:1
# Vigil container image. One Dockerfile for both targets (make image builds them together):
#   linux/arm64  the camera: ARTPEC-8, AXIS OS 11.10+ with the Docker Compose ACAP (docs/camera.md)
#   linux/amd64  laptops: docker compose up (docker-compose.yml)
# ARTPEC-7 (armv7hf) is not built: Axis ended container support for armv7hf after AXIS OS 11.11.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# Build stage, always on the build machine's own architecture: the wheel is pure Python.
# It generates the ACAP Runtime gRPC modules from app/protos/*.proto (grpcio-tools stays here).
FROM --platform=$BUILDPLATFORM ${PYTHON_IMAGE} AS build
WORKDIR /src
RUN pip install --no-cache-dir "grpcio-tools==1.85.1" "setuptools==80.9.0"
COPY pyproject.toml README.md ./
COPY app ./app
RUN python -m app.protos \
    && pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels .

# Runtime file system, on the target platform: Python, the wheel and its runtime dependencies only
# (from pyproject.toml, with the versions image-constraints.txt pins: the ones measured for the camera's
# image size), the vigil user. The last stage copies it whole into one layer, so what is deleted here
# (pip, setuptools and wheel, about 18 MB the base image brings; the packages' own test suites, which
# nothing imports, 15 MB) is in no layer of the image. make image-size prints what is left, per package.
FROM ${PYTHON_IMAGE} AS runtime
# uid and gid both 1000 (useradd --system --user-group would pick a system gid such as 999).
# On the camera the vigil service also gets group 0 (docker-compose.acap.yml, group_add): ACAP
# Runtime runs as root and makes its socket root:root 0660.
RUN groupadd --gid 1000 vigil \
    && useradd --uid 1000 --gid 1000 --create-home --home-dir /home/vigil vigil \
    && mkdir /data && chown 1000:1000 /data
COPY --from=build /wheels /tmp/wheels
COPY image-constraints.txt /tmp/
RUN pip install --no-cache-dir "$(echo /tmp/wheels/vigil-*.whl)[camera]" -c /tmp/image-constraints.txt && rm -rf /tmp/wheels /tmp/image-constraints.txt \
    && pip uninstall --yes pip setuptools wheel \
    && find "$(python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" -type d -name tests -prune \
       -exec rm -rf {} +

# The image: that file system as one layer, on purpose (the base image's ENV is restated: PATH and LANG
# matter). Its layer sum is then the size of its files, as the camera stores them.
FROM scratch
# hadolint ignore=DL3067
COPY --from=runtime / /
ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    VIGIL_CONFIG=/config/vigil.yaml \
    VIGIL_MODEL__PATH=/models/nanodet_int8_pertensor.tflite \
    VIGIL_API__ENABLED=true \
    VIGIL_API__HOST=0.0.0.0 \
    VIGIL_API__PORT=8080 \
    VIGIL_STATE__FILE=/data/state.json
# The NanoDet models, both quantisations: per-tensor is what ARTPEC-8's DLPU runs (the default),
# per-channel what ARTPEC-9's and ARTPEC-7's prefer. The optional BlazePose person detector (36 runs a
# frame: not for a camera's cores) stays in models/, which docker-compose.yml mounts over /models.
COPY --chown=vigil:vigil models/nanodet_int8_*.tflite /models/
COPY --chown=vigil:vigil config/default.yaml /config/vigil.yaml
WORKDIR /home/vigil
USER 1000:1000
# The model and the configuration are meant to be mounted over these; /data keeps line counts
# across restarts (state.file).
VOLUME ["/models", "/config", "/data"]
EXPOSE 8080
# /api/live answers without the token whatever api.protect says (503 when a component is failing,
# nothing else); the start period covers a first DLPU compile (minutes).
HEALTHCHECK --interval=30s --timeout=5s --start-period=300s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/api/live' % os.environ.get('VIGIL_API__PORT', '8080'), timeout=4)"]
ENTRYPOINT ["vigil"]
CMD ["run", "--no-progress"]

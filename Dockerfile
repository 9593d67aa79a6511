# Vigil container image (laptop: amd64; camera: arm64/ARTPEC-8). Minimal for now; the camera
# issue adds the ACAP Runtime backend, multi-arch build and health check.
FROM python:3.11-slim-bookworm
RUN useradd --create-home --uid 1000 vigil
WORKDIR /opt/vigil
COPY pyproject.toml README.md ./
COPY app ./app
RUN pip install --no-cache-dir .
COPY models ./models
COPY config ./config
COPY samples ./samples
USER vigil
ENTRYPOINT ["vigil"]
CMD ["run", "--config", "config/default.yaml", "--jsonl", "-"]

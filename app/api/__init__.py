"""HTTP status API, Prometheus metrics and the live status page (FastAPI, served in-process by uvicorn)."""

"""Many cameras at once, from an integrator's machine: `vigil fleet status` and `vigil fleet config
push|pull` over each camera's own HTTP API (through its reverse proxy and authentication)."""

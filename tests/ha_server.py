"""A real Home Assistant core (the one `make ha-venv` installs in .venv-ha) for tests: its own config
directory, a free loopback port, onboarded through its API, the MQTT integration added through the
config-flow REST API; then read through the REST API as a user's automations and dashboards would."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx

from tests.conftest import ROOT
from tests.mqtt_util import free_port, wait_until

HA_BIN = ROOT / ".venv-ha" / "bin" / "hass"
HA_PYTHON = ROOT / ".venv-ha" / "bin" / "python"

CONFIG = """\
homeassistant:
  name: Vigil test
  latitude: 52.37
  longitude: 4.89
  elevation: 0
  unit_system: metric
  time_zone: UTC
  country: NL
  currency: EUR
http:
  server_host: 127.0.0.1
  server_port: {port}
api:
config:
onboarding:
person:
websocket_api:
image:
automation: !include automations.yaml
logger:
  default: warning
  logs:
    homeassistant.components.mqtt.mixins: info  # "Removing component: <entity id>"
"""


class HomeAssistant:
    """One `hass` process; `start()` waits until its API answers, `onboard()` gets a token."""

    def __init__(self, config_dir: Path) -> None:
        self.dir = config_dir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.client_id = self.base + "/"  # onboarding's client, as the frontend names itself (IndieAuth)
        self.token: str | None = None
        self.tokens: dict = {}
        self.proc: subprocess.Popen | None = None
        self.log = config_dir / "stdout.log"

    def start(self, timeout: float = 150, config: str = CONFIG) -> "HomeAssistant":
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "configuration.yaml").write_text(config.format(port=self.port))
        (self.dir / "automations.yaml").write_text("[]\n")  # what the automation editor saves into
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        with open(self.log, "wb") as out:  # --skip-pip: nothing is installed at run time (no network)
            self.proc = subprocess.Popen([str(HA_BIN), "-c", str(self.dir), "--skip-pip"], stdout=out,
                                         stderr=subprocess.STDOUT, env=env)

        def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"hass exited with {self.proc.returncode}: {self.tail()}")
            if "Activating recovery mode" in self.tail(10**6):  # an integration it always loads failed
                raise AssertionError(f"Home Assistant started in recovery mode (see `make ha-venv`): {self.tail()}")
            try:  # answers 200 once onboarding's views are up, before any user exists
                return httpx.get(self.base + "/api/onboarding", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, timeout, 0.5, "Home Assistant's HTTP server")
        return self

    def tail(self, n: int = 3000) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text[-n:]

    def onboard(self) -> str:
        """The first user through onboarding's API, its auth code turned into an access token."""
        r = httpx.post(self.base + "/api/onboarding/users", timeout=60, json={
            "client_id": self.client_id, "name": "Test", "username": "test", "password": "test-pass-1", "language": "en"})
        assert r.status_code == 200, (r.status_code, r.text, self.tail())
        r = httpx.post(self.base + "/auth/token", timeout=30, data={
            "grant_type": "authorization_code", "code": r.json()["auth_code"], "client_id": self.client_id})
        assert r.status_code == 200, (r.status_code, r.text)
        self.tokens = r.json()  # access_token, refresh_token, expires_in
        self.token = self.tokens["access_token"]
        # the other steps as the frontend's wizard takes them: left open, the frontend shows the wizard
        # (home location, …) instead of any page, which headless Chromium stays on
        # (core_config marks itself done, then starts the flows of the integrations a new install suggests,
        # met, radio_browser, …, whose libraries are not installed here: that answers 500, and is no matter)
        for step, body in (("core_config", {}), ("analytics", {}),
                           ("integration", {"client_id": self.client_id, "redirect_uri": self.base + "/?auth_callback=1"})):
            self.post(f"/api/onboarding/{step}", body)
        steps = httpx.get(self.base + "/api/onboarding", timeout=30).json()
        assert all(s["done"] for s in steps), steps
        return self.token

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str, **kw) -> httpx.Response:
        return httpx.get(self.base + path, headers=self.headers, timeout=30, **kw)

    def post(self, path: str, body: dict) -> httpx.Response:
        return httpx.post(self.base + path, headers=self.headers, json=body, timeout=30)

    def add_mqtt(self, port: int) -> dict:
        """The MQTT integration as a user adds it (Settings → Devices & services → Add → MQTT)."""
        r = self.post("/api/config/config_entries/flow", {"handler": "mqtt", "show_advanced_options": False})
        assert r.status_code == 200, (r.status_code, r.text, self.tail())
        flow = r.json()
        while flow.get("type") == "form":  # the broker step (and any the version adds): answer what it asks
            answer = {"broker": "127.0.0.1", "port": port}
            fields = {f["name"] for f in flow.get("data_schema", [])}
            r = self.post(f"/api/config/config_entries/flow/{flow['flow_id']}",
                          {k: v for k, v in answer.items() if k in fields})
            assert r.status_code == 200, (r.status_code, r.text)
            flow = r.json()
        assert flow.get("type") == "create_entry", flow
        return flow

    def ws(self, *commands: dict) -> list[dict]:
        """The websocket API's results of `commands`, in order (tests/ha_ws.py in Home Assistant's venv)."""
        url = f"ws://127.0.0.1:{self.port}/api/websocket"
        p = subprocess.run([str(HA_PYTHON), str(ROOT / "tests" / "ha_ws.py"), url, self.token],
                           input=json.dumps(list(commands)), capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr[-3000:]
        return json.loads(p.stdout)

    def state(self, entity_id: str) -> dict | None:
        r = self.get(f"/api/states/{entity_id}")
        return r.json() if r.status_code == 200 else None

    def states(self) -> dict[str, dict]:
        return {s["entity_id"]: s for s in self.get("/api/states").json()}

    def template(self, text: str) -> str:
        r = self.post("/api/template", {"template": text})
        assert r.status_code == 200, (r.status_code, r.text)
        return r.text

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def removed_components(log_text: str, node: str) -> list[str]:
    """The lines of Home Assistant's log where MQTT discovery removed one of `node`'s entities."""
    return [ln for ln in log_text.splitlines() if "Removing component" in ln and node in ln]

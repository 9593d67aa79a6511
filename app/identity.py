"""Which device this is: its name in MQTT topics, in Home Assistant's device and in payloads.

`device_id` when configured. Otherwise, on the camera (acap_runtime.parameters on), its serial
number, read through ACAP Runtime's parameter service; elsewhere an id generated once. Either is kept
in the state directory (`device_id` beside state.file), so a restart, a reinstall that keeps the
volume, or a camera whose parameter service does not answer at one start keeps the same MQTT prefix
and Home Assistant device. With no state file: the host name.

The MQTT client id must be unique per broker: a broker closes the older of two connections with the
same id, and two clients that both reconnect kick each other off every second or two (Frigate #3575).
It should also be stable across restarts: after a power cut the broker still holds the dead
connection until its keepalive runs out, and a new id would let that ghost's last will (`offline`,
retained) arrive after the new run's `online`; with the same id the broker replaces the ghost at once.
So the default is `vigil-<device_id>-<suffix>`, the suffix a hash of this machine's identity
(/etc/machine-id, else the host name) and the device id: the same at every start, different for a
config cloned to another camera or container.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import socket
from pathlib import Path

log = logging.getLogger(__name__)

SERIAL_KEY = "root.Properties.System.SerialNumber"
ID_FILE = "device_id"
VALID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")  # as Config.device_id


def safe(name: str) -> str:
    """A name made safe for topics (and for Config.device_id's pattern)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name.strip())[:64]


def host_id() -> str:
    return safe(socket.gethostname() or "vigil") or "vigil"


def id_path(state_file: str) -> Path:
    return Path(state_file).parent / ID_FILE


def camera_serial(acap) -> str | None:
    """The camera's serial number, or None when the parameter service has none or does not answer."""
    from app.acap.params import device_value  # grpc: only on a camera

    serial = device_value(acap, SERIAL_KEY)
    return safe(serial) or None if serial else None


def stored_id(path: Path, wanted: str | None = None) -> str:
    """The id kept in `path`: `wanted` (written when it differs), else the one stored, else a new one.
    An unwritable file is a warning: the id then holds for this run only."""
    old = None
    try:
        old = path.read_text().strip()
    except FileNotFoundError:
        pass
    except OSError as e:
        log.warning("device id: cannot read %s: %s", path, e.strerror or e)
    if old is not None and not VALID.match(old):
        log.warning("device id: %s holds no valid id (%r); making a new one", path, old[:80])
        old = None
    new = wanted or old or f"vigil-{secrets.token_hex(4)}"
    if new != old:
        try:
            tmp = path.with_name(f".{path.name}.tmp")
            with open(tmp, "w") as f:
                f.write(new + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            log.info("device id %s (kept in %s)%s", new, path, f", was {old}" if old else "")
        except OSError as e:
            log.warning("device id: cannot store %s in %s (%s): another may be used after a restart",
                        new, path, e.strerror or e)
    return new


def resolve_device_id(cfg) -> str:
    """The device id of a run of `cfg` (app.config.Config)."""
    if cfg.device_id:
        return cfg.device_id
    serial = camera_serial(cfg.acap_runtime) if cfg.acap_runtime.parameters else None
    if cfg.state.file:
        return stored_id(id_path(cfg.state.file), serial)
    return serial or host_id()


MACHINE_ID_FILES = ("/etc/machine-id", "/var/lib/dbus/machine-id")


def machine_identity() -> str:
    """This machine's (or container's) identity: machine-id when there is one, and the host name."""
    for path in MACHINE_ID_FILES:
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text:
            return f"{text}/{socket.gethostname()}"
    return socket.gethostname()


def default_client_id(device_id: str, machine: str | None = None) -> str:
    """vigil-<device_id>-<6 hex>: stable on this machine, different on another."""
    digest = hashlib.sha256(f"{machine if machine is not None else machine_identity()}|{device_id}".encode())
    return f"vigil-{device_id}-{digest.hexdigest()[:6]}"

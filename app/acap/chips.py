"""ACAP Runtime's chip ids (its `-j` flag) by Vigil device name; no grpc, so config validation can use them."""
from __future__ import annotations

from app.errors import ConfigError

# larod 2.x chip ids, the `-j` flag of ACAP Runtime (0 = ML service not started)
CHIP_IDS: dict[str, int] = {"cpu": 2, "artpec7": 4, "edgetpu": 4, "cv25": 6, "artpec8": 12}
NO_CHIP_ID = {
    "artpec9": "the ARTPEC-9 DLPU has no ACAP Runtime chip id (larod 2 lists none), so a container cannot "
    "select it; use device 'cpu' (chip 2) there, or a native larod 3 app (device a9-dlpu-tflite)",
}


def chip_id(device: str) -> int:
    """ACAP Runtime `-j` id for a Vigil device name (cpu, artpec7, artpec8, cv25); ConfigError otherwise."""
    d = device.strip().lower().replace("-", "")
    if d in CHIP_IDS:
        return CHIP_IDS[d]
    if d.isdigit() and int(d) in CHIP_IDS.values():
        return int(d)
    if d in NO_CHIP_ID:
        raise ConfigError(f"model.backend.device: {NO_CHIP_ID[d]}")
    raise ConfigError(
        f"model.backend.device: {device!r} is not an ACAP Runtime chip; choose one of {', '.join(sorted(CHIP_IDS))}"
    )

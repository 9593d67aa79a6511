"""Shared bits of the feed benchmarks: a private mosquitto and a recording subscriber."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.mqtt_util import Broker, Subscriber, wait_until  # noqa: E402,F401


def percentiles(values, ps=(50, 95)):
    import numpy as np

    return [float(v) for v in np.percentile(np.asarray(values, float), ps)] if len(values) else [float("nan")] * len(ps)

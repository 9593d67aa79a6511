"""The stats document: one pydantic model, and the committed JSON Schema generated from it."""
import json
from pathlib import Path

import jsonschema
import pytest

from app.stats import MqttOff, Stats, stats_schema, stats_schema_text
from app.status import Parts, Status
from app.health import Health
from app.timing import StageTimer

SCHEMA = Path(__file__).resolve().parents[1] / "docs" / "schemas" / "stats.schema.json"


def test_committed_stats_schema_is_the_one_generated_from_the_model():
    # regenerate with: python -c "from app.stats import stats_schema_text as t; print(t(), end='')" > docs/schemas/stats.schema.json
    assert SCHEMA.read_text() == stats_schema_text()


def test_stats_of_a_run_that_has_not_started_validate_and_extra_or_missing_keys_do_not():
    st = Status(["person"], "dev", StageTimer(), Parts(Health(), Health()), "r")
    doc = st.stats().model_dump(mode="json")
    jsonschema.validate(doc, stats_schema())
    assert doc["mqtt"] == {"enabled": False} and doc["queues"] == {"capture": None, "outputs": None}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**doc, "surprise": 1}, stats_schema())
    missing = dict(doc)
    del missing["frames"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(missing, stats_schema())


def test_stats_model_refuses_unknown_fields():
    doc = Status(["person"], "dev", StageTimer(), Parts(Health(), Health()), "r").stats().model_dump()
    with pytest.raises(ValueError):
        Stats.model_validate({**doc, "sink": 3})
    assert isinstance(Stats.model_validate(json.loads(json.dumps(doc))).mqtt, MqttOff)

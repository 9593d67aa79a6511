"""Regenerate config/default.yaml from the pydantic models (their defaults and descriptions)."""
from pathlib import Path

from app.config_render import render_defaults

HEADER = """\
# Vigil configuration: every key with its default. Generated from app/config.py by
# `python tools/gen_default_config.py`; tests fail when this file and the code disagree.
#
# Precedence (app/config_input.py LAYERS): built-in defaults < this file (--config) <
# VIGIL_<SECTION>__<KEY> environment variables (e.g. VIGIL_MODEL__PATH=x.tflite) < camera
# parameters < the site file (settings saved on site: settings page, PUT /api/config; its zones
# and lines replace these whole) < command-line flags (--set section.key=value).
"""

if __name__ == "__main__":
    out = Path(__file__).resolve().parents[1] / "config" / "default.yaml"
    out.write_text(render_defaults(HEADER))
    print(f"wrote {out}")

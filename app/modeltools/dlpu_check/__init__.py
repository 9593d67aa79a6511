"""Which ops of a .tflite run on an Axis DLPU and which fall back to the CPU, and why.

Encodes the rules of dlpu-rules.md (the rule ids below are that digest's: G global,
Q quantisation, A7/A8/A9 per chip, CV CV25, T generic TFLite). Each op gets a place with
the rules that decided it: DLPU; CPU (a rule puts it there); CPU? (not in ARTPEC-8's
operator list, which Axis does not say is complete: likely the CPU); I/O (the uint8<->int8
QUANTIZE at the model's edge that Axis's own uint8 recipe makes). Warnings and tips do
not move an op. Exit codes: 0 every op on the DLPU apart from I/O requantisation (or chip
cpu), 1 runs with CPU fallback, 2 nothing would run on the DLPU (float model, uncompiled
Edge TPU model), 3 no rule puts an op on the CPU but some ops are not in the chip's operator
list (likely CPU fallback). `vigil check-model` also exits 3 (a model error, as everywhere) for a
file that is not a usable model, which includes one the TFLite interpreter refuses to load.

The model is read by `app.modelfile.read_model`; `rules` holds the rule texts and the chips'
operator lists, `checker` the shared and per-chip rules (ARTPEC-9's per-operator conditions in
`artpec9`, the shape arithmetic they share in `geometry`), `report` the table and JSON.
"""
from __future__ import annotations

from pathlib import Path

from app.modelfile import NotAModel, read_model
from app.modeltools.dlpu_check.checker import Checker
from app.modeltools.dlpu_check.report import Finding, OpReport, Report
from app.modeltools.dlpu_check.rules import CHIP_NAMES, CHIPS, RULES

__all__ = ["CHIPS", "CHIP_NAMES", "RULES", "Finding", "NotAModel", "OpReport", "Report", "check_model"]


def check_model(path: str | Path, chip: str = "artpec8") -> Report:
    """Check a .tflite against one chip's DLPU rules; NotAModel if it is not TFLite."""
    if chip not in CHIPS:
        raise ValueError(f"chip must be one of {', '.join(CHIPS)}")
    model = read_model(path)
    report = Checker(model, chip).run()
    report.model = str(path)
    report.custom_ops = any(o.custom for o in model.operators)
    return report

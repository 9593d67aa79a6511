"""Applies one chip's DLPU rules to every operator of a model."""
from __future__ import annotations

from collections import defaultdict

from app.modelfile import ModelFile, Operator
from app.modeltools.dlpu_check import geometry as g
from app.modeltools.dlpu_check.artpec9 import Artpec9Rules
from app.modeltools.dlpu_check.report import Finding, OpReport, Report
from app.modeltools.dlpu_check.rules import ACT_NONE, ACTIVATIONS, ARTPEC8_OPS, CONTROL_FLOW, PLACES


class Checker(Artpec9Rules):
    """Applies one chip's rules to every op."""

    def __init__(self, model: ModelFile, chip: str) -> None:
        self.ops, self.chip = model.operators, chip
        self.inputs, self.outputs = model.inputs, model.outputs
        self.reports = [OpReport(o.index, o.name, subgraph=o.subgraph) for o in self.ops]
        self.findings: list[Finding] = []
        consumers: dict[int, list[Operator]] = defaultdict(list)
        producer: dict[int, Operator] = {}
        for o in self.ops:
            for t in o.inputs:
                consumers[t.index].append(o)
            for t in o.outputs:
                producer[t.index] = o
        self.consumers, self.producer = consumers, producer

    def add(self, rule: str, level: str, detail: str = "", op: Operator | None = None) -> None:
        f = Finding(rule, level, detail, op.index if op is not None else None)
        self.findings.append(f)
        if op is not None:
            r = self.reports[op.index]
            r.findings.append(f)
            # a stronger place wins: CPU over CPU? over I/O over DLPU
            order = ("DLPU", "I/O", "CPU?", "CPU")
            if level in PLACES and order.index(PLACES[level]) > order.index(r.where):
                r.where = PLACES[level]

    def run(self) -> Report:
        getattr(self, f"_chip_{self.chip}")()
        return Report("", self.chip, self.reports, self.findings)

    # -- shared -----------------------------------------------------------------------
    def _io_rules(self, multiple: int, rule: str) -> None:
        for t in self.inputs:
            hw = g.hw(t)
            if hw and (hw[0] % multiple or hw[1] % multiple):
                self.add(rule, "warn", f"input {t.name!r} is {hw[1]}x{hw[0]}")

    def _integer_rules(self) -> None:
        """G-01/G-03/G-04/G-05 for the DLPU chips."""
        custom_made = {t.index for op in self.ops if op.custom for t in op.outputs}
        for t in self.inputs + self.outputs:
            kind = "input" if t in self.inputs else "output"
            if t.type != "UINT8" and t.index not in custom_made:  # a CPU post-process op's float output is expected
                self.add("G-05", "warn", f"{kind} {t.name!r} is {t.type}")
        for op in self.ops:
            if op.custom:
                what = "SSD post-processing: expected on the CPU" if op.name == "TFLite_Detection_PostProcess" else op.name
                self.add("G-03", "cpu", what, op)
                continue
            if op.name in CONTROL_FLOW:
                self.add("G-CF", "cpu", "", op)
                continue
            if op.name == "DEQUANTIZE" and op.inputs and op.inputs[0].const and op.inputs[0].type == "FLOAT16":
                self.add("G-01", "cpu", "float16 weights widened to float32: a float16 model", op)
                continue
            if op.name in ("QUANTIZE", "DEQUANTIZE") and any(t.is_float for t in op.activations()):
                graph_edge = any(t.index in {x.index for x in self.inputs + self.outputs} for t in op.activations())
                users = self.consumers.get(op.outputs[0].index, [])
                if graph_edge:
                    self.add("G-05", "cpu", "float model input/output converted inside the graph", op)
                elif op.name == "DEQUANTIZE" and users and all(u.custom for u in users):
                    self.add("G-04", "cpu", f"feeds the CPU-only {users[0].name} (expected)", op)
                else:
                    self.add("G-04", "cpu", "float island inside the graph", op)
                continue
            floats = [t for t in op.activations() if t.is_float]
            if floats:
                w = op.weights
                hybrid = w is not None and w.type in ("INT8", "UINT8")
                self.add("G-01", "cpu", ("weights-only (hybrid) quantisation; " if hybrid else "")
                         + f"float {floats[0].name!r}", op)
            elif any(t.type == "INT16" for t in op.activations()):
                self.add("G-01", "cpu", "int16 activations (the DLPUs are INT8)", op)
            elif op.shape_arithmetic():
                self.add("G-INT32", "cpu", ", ".join(f"{t.type} {list(t.shape)}" for t in op.activations()[:3]), op)

    def _per_channel(self) -> list[Operator]:
        return [op for op in self.ops if op.weights is not None and len(op.weights.scales) > 1]

    # -- chips ----------------------------------------------------------------------------
    def _chip_cpu(self) -> None:
        for r in self.reports:
            r.where = "CPU"
        self._io_rules(8, "T-03")

    def _chip_cv25(self) -> None:
        self.add("CV-04", "info")
        if any(op.weights is not None and op.weights.type in ("INT8", "UINT8") for op in self.ops):
            self.add("CV-03", "info", "this model is already quantised")
        for op in self.ops:
            if op.custom:
                self.add("G-03", "cpu", op.name, op)
            elif op.name in CONTROL_FLOW:
                self.add("G-CF", "cpu", "", op)
        self._io_rules(32, "CV-02")

    def _chip_artpec7(self) -> None:
        self._integer_rules()
        compiled = any(op.custom and op.name == "edgetpu-custom-op" for op in self.ops)
        for op in self.ops:
            if op.custom and op.name == "edgetpu-custom-op":
                self.reports[op.index].where = "DLPU"
                self.reports[op.index].findings = [f for f in self.reports[op.index].findings if f.rule != "G-03"]
                self.findings = [f for f in self.findings if not (f.op == op.index and f.rule == "G-03")]
            elif self.reports[op.index].where == "DLPU":
                if compiled:
                    self.add("A7-03", "cpu", "", op)
                else:
                    self.add("A7-02", "cpu", "", op)
        if not self._per_channel() and any(op.weights is not None for op in self.ops):
            self.add("Q-A7", "tip", "weights are per-tensor")
        self._io_rules(8, "T-03")

    def _chip_artpec8(self) -> None:
        self._integer_rules()
        edge = {t.index for t in self.inputs + self.outputs}
        for op in self.ops:
            if self.reports[op.index].where != "DLPU" or op.name in ARTPEC8_OPS:
                continue
            if g.io_requantisation(op, edge):
                i, o = op.inputs[0], op.outputs[0]
                exact = (i.scales[:1] == o.scales[:1] and len(i.zero_points) == len(o.zero_points) == 1
                         and abs(i.zero_points[0] - o.zero_points[0]) == 128)
                self.add("A8-IO", "io", f"{i.type} -> {o.type}, {'exact' if exact else 'rescales'}", op)
            else:
                self.add("A8-10", "unlisted", "", op)
        for op in self._per_channel():
            self.add("Q-A8", "warn", f"{len(op.weights.scales)} weight scales", op)
        for op in self.ops:
            if op.name == "DEPTHWISE_CONV_2D":
                self.add("A8-04", "tip", "", op)
            if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV"):
                k = g.kernel(op)
                if k and k not in ((3, 3), (1, 1)):
                    self.add("A8-05", "tip", f"{k[0]}x{k[1]}", op)
            if op.name in ("CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED"):
                n = g.filters(op)
                if n and n % 6:
                    self.add("A8-07", "tip", f"{n} filters", op)
            if op.name in ("MAX_POOL_2D", "AVERAGE_POOL_2D") and g.strides(op) == (2, 2):
                prev = self.producer.get(op.inputs[0].index)
                if prev is not None and prev.name == "CONV_2D" and g.strides(prev) == (1, 1):
                    self.add("A8-06", "tip", f"after op {prev.index}", op)
            if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                act = getattr(op.options, "fusedActivationFunction", ACT_NONE)
                users = self.consumers.get(op.outputs[0].index, [])
                if act == ACT_NONE and len(users) == 1 and users[0].name in ACTIVATIONS:
                    self.add("A8-08", "tip", f"followed by {users[0].name} (op {users[0].index})", op)
        self._io_rules(8, "T-03")

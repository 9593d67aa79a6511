"""check-model's result: where each op runs, the findings, the exit code, as a table or JSON."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from app.modeltools.dlpu_check.rules import CHIP_NAMES, LEVELS, RULES


@dataclass
class Finding:
    rule: str
    level: str
    detail: str = ""
    op: int | None = None


@dataclass
class OpReport:
    index: int
    op: str
    where: str = "DLPU"
    findings: list[Finding] = field(default_factory=list)
    subgraph: int = 0


@dataclass
class Report:
    model: str
    chip: str
    ops: list[OpReport]
    findings: list[Finding]  # model-level and per-op, in order
    custom_ops: bool = False  # ops only a runtime with their library runs (an Edge TPU compiled model)

    def placed(self, where: str) -> list[OpReport]:
        return [o for o in self.ops if o.where == where]

    @property
    def on_dlpu(self) -> int:
        return len(self.placed("DLPU"))

    @property
    def exit_code(self) -> int:
        if self.chip == "cpu":
            return 0
        likely = len(self.placed("CPU?"))
        if not self.ops or (self.on_dlpu == 0 and likely == 0):
            return 2
        if self.placed("CPU"):
            return 1
        return 3 if likely else 0

    def counts(self) -> dict[str, int]:
        c = {level: 0 for level in LEVELS}
        for f in self.findings:
            c[f.level] += 1
        return c

    def summary(self) -> str:
        name = CHIP_NAMES[self.chip]

        def kinds(ops: list[OpReport]) -> str:
            return f" ({', '.join(sorted({o.op for o in ops}))})" if ops else ""

        cpu_ops, likely, io = self.placed("CPU"), self.placed("CPU?"), self.placed("I/O")
        meaning = {0: "fully on the DLPU" if self.chip != "cpu" else "runs on the CPU",
                   1: "runs with CPU fallback", 2: "cannot run on the DLPU",
                   3: "likely CPU fallback: ops not in the operator list"}[self.exit_code]
        c = self.counts()
        where = (f"{self.on_dlpu} on the DLPU"
                 + (f", {len(io)} I/O requantisation{kinds(io)}" if io else "")
                 + (f", {len(likely)} not listed, likely CPU{kinds(likely)}" if likely else "")
                 + f", {len(cpu_ops)} on the CPU{kinds(cpu_ops)}")
        return (f"{name}: {len(self.ops)} ops, {where}; {c['warn']} warning{'s' * (c['warn'] != 1)}, "
                f"{c['tip']} tip{'s' * (c['tip'] != 1)} -> exit {self.exit_code} ({meaning})")

    def table(self) -> str:
        """The readable report: one row per op, grouped findings, a summary line."""
        lines = [f"{self.model}  (chip {CHIP_NAMES[self.chip]})", f"{'#':>4}  {'op':<28} {'where':<5}  rules"]
        for o in self.ops:
            rules = ", ".join(dict.fromkeys(f.rule for f in o.findings))
            name = o.op if not o.subgraph else f"{o.op} [graph {o.subgraph}]"
            lines.append(f"{o.index:>4}  {name[:28]:<28} {o.where:<5}  {rules}")
        groups: dict[tuple[str, str], list[Finding]] = defaultdict(list)
        for f in self.findings:
            groups[(f.level, f.rule)].append(f)
        if groups:
            lines.append("findings:")
        for (level, rule), fs in sorted(groups.items(), key=lambda kv: (LEVELS.index(kv[0][0]), kv[0][1])):
            items = [(f"op {f.op} {self.ops[f.op].op}" if f.op is not None else "")
                     + (f" ({f.detail})" if f.detail and f.op is not None else f.detail) for f in fs]
            shown = "; ".join(i.strip() for i in items[:6] if i.strip())
            more = f"; and {len(items) - 6} more" if len(items) > 6 else ""
            lines.append(f"  {level.upper():<8} {rule:<10} {RULES[rule]}" + (f": {shown}{more}" if shown else ""))
        lines.append(f"summary: {self.summary()}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {
            "model": self.model, "chip": self.chip, "exit_code": self.exit_code, "summary": self.summary(),
            "ops": [{"index": o.index, "op": o.op, "where": o.where, "rules": [f.rule for f in o.findings]}
                    | ({"subgraph": o.subgraph} if o.subgraph else {}) for o in self.ops],
            "findings": [{"rule": f.rule, "level": f.level, "op": f.op, "detail": f.detail, "text": RULES[f.rule]}
                         for f in self.findings],
            "counts": {"ops": len(self.ops), "dlpu": self.on_dlpu, "cpu": len(self.placed("CPU")),
                       "likely_cpu": len(self.placed("CPU?")), "io_requantisation": len(self.placed("I/O")),
                       **self.counts()},
        }

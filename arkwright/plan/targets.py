"""Service targets such as "p95_wait<=4h", fleet-wide or for one programme."""

from __future__ import annotations

import re
from dataclasses import dataclass

from arkwright.timefmt import parse_duration

# metric name -> (summary key, programme key or None, is a duration)
METRICS = {
    "p95_wait": ("p95_wait_s", "p95_wait_s", True),
    "mean_wait": ("mean_wait_s", "mean_wait_s", True),
    "p99_wait": ("p99_wait_s", None, True),
    "p50_wait": ("p50_wait_s", None, True),
    "mean_jct": ("mean_jct_s", None, True),
    "p95_jct": ("p95_jct_s", None, True),
    "p99_jct": ("p99_jct_s", None, True),
    "mean_slowdown": ("mean_slowdown", None, False),
    "utilization": ("gpu_utilization", None, False),
}
_FORM = re.compile(r"^\s*([a-z0-9_]+)\s*(<=|>=)\s*(\S+)\s*$")


class TargetError(ValueError):
    pass


@dataclass(frozen=True)
class Target:
    metric: str
    op: str
    limit: float
    tenant: str | None = None
    text: str = ""

    @classmethod
    def parse(cls, text: str, tenant: str | None = None) -> Target:
        match = _FORM.match(text)
        if not match:
            raise TargetError(f"target {text!r}: write METRIC<=VALUE, e.g. p95_wait<=4h")
        metric, op, value = match.groups()
        if metric not in METRICS:
            raise TargetError(
                f"target {text!r}: unknown metric {metric!r} (known: {', '.join(METRICS)})"
            )
        _key, tenant_key, is_duration = METRICS[metric]
        if tenant is not None and tenant_key is None:
            per = [m for m, spec in METRICS.items() if spec[1]]
            raise TargetError(
                f"target {text!r} for {tenant}: per-programme metrics are {', '.join(per)}"
            )
        try:
            limit = (
                parse_duration(value)
                if is_duration
                else float(value.rstrip("%")) / (100 if value.endswith("%") else 1)
            )
        except ValueError as exc:
            raise TargetError(f"target {text!r}: {exc}") from None
        label = f"{text.strip()}" + (f" for {tenant}" if tenant else "")
        return cls(metric, op, limit, tenant, label)

    def value(self, summary: dict) -> float:
        key, tenant_key, _ = METRICS[self.metric]
        if self.tenant is None:
            return float(summary[key])
        row = summary["by_tenant"].get(self.tenant)
        if row is None:
            raise TargetError(f"target {self.text}: no programme {self.tenant!r} in the demand")
        return float(row[tenant_key])

    def met(self, summary: dict) -> bool:
        value = self.value(summary)
        return value <= self.limit if self.op == "<=" else value >= self.limit

    def shortfall(self, summary: dict) -> float:
        """How far from the target, as a fraction of it (0 when met)."""
        value = self.value(summary)
        scale = max(abs(self.limit), 1e-9)
        gap = value - self.limit if self.op == "<=" else self.limit - value
        # Waits measured against a small limit can be huge; log-compress the gap so one
        # badly missed target does not drown out the others.
        return 0.0 if gap <= 0 else min(gap / scale, 1e3) ** 0.5

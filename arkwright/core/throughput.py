"""How fast each job type runs on each GPU model, relative to the reference GPU (H100).

The core asks only `speed(job_type, gpu_model)`. Trace durations are reference-GPU run
times, so a job with speed 2.0 on a pool finishes in half its trace duration there.
"""

from __future__ import annotations

from collections.abc import Mapping

from arkwright.core.gpus import REFERENCE_GPU, gpu_spec


def spec_ratio(gpu_model: str, reference: str = REFERENCE_GPU) -> float:
    """Fallback speed: the geometric mean of compute and memory-bandwidth ratios."""
    spec, ref = gpu_spec(gpu_model), gpu_spec(reference)
    compute = spec.bf16_dense_tflops / ref.bf16_dense_tflops
    bandwidth = spec.memory_bandwidth_tbs / ref.memory_bandwidth_tbs
    return (compute * bandwidth) ** 0.5


class ThroughputTable:
    def __init__(
        self,
        speeds: Mapping[str, Mapping[str, float]] | None = None,
        *,
        uniform: bool = False,
        reference: str = REFERENCE_GPU,
    ) -> None:
        self.reference = reference
        self.uniform = uniform
        self.speeds: dict[str, dict[str, float]] = {
            job_type: dict(row) for job_type, row in (speeds or {}).items()
        }
        self._cache: dict[tuple[str, str], float] = {}
        self.fallbacks: set[tuple[str, str]] = set()

    @classmethod
    def flat(cls) -> ThroughputTable:
        """Every job runs at reference speed on every GPU (no heterogeneity)."""
        return cls(uniform=True)

    def speed(self, job_type: str, gpu_model: str) -> float:
        if self.uniform:
            return 1.0
        key = (job_type, gpu_model)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        row = self.speeds.get(job_type) or self.speeds.get("default") or {}
        value = row.get(gpu_model)
        if value is None:
            value = spec_ratio(gpu_model, self.reference)
            self.fallbacks.add(key)
        self._cache[key] = value
        return value

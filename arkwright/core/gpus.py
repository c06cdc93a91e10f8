"""The GPU models Arkwright knows, with the public specifications it reasons from.

Figures are vendor datasheet values for the SXM/superchip parts (dense BF16 tensor
throughput, HBM capacity and bandwidth, board power). They drive the default throughput
table (compute- versus memory-bound work) and the energy model. H100 is the reference GPU:
trace durations are run times on one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GpuSpec:
    model: str
    vendor: str
    architecture: str
    memory_gb: float
    bf16_dense_tflops: float
    memory_bandwidth_tbs: float
    tdp_watts: float


REFERENCE_GPU = "H100"

GPU_CATALOGUE: dict[str, GpuSpec] = {
    spec.model: spec
    for spec in (
        GpuSpec("A100", "NVIDIA", "Ampere", 80, 312, 2.04, 400),
        GpuSpec("H100", "NVIDIA", "Hopper", 80, 989, 3.35, 700),
        GpuSpec("H200", "NVIDIA", "Hopper", 141, 989, 4.8, 700),
        # Isambard-AI's GH200 modules: 96 GB HBM3; power is the whole superchip's budget.
        GpuSpec("GH200", "NVIDIA", "Hopper", 96, 989, 4.0, 900),
        GpuSpec("B200", "NVIDIA", "Blackwell", 180, 2250, 8.0, 1000),
        GpuSpec("B300", "NVIDIA", "Blackwell Ultra", 288, 2250, 8.0, 1100),
        GpuSpec("GB200", "NVIDIA", "Blackwell", 186, 2500, 8.0, 1200),
        GpuSpec("GB300", "NVIDIA", "Blackwell Ultra", 288, 2500, 8.0, 1400),
        GpuSpec("L40S", "NVIDIA", "Ada Lovelace", 48, 362, 0.864, 350),
        GpuSpec("MI300X", "AMD", "CDNA 3", 192, 1307, 5.3, 750),
    )
}


class UnknownGpuModel(ValueError):
    def __init__(self, model: str) -> None:
        known = ", ".join(sorted(GPU_CATALOGUE))
        super().__init__(f"unknown GPU model {model!r} (known: {known})")
        self.model = model


def gpu_spec(model: str) -> GpuSpec:
    try:
        return GPU_CATALOGUE[model]
    except KeyError:
        raise UnknownGpuModel(model) from None

"""Recent utilisation per site, sampled by the control loop for the dashboard.

Kept in memory (a fixed ring of samples): it answers "how busy were we over the last
hours" cheaply and is rebuilt within minutes after a restart; long-term accounting lives
in the usage table, not here.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Sample:
    at: float
    busy_by_site: dict[str, int]


class UtilisationHistory:
    def __init__(self, every_s: float = 60.0, keep: int = 720) -> None:
        self.every_s = every_s
        self.samples: deque[Sample] = deque(maxlen=keep)

    def due(self, now: float) -> bool:
        return not self.samples or now - self.samples[-1].at >= self.every_s

    def add(self, now: float, busy_by_site: dict[str, int]) -> None:
        self.samples.append(Sample(now, dict(busy_by_site)))

    def series(self, gpus_by_site: dict[str, int]) -> dict:
        """{'times': [epoch...], 'sites': {site: [fraction busy...]}} oldest first."""
        samples = list(self.samples)
        return {
            "times": [s.at for s in samples],
            "sites": {
                site: [s.busy_by_site.get(site, 0) / max(total, 1) for s in samples]
                for site, total in gpus_by_site.items()
            },
        }

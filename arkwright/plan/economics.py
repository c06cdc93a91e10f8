"""From compute delivered to gross value added, calibrated to the published UK figures.

The model and every assumption live in `arkwright/data/economics.toml`; a different model
file can be passed instead (`--economics FILE`).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path


class EconomicsError(ValueError):
    pass


@dataclass(frozen=True)
class EconomicModel:
    scale_gbp: float  # A
    beta: float
    baseline_h100_hours: float
    programme_weights: dict[str, float]
    calibration: dict[str, float]

    def gva_per_year(self, extra_h100_hours: float) -> float:
        """Added GVA a year from `extra_h100_hours` more compute than the baseline."""
        ratio = (self.baseline_h100_hours + extra_h100_hours) / self.baseline_h100_hours
        return self.scale_gbp * (ratio**self.beta - 1.0)

    def split(
        self, total_gbp: float, hours_by_key: dict[str, float], weighted: bool
    ) -> dict[str, float]:
        """Share `total_gbp` by compute delivered, weighted by programme if asked."""
        weights = {
            key: hours * (self.weight(key) if weighted else 1.0)
            for key, hours in hours_by_key.items()
        }
        total = sum(weights.values())
        return {key: total_gbp * w / total for key, w in weights.items()} if total else {}

    def weight(self, programme: str) -> float:
        return self.programme_weights.get(programme, self.programme_weights.get("default", 1.0))

    def check_calibration(self) -> dict[str, float]:
        """The two published figures as the model reproduces them, with relative errors."""
        cal = self.calibration
        modest = self.gva_per_year(cal["modest_increase_fraction"] * self.baseline_h100_hours)
        doubling = self.gva_per_year(self.baseline_h100_hours)
        return {
            "modest_gva_gbp": modest,
            "modest_error": modest / cal["modest_increase_gva_gbp"] - 1.0,
            "doubling_gva_gbp": doubling,
            "doubling_error": doubling / cal["doubling_gva_gbp_per_year"] - 1.0,
        }


def _fit_beta(modest_fraction: float, ratio: float) -> float:
    """beta such that (2^beta - 1) / ((1+f)^beta - 1) = ratio (bisection; monotone)."""

    def f(beta: float) -> float:
        return (2.0**beta - 1.0) / ((1.0 + modest_fraction) ** beta - 1.0) - ratio

    low, high = 0.05, 10.0
    if f(low) * f(high) > 0:
        raise EconomicsError(
            f"no beta reproduces a ratio of {ratio:.2f} between the doubling and the modest "
            f"increase of {modest_fraction:.0%}; check the calibration figures"
        )
    for _ in range(200):
        mid = (low + high) / 2
        if f(low) * f(mid) <= 0:
            high = mid
        else:
            low = mid
    return (low + high) / 2


def load_model(path: str | Path | None = None) -> EconomicModel:
    source = str(path) if path else "default economics model"
    try:
        text = (
            Path(path).read_text()
            if path
            else (resources.files("arkwright.data") / "economics.toml").read_text()
        )
        raw = tomllib.loads(text)
        cal = {k: float(v) for k, v in raw["calibration"].items()}
        baseline = float(raw["baseline"]["h100_hours_per_year"])
        weights = {k: float(v) for k, v in raw.get("programme_weights", {}).items()}
        fraction = cal["modest_increase_fraction"]
        modest, doubling = cal["modest_increase_gva_gbp"], cal["doubling_gva_gbp_per_year"]
    except OSError as exc:
        raise EconomicsError(f"{source}: cannot read ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise EconomicsError(f"{source}: {type(exc).__name__}: {exc}") from None
    if not (0 < fraction < 1 and modest > 0 and doubling > modest and baseline > 0):
        raise EconomicsError(
            f"{source}: calibration needs 0 < modest fraction < 1 and "
            "0 < modest GVA < doubling GVA, and a positive baseline"
        )
    beta = _fit_beta(fraction, doubling / modest)
    scale = doubling / (2.0**beta - 1.0)
    model = EconomicModel(scale, beta, baseline, weights, cal)
    errors = model.check_calibration()
    tolerance = cal.get("tolerance", 0.01)
    if max(abs(errors["modest_error"]), abs(errors["doubling_error"])) > tolerance:
        raise EconomicsError(
            f"{source}: the fit misses the calibration by more than {tolerance:.0%}: {errors}"
        )
    if not math.isfinite(beta):
        raise EconomicsError(f"{source}: calibration gives no finite beta")
    return model

"""Hourly grid carbon intensity per site from a CSV, replacing the fleet file's values.

Format: a header `hour,<site>,<site>,...` then one row per hour from the start of the
simulation clock (hour 0, 1, 2, ...), values in gCO2/kWh. A site not named keeps its
fleet-file intensity. The series repeats if the simulation runs past its end.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from pathlib import Path

from arkwright.core.fleet import Fleet


class CarbonFileError(ValueError):
    pass


def read_carbon_csv(path: str | Path, fleet: Fleet) -> dict[str, tuple[float, ...]]:
    source = str(path)
    try:
        handle = open(path, newline="")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise CarbonFileError(f"{source}: cannot open ({exc.strerror})") from None
    with handle:
        rows = csv.reader(handle)
        header = next(rows, None)
        if not header or header[0].strip().lower() != "hour":
            raise CarbonFileError(f"{source}: line 1: the first column must be 'hour'")
        sites = [name.strip() for name in header[1:]]
        unknown = [s for s in sites if s not in fleet.site_by_name]
        if unknown:
            raise CarbonFileError(
                f"{source}: line 1: unknown site {unknown[0]!r} "
                f"(sites: {', '.join(fleet.site_by_name)})"
            )
        series: dict[str, list[float]] = {s: [] for s in sites}
        for line, row in enumerate(rows, start=2):
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise CarbonFileError(
                    f"{source}: line {line}: {len(row)} values, header has {len(header)}"
                )
            hour = row[0].strip()
            expected = line - 2
            if hour != str(expected):
                raise CarbonFileError(
                    f"{source}: line {line}: hour {hour!r}, expected {expected} (rows must run "
                    "0, 1, 2, ... with no gaps)"
                )
            for site, cell in zip(sites, row[1:], strict=True):
                try:
                    value = float(cell)
                except ValueError:
                    value = math.nan
                if not math.isfinite(value) or value < 0:
                    raise CarbonFileError(
                        f"{source}: line {line}: {site}: intensity must be a number >= 0, "
                        f"got {cell!r}"
                    )
                series[site].append(value)
    if not sites or not series[sites[0]]:
        raise CarbonFileError(f"{source}: no hourly rows")
    return {site: tuple(values) for site, values in series.items()}


def with_carbon_series(fleet: Fleet, series: dict[str, tuple[float, ...]]) -> Fleet:
    """A copy of the fleet whose named sites use the given hourly series."""
    sites = {
        site.name: dataclasses.replace(site, carbon_hourly=series[site.name])
        if site.name in series
        else site
        for site in fleet.sites
    }
    pools = tuple(dataclasses.replace(pool, site=sites[pool.site.name]) for pool in fleet.pools)
    return dataclasses.replace(fleet, sites=tuple(sites.values()), pools=pools)

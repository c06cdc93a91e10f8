"""README's sbatch compatibility table is the option table, option for option."""

from __future__ import annotations

from pathlib import Path

from arkwright.sbatch.compat_table import in_readme, markdown_table
from arkwright.sbatch.options import TABLE

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_table_is_the_generated_one() -> None:
    assert in_readme(README.read_text()) == markdown_table(), (
        "README's sbatch table is stale: run python -m arkwright.sbatch.compat_table README.md"
    )


def test_every_option_has_a_row() -> None:
    rows = [line for line in markdown_table().splitlines() if line.startswith("| `--")]
    assert [row.split("`")[1] for row in rows] == [f"--{option.name}" for option in TABLE]

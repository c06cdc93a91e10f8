"""The README's sbatch compatibility table, made from the option table so the two never
drift (tests/sbatch/test_readme_table.py compares them).

    python -m arkwright.sbatch.compat_table          # print it
    python -m arkwright.sbatch.compat_table README.md  # rewrite it in place
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from arkwright.sbatch.options import TABLE, Handling

START = "<!-- sbatch-options:start (made by python -m arkwright.sbatch.compat_table) -->"
END = "<!-- sbatch-options:end -->"


def markdown_table() -> str:
    counts = Counter(option.handling for option in TABLE)
    summary = ", ".join(f"{counts[h]} {h.value}" for h in Handling)
    lines = [
        f"{len(TABLE)} options: {summary}.",
        "",
        "| option | short | argument | Arkwright | what happens |",
        "|---|---|---|---|---|",
    ]
    for option in TABLE:
        short = f"`-{option.short}`" if option.short else ""
        note = option.note.replace("|", "\\|")
        lines.append(
            f"| `--{option.name}` | {short} | {option.arg.value} | "
            f"{option.handling.value} | {note} |"
        )
    return "\n".join(lines)


def in_readme(text: str) -> str:
    """The table as it stands between the markers in `text`."""
    _, start, rest = text.partition(START)
    table, end, _ = rest.partition(END)
    if not start or not end:
        raise ValueError("the sbatch table's markers are missing")
    return table.strip("\n")


def rewrite(text: str) -> str:
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{markdown_table()}\n{END}{tail}"


if __name__ == "__main__":  # pragma: no cover - a maintainer's tool
    if len(sys.argv) > 1:
        path = Path(sys.argv[1])
        path.write_text(rewrite(path.read_text()))
    else:
        print(markdown_table())

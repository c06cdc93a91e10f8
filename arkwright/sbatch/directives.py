"""A batch script's #SBATCH directives, read as sbatch reads them (src/sbatch/opt.c,
_opt_batch_script and get_argument; src/sbatch/sbatch.c, _get_script_buffer).

- The script itself must pass sbatch's checks: not empty, not only whitespace, `#!` as
  its first two bytes, no NUL, no DOS line break (\\r\\n). The messages are sbatch's.
- A directive is a line that begins, in column 0, with `#SBATCH` (or the old `#SLURM`,
  warned). An indented `#SBATCH` is an ordinary comment.
- Reading stops at the first line whose first non-blank character is not `#`; blank
  lines and comments in between are skipped.
- Each directive line is split into words like a shell would for simple cases: quotes
  group, a backslash escapes, an unquoted `#` ends the line (after a space, a tab or
  nothing at all).
- `hetjob` (or the deprecated `packjob`) at the start of a directive starts the next
  heterogeneous component; the rest of that line belongs to the new component.
- All the words of one component form one argument list: an option on one line may take
  its value from the next line's first word, exactly as in sbatch.
"""

from __future__ import annotations

from arkwright.sbatch.errors import SbatchError
from arkwright.sbatch.getopt import Word

_MAGIC = "#SBATCH"
_OLD_MAGIC = "#SLURM"


def check_script(text: str) -> None:
    """sbatch's refusals of a script as a whole, in its order."""
    if not text:
        raise SbatchError("Batch script is empty!")
    if not text.strip():
        raise SbatchError("Batch script contains only whitespace!")
    if not text.startswith("#!"):
        raise SbatchError(
            "This does not look like a batch script.  The first line must start with #! "
            "followed by the path to an interpreter.  For instance: #!/bin/sh"
        )
    if "\x00" in text:
        raise SbatchError(
            "The Slurm controller does not allow scripts that contain a NULL character '\\0'."
        )
    if "\r\n" in text:
        line = text[: text.index("\r\n")].count("\n") + 1
        raise SbatchError(
            "Batch script contains DOS line breaks (\\r\\n) instead of expected UNIX line "
            f"breaks (\\n) (first on line {line}; convert it with dos2unix)"
        )


def read_directives(text: str) -> tuple[list[list[Word]], list[str]]:
    """The words of each heterogeneous component (at least one), and warnings."""
    components: list[list[Word]] = [[]]
    warnings: list[str] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if line.startswith(_MAGIC):
            rest = line[len(_MAGIC) :]
        elif line.startswith(_OLD_MAGIC):
            rest = line[len(_OLD_MAGIC) :]
            warnings.append(
                f"line {number}: change #SLURM to #SBATCH (sbatch reads it, with an error)"
            )
        else:
            stripped = line.lstrip()
            if stripped and not stripped.startswith("#"):
                break  # the first command: sbatch reads no further
            continue
        rest = rest.lstrip()
        separator = _separator(rest)
        if separator:
            components.append([])
            rest = rest[len(separator) :]
        where = f"line {number}"
        components[-1].extend(Word(word, where) for word in split_directive(rest, where))
    return components, warnings


def _separator(rest: str) -> str | None:
    for word in ("hetjob", "packjob"):
        head = rest[: len(word)]
        if head.lower() == word and (len(rest) == len(word) or rest[len(word)].isspace()):
            return head
    return None


def split_directive(rest: str, where: str) -> list[str]:
    """Words as sbatch's get_argument finds them. As there, a word that comes out empty
    (a bare `""`, or a `#` starting a word) ends the line, and an error shows the line
    from the end of the last word read."""
    words: list[str] = []
    i = 0
    while True:
        line = rest[i:]
        while i < len(rest) and rest[i].isspace():
            i += 1
        if i >= len(rest):
            return words
        if rest[i] == ":":
            raise SbatchError(f"Unexpected `:` in [{line}]", where)
        word: list[str] = []
        quote = ""
        while i < len(rest) and (quote or not rest[i].isspace()):
            char = rest[i]
            if char == "\\":  # escapes the next character, inside quotes too
                if i + 1 < len(rest):
                    word.append(rest[i + 1])
                i += 2
                continue
            if quote:
                if char == quote:
                    quote = ""
                else:
                    word.append(char)
            elif char in "\"'":
                quote = char
            elif char == "#":
                break  # the rest of the line is a comment
            else:
                word.append(char)
            i += 1
        if quote:
            raise SbatchError(f"Unmatched `{quote}` in [{line}]", where)
        if not word:
            return words
        words.append("".join(word))
        if i < len(rest) and rest[i] == "#":
            return words

"""sbatch's option syntax: glibc getopt_long over the option table, in "+" mode.

What getopt_long does and sbatch relies on: options are read left to right until the
first non-option ("+": no permutation) or "--"; a long option may be abbreviated to any
unique prefix (an exact name always wins; a prefix shared by options that differ is
ambiguous); a required argument is the rest after "=" or the next word, whatever it looks
like; an optional argument only ever follows "="; short options bundle (`-Hk`), and a
short option's argument may be attached (`-N2`) or the next word. The error texts are
glibc's, so a user sees what sbatch would have said, with the line it came from.
"""

from __future__ import annotations

from dataclasses import dataclass

from arkwright.sbatch.errors import SbatchError
from arkwright.sbatch.options import BY_NAME, BY_SHORT, TABLE, ArgKind, Option


@dataclass(frozen=True)
class Word:
    text: str
    where: str  # "line 7", "command line", "SBATCH_PARTITION"


@dataclass(frozen=True)
class Given:
    """One option as given: its value (None for a flag or an absent optional argument)."""

    option: Option
    value: str | None
    where: str


@dataclass(frozen=True)
class Parsed:
    given: list[Given]
    rest: int  # the index of the first word left over (a non-option), or len(words)
    dashes: bool  # a "--" ended the options (it is consumed)


def parse_words(words: list[Word]) -> Parsed:
    """The options at the front of `words`."""
    given: list[Given] = []
    i = 0
    while i < len(words):
        word = words[i]
        text = word.text
        if text == "--":
            return Parsed(given, i + 1, True)
        if not text.startswith("-") or text == "-":
            return Parsed(given, i, False)
        i = _long(words, i, given) if text.startswith("--") else _short(words, i, given)
    return Parsed(given, i, False)


def _long(words: list[Word], i: int, given: list[Given]) -> int:
    word = words[i]
    typed, eq, value = word.text[2:].partition("=")
    option = _lookup(typed, word)
    if eq:
        if option.arg is ArgKind.NONE:
            raise SbatchError(f"option '--{option.name}' doesn't allow an argument", word.where)
        given.append(Given(option, value, word.where))
        return i + 1
    if option.arg is ArgKind.REQUIRED:
        if i + 1 >= len(words):
            raise SbatchError(f"option '--{option.name}' requires an argument", word.where)
        given.append(Given(option, words[i + 1].text, word.where))
        return i + 2
    given.append(Given(option, None, word.where))
    return i + 1


def _lookup(typed: str, word: Word) -> Option:
    exact = BY_NAME.get(typed)
    if exact is not None:
        return exact
    matches = [option for option in TABLE if typed and option.name.startswith(typed)]
    # glibc: prefixes of several entries that are the same option are not ambiguous.
    kinds = {(option.arg, option.short or option.name) for option in matches}
    if len(kinds) > 1:
        possibilities = " ".join(f"'--{option.name}'" for option in matches)
        raise SbatchError(
            f"option '{word.text}' is ambiguous; possibilities: {possibilities}", word.where
        )
    if not matches:
        raise SbatchError(f"unrecognized option '{word.text}'", word.where)
    return matches[0]


def _short(words: list[Word], i: int, given: list[Given]) -> int:
    word = words[i]
    text = word.text
    position = 1
    while position < len(text):
        letter = text[position]
        option = BY_SHORT.get(letter)
        if option is None:
            raise SbatchError(f"invalid option -- '{letter}'", word.where)
        rest = text[position + 1 :]
        if option.arg is ArgKind.NONE:
            given.append(Given(option, None, word.where))
            position += 1
            continue
        if rest:
            given.append(Given(option, rest, word.where))
            return i + 1
        if option.arg is ArgKind.OPTIONAL:
            given.append(Given(option, None, word.where))
            return i + 1
        if i + 1 >= len(words):
            raise SbatchError(f"option requires an argument -- '{letter}'", word.where)
        given.append(Given(option, words[i + 1].text, word.where))
        return i + 2
    return i + 1

"""Columnar access to the plain shape of CSV that traces nearly always have, with NumPy.

A million rows through `csv.reader` make sixteen million string objects; here the file
stays one byte buffer and each column is a pair of arrays (where each cell starts, how
long it is). Only files of the plain shape are taken: ASCII, no quote characters, no NUL,
lines ending in LF or CRLF, every row as wide as the header. In that shape a CSV cell is
exactly the bytes between two delimiters, so nothing here can disagree with `csv.reader`.
Anything else gives None, and the caller reads the file row by row instead.

The helpers answer in bulk and say which cells they could not decide (`Numbers.exact`,
`Codes`' verification), so a caller can send just those cells to the row reader's rules.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_PAD = 64  # zero bytes around the body, so fixed-width reads never leave the buffer
_MAX_DIGITS = 15  # below 2**53: M / 10**k is then one correctly rounded IEEE division
_POW10 = 10.0 ** np.arange(17)
_ONES = np.uint64(0x0101010101010101)
_HIGH = np.uint64(0x8080808080808080)
_LF = np.uint64(10)
_ASCII_ZEROS = np.uint64(0x3030303030303030)
# Byte masks keeping the first n bytes of a little-endian word, n = 0..8.
_KEEP = np.array([(1 << (8 * n)) - 1 for n in range(9)], dtype=np.uint64)
_MIX = np.uint64(0x9E3779B97F4A7C15)


@dataclass(frozen=True)
class Numbers:
    """A numeric column decided in bulk: `values` holds every cell where `exact` is true."""

    values: np.ndarray  # float64 (or int64 for whole numbers)
    exact: np.ndarray  # bool: a plain decimal whose value is certain; others need a look


@dataclass(frozen=True)
class Codes:
    """Equal cells share a code; `texts[code]` is that cell's text exactly as in the file."""

    codes: np.ndarray  # int64, one per row
    texts: list[str]
    sample: np.ndarray  # a row holding each code's cells


class Table:
    """The body of a plain-shaped CSV as column boundaries over one byte buffer."""

    def __init__(self, header: list[str], body: bytes, delims: np.ndarray) -> None:
        self.header = header
        self.width = len(header)
        self.rows = len(delims) // self.width
        self._raw = body  # padded: _PAD zero bytes each side
        self.buf = np.frombuffer(body, dtype=np.uint8)  # read-only view of the padded body
        # Every 8 bytes starting at each offset, as one little-endian word (unaligned).
        self._words = np.ndarray((len(body) - 7,), dtype="<u8", buffer=body, strides=(1,))
        self._delims = delims
        self._bounds: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    # ------------------------------------------------------------------ boundaries

    def bounds(self, column: int) -> tuple[np.ndarray, np.ndarray]:
        """(start offset, length) of every cell of one column."""
        found = self._bounds.get(column)
        if found is None:
            found = self._bounds[column] = self._find_bounds(column)
        return found

    def _find_bounds(self, column: int) -> tuple[np.ndarray, np.ndarray]:
        w = self.width
        ends = self._delims[column::w]
        if column:
            starts = self._delims[column - 1 :: w] + 1
        else:
            starts = np.empty(self.rows, dtype=np.int64)
            starts[0] = _PAD
            starts[1:] = self._delims[w - 1 : -1 : w] + 1
        lengths = ends - starts
        if column == w - 1:
            # CRLF: the CR belongs to the line end, not to the last cell.
            lengths = lengths - (self.buf[ends - 1] == 13)
        return starts, lengths

    def cell(self, start: int, length: int) -> str:
        return self._raw[start : start + length].decode("ascii")

    # ------------------------------------------------------------------ numbers

    def numbers(self, column: int, *, integer: bool = False) -> Numbers:
        """Plain decimals (digits and at most one point) parsed exactly; the rest flagged.

        For at most 15 digits, M / 10**k in binary64 is one correctly rounded division,
        which is also what Python's float() returns for the same text, so bulk and
        per-cell parsing agree. Each cell is read right-aligned as one or two 8-byte
        words and classified and converted eight bytes at a time (SWAR), since NumPy
        is slow on rows of a few bytes but fast on long runs of words.
        """
        starts, lengths = self.bounds(column)
        ends = starts + lengths
        count = 1 if lengths.max(initial=0) <= 8 else 2
        width = 8 * count
        words = []
        for w in range(count):
            # Bytes left of the cell (other cells, delimiters) become '0': they add nothing.
            lead = _KEEP[np.maximum(np.minimum(width - lengths - 8 * w, 8), 0)]
            word = self._words[ends - width + 8 * w]
            words.append((word & ~lead) | (_ASCII_ZEROS & lead))
        other = np.zeros(self.rows, dtype=np.uint64)
        points = np.zeros(self.rows, dtype=np.int64)
        point_at = np.zeros(self.rows, dtype=np.int64)  # byte index, where there is one
        whole = np.zeros(self.rows, dtype=np.uint64)
        for w, word in enumerate(words):
            digit = _bytes_at_least(word, 0x30) & ~_bytes_at_least(word, 0x3A)
            point = _bytes_at_least(word, 0x2E) & ~_bytes_at_least(word, 0x2F)
            other |= _HIGH & ~(digit | point)
            points += ((point >> np.uint64(7)) * _ONES >> np.uint64(56)).astype(np.int64)
            point_at = np.where(point != 0, 8 * w + _high_byte(point), point_at)
            # A point reads as the digit 0 (0x2E + 2) and is taken out below.
            digits = word + (point >> np.uint64(6)) - _ASCII_ZEROS
            whole = whole * np.uint64(10**8) + _eight_digits(digits)
        digits = lengths - points
        exact = (other == 0) & (lengths > 0) & (lengths <= width) & (digits >= 1)
        exact &= (points == 0) if integer else (points <= 1) & (digits <= _MAX_DIGITS)
        whole = whole.astype(np.int64)
        if integer:
            return Numbers(whole, exact)
        has_point = points == 1
        frac = np.where(has_point, width - 1 - point_at, 0)
        scale = 10**frac
        mantissa = np.where(has_point, (whole // (scale * 10)) * scale + whole % scale, whole)
        return Numbers(mantissa / _POW10[frac], exact)

    # ------------------------------------------------------------------ text

    def _words_of(self, starts: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
        """Each cell's bytes as masked words: texts are equal iff lengths and words are."""
        words = []
        last = len(self._words) - 1
        for w in range(int(-(-lengths.max(initial=0) // 8))):
            keep = _KEEP[np.maximum(np.minimum(lengths - 8 * w, 8), 0)]
            words.append(self._words[np.minimum(starts + 8 * w, last)] & keep)
        return words

    def codes_of_rows(self, columns: list[int], extra: np.ndarray) -> Codes:
        """One code per distinct combination of several columns' cells and a small int.

        Neighbouring columns are read as one span of bytes (commas included, which
        still tell the cells apart, as no cell holds a quote). Keys are hashed, then
        every row is compared with its code's sample row, so a collision is caught.
        `texts` holds, per code, the columns' cells joined by NUL (never in the file).
        """
        spans = []
        for run in _runs(sorted(set(columns))):
            starts, _ = self.bounds(run[0])
            last_starts, last_lengths = self.bounds(run[-1])
            spans.append((run, starts, last_starts + last_lengths - starts))
        checked = [extra]
        key = extra.astype(np.uint64)
        for _, starts, lengths in spans:
            words = self._words_of(starts, lengths)
            key = key * _MIX + lengths.astype(np.uint64)
            for word in words:
                key = key * _MIX + word
            checked.extend(words)
            checked.append(lengths)
        distinct = np.sort(key)
        distinct = distinct[np.concatenate(([True], distinct[1:] != distinct[:-1]))]
        codes = np.searchsorted(distinct, key)
        sample = np.empty(len(distinct), dtype=np.int64)
        sample[codes] = np.arange(self.rows)
        if not all(np.array_equal(values, values[sample][codes]) for values in checked):
            raise Collision
        texts = []
        for row in sample.tolist():
            cells: dict[int, str] = {}
            for run, starts, lengths in spans:
                text = self.cell(int(starts[row]), int(lengths[row]))
                cells.update(zip(run, text.split(","), strict=True))
            texts.append("\0".join(cells[c] for c in columns))
        return Codes(codes, texts, sample)

    def strings(self, column: int) -> list[str]:
        """Every cell of a column as a str, exactly as in the file."""
        starts, lengths = self.bounds(column)
        # Each cell as whole words, a line feed just after it, zero bytes after that;
        # the zeros are squeezed out and the text split at the line feeds.
        count = int(lengths.max(initial=0)) // 8 + 1
        grid = np.empty((self.rows, count), dtype=np.uint64)
        last = len(self._words) - 1
        for w in range(count):
            left = lengths - 8 * w
            word = (
                self._words[np.minimum(starts + 8 * w, last)]
                & _KEEP[np.maximum(np.minimum(left, 8), 0)]
            )
            shift = (8 * np.maximum(np.minimum(left, 7), 0)).astype(np.uint64)
            feed = np.where((left >= 0) & (left < 8), _LF << shift, np.uint64(0))
            grid[:, w] = word | feed
        joined = grid.tobytes().replace(b"\0", b"").decode("ascii")
        return joined.split("\n")[:-1]

    def duplicate_rows(self, column: int) -> bool:
        """True if two cells of the column may be equal (a false alarm is possible)."""
        starts, lengths = self.bounds(column)
        key = lengths.astype(np.uint64)
        for word in self._words_of(starts, lengths):
            key = key * _MIX + word
        ordered = np.sort(key)
        return bool((ordered[1:] == ordered[:-1]).any())


def _eight_digits(words: np.ndarray) -> np.ndarray:
    """Eight digit bytes (values 0-9, first digit in the lowest byte) to their number."""
    words = words * np.uint64(10) + (words >> np.uint64(8))  # pairs: 10a + b
    mask = np.uint64(0x000000FF000000FF)
    pairs_lo = (words & mask) * np.uint64(100 + (1_000_000 << 32))
    pairs_hi = ((words >> np.uint64(16)) & mask) * np.uint64(1 + (10_000 << 32))
    return (pairs_lo + pairs_hi) >> np.uint64(32)


def _runs(columns: list[int]) -> list[list[int]]:
    """Sorted column indices cut into runs of neighbours: [1, 2, 3, 7] -> [[1, 2, 3], [7]]."""
    runs: list[list[int]] = []
    for c in columns:
        if runs and runs[-1][-1] == c - 1:
            runs[-1].append(c)
        else:
            runs.append([c])
    return runs


def _bytes_at_least(words: np.ndarray, low: int) -> np.ndarray:
    """0x80 in each byte of ASCII words that is >= low (no byte can carry into the next)."""
    return (words + np.uint64((0x80 - low) * 0x0101010101010101)) & _HIGH


def _high_byte(flags: np.ndarray) -> np.ndarray:
    """Index of the highest 0x80-flagged byte (for words with at most one flag)."""
    # A single flag is a power of two, so log2 of it is exact.
    found = np.log2(np.where(flags != 0, flags, 1).astype(np.float64))
    return (found // 8).astype(np.int64)


class Collision(Exception):
    """Two different texts hashed alike: the caller takes the row reader's road."""


def tokenize(raw: bytes) -> Table | None:
    """The file as a Table, or None when it is not of the plain shape (see module doc)."""
    if not raw.isascii() or b'"' in raw or b"\0" in raw:
        return None
    head_end = raw.find(b"\n")
    if head_end <= 0:
        return None
    header_line = raw[:head_end].removesuffix(b"\r")
    if b"\r" in header_line:
        return None
    # Line ends at the end of the file are not rows (the row reader skips blank rows).
    end = len(raw)
    while end > head_end and raw[end - 1] in b"\r\n":
        end -= 1
    if end <= head_end + 1:
        return None
    view = memoryview(raw)[head_end + 1 : end]
    padded = b"".join((bytes(_PAD), view, b",", bytes(_PAD)))
    body_end = _PAD + len(view)
    header = header_line.decode("ascii").split(",")
    width = len(header)
    delims, line_feeds = _delimiters(padded)
    rows = len(delims) // width
    if len(delims) != rows * width or line_feeds != rows - 1:
        return None
    buf = np.frombuffer(padded, dtype=np.uint8)
    row_ends = delims[width - 1 :: width]
    if not (buf[row_ends[:-1]] == 10).all():
        return None  # some row is wider or narrower than the header (or a blank line)
    if padded.find(b"\r", _PAD, body_end) >= 0:
        # Only CRLF line ends: a lone CR is a line break to csv.reader.
        crlf = int((buf[row_ends[:-1] - 1] == 13).sum())
        if crlf != rows - 1 or padded.count(b"\r", _PAD, body_end) != crlf:
            return None
    return Table(header, padded, delims)


def _delimiters(padded: bytes) -> tuple[np.ndarray, int]:
    """Offsets of every comma and line feed, in order, and how many were line feeds.

    In chunks, so the scratch masks stay in cache and are not faulted in afresh.
    """
    buf = np.frombuffer(padded, dtype=np.uint8)
    chunk = 1 << 20
    found = []
    line_feeds = 0
    hits_scratch = np.empty(chunk, dtype=bool)
    lf_scratch = np.empty(chunk, dtype=bool)
    for at in range(0, len(buf), chunk):
        part = buf[at : at + chunk]
        hits, lf = hits_scratch[: len(part)], lf_scratch[: len(part)]
        np.equal(part, 44, out=hits)
        np.equal(part, 10, out=lf)
        line_feeds += int(np.count_nonzero(lf))
        hits |= lf
        found.append(np.flatnonzero(hits) + at)
    return np.concatenate(found), line_feeds

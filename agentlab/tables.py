"""Tables in a passage's text, read cell by cell.

A PDF's table comes out of text extraction as lines: a header ("Source D Long L Short S Tiny T
Total"), rows of a label and values ("Test (20%) 7,428 908 616 312 1,836"), a caption ("Table
8: Multi-LexSum train-dev-test splits."). Sentence splitting runs the rows together into one
long "sentence" in which every number sits near every label, so a claim that moves a value to
another row or column ("the dev split has 312 tiny summaries": 312 is the dev split's *short*
count) reads as said. Here each row is read apart, and where the header lines up with its
values, each value with its column: the cell "Test (20%), Tiny T is 312" is what verification
reads, with the table's caption beside it.

Lining up a header is done without layout, by counting: the header's columns (a word and its
initial, "Long L", is one column; "D → L" is one) must be as many as the row's values, or one
more (the labels' own column, "Model"). A line above the header that repeats its first word
("D → L D → S D → T", "BART, Multitask: ... BART, Single-task: ...") spans the columns in equal
groups; any other line between the caption and the header ("Model Full Grobid Subset") is read
with every cell. A table whose header does not line up is read row by row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from litcore.text import STOP_WORDS, stem, tokens

_NUMBER = re.compile(r"\d")
MARKERS = re.compile(r"\[\s*\d+(?:\s*[,;\u2013-]\s*\d+)*\s*\]")  # "[12]", "[3, 4]"
_LIST_MARK = re.compile(r"\(\s*\d{1,2}\s*\)|\b\d{1,2}\)")
CAPTION = re.compile(r"^\s*Table\s+[A-Z]?\d+\s*[:.]", re.MULTILINE)
# a value: a number with its marks ("28,557", "81.1M", "35.6%", "-1.60", "94."), or a
# missing cell's dash
_VALUE = re.compile(r"^[-+\u2212]?(?:\d[\d,]*\.?\d*|\.\d+)[%kKMBx]?$|^[-\u2013\u2014]$")
_PAREN_VALUE = re.compile(r"^\(\s*[-+]?[\d.,]+\s*%?\s*\)$")
# metric abbreviations of table headers, read as the words a claim would use
_METRICS = {"p": "precision", "r": "recall", "f1": "F1", "acc": "accuracy",
            "em": "exact match"}


def is_row(line: str) -> bool:
    """A table's row, not a line of wrapped prose: labels and values, at most one function
    word ("Number of papers 81.1M"; prose has them all along: "For a typical summary, this
    process takes an expert 1-4 hours. And it needs to"), no sentence's end, no list mark
    taken for a value."""
    words = line.split()
    valued = _LIST_MARK.sub(" ", MARKERS.sub(" ", line))  # "(2) Predictors" holds no value
    return (bool(_NUMBER.search(valued)) and re.match(r"\s*[A-Za-z(]", line) is not None
            and 2 <= len(words) <= 30 and ". " not in line
            and not line.rstrip().endswith((":", ";", ","))
            and not (line.rstrip().endswith(".") and not _VALUE.match(words[-1]))
            and sum(w.lower().strip(",;:()") in STOP_WORDS for w in words) <= 1
            # labels and values, mostly: "Papers w/ DOIs 52.2M (64.3%)", not "learning rate
            # decay with 10% warm-up, batch size"
            and sum(w.strip("(),;:")[:1].isupper() or bool(_NUMBER.search(w))
                    for w in words) >= 0.4 * len(words)
            # a value among them: "P R F1 P R F1" is a header
            and any(_VALUE.match(w) and w not in "-\u2013\u2014" for w in words))


def split_row(line: str) -> tuple[str, list[str]]:
    """A row's label and its values: the values are the row's last run of numbers ("Over 50
    pages 2.27M": the label holds a number of its own), a parenthesised share stays with the
    value before it ("28.9M (35.6%)") and one before every value is the label's ("Train
    (70%) 28,557")."""
    words = line.split()
    k = len(words)
    while k > 1 and (_VALUE.match(words[k - 1]) or _PAREN_VALUE.match(words[k - 1])):
        k -= 1
    while k < len(words) and _PAREN_VALUE.match(words[k]):
        k += 1  # the label's share
    values: list[str] = []
    for w in words[k:]:
        if values and _PAREN_VALUE.match(w):
            values[-1] += " " + w
        else:
            values.append(w)
    return " ".join(words[:k]), values


def _columns(line: str) -> list[str]:
    """A header line's columns: a word and its letter are one ("Long L", "Source D"; "P R F1"
    are three), an arrow joins
    its sides ("D → L"), a parenthesis goes with the word before it ("Total (%)")."""
    out: list[str] = []
    joining = False
    for w in line.split():
        if out and (joining or w.startswith("(")
                    or (len(w) == 1 and w.isupper() and len(out[-1]) > 2)):
            out[-1] += " " + w
        elif w in ("\u2192", "->") and out:
            out[-1] += " " + w
            joining = True
            continue
        else:
            out.append(w)
        joining = False
    return out


def _label_line(line: str) -> bool:
    """A row's label begun on a line of its own: a few words, no value ("Macro Avg" over
    "(Full S2-VL) 40.6 38.3 ...")."""
    return 0 < len(line.split()) <= 3 and not _NUMBER.search(line) \
        and not line.rstrip().endswith(".")


def _groups(line: str) -> list[str]:
    """A spanning line's groups, split where its first word comes again ("D → L D → S
    D → T"); one group when it does not."""
    words = line.split()
    starts = [i for i, w in enumerate(words) if w == words[0]] if words else []
    bounds = starts + [len(words)]
    return [" ".join(words[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)]


def _gloss(column: str) -> str:
    """A metric's abbreviation with its word: "P" is read as "P (precision)"."""
    word = _METRICS.get(column.lower())
    return f"{column} ({word})" if word and word != column else column


@dataclass
class Cell:
    """One value of a table, where it stands: its row's label, its column's header (empty
    when the header does not line up), the table's caption and the row as printed."""

    label: str
    column: str
    value: str
    caption: str
    row: str
    # a header line over every column ("Model Full Grobid Subset"), or the whole header
    # over a row whose values do not line up with it
    context: str = ""

    @property
    def text(self) -> str:
        """How the cell is read and quoted: "Test (20%), Tiny T is 312 (Table 8: ...)" (what
        a value counts is read before "is", as in "a recall of 81.2")."""
        caption = f" ({self.caption.rstrip('.')})" if self.caption else ""
        if not self.value:  # words among the values: the row as printed
            return f"{self.context}: {self.row}{caption}" if self.context else \
                f"{self.row}{caption}"
        where = ", ".join(x for x in (self.context, self.label, self.column) if x)
        return f"{where} is {self.value}{caption}"


def tables(text: str) -> list[list[Cell]]:
    """The tables of ``text`` (two rows or more), each as its cells: one per value where the
    header lines up, else one per row (the row's values together, no column)."""
    lines = [" ".join(ln.split()) for ln in text.splitlines()]
    out: list[list[Cell]] = []
    i = 0
    while i < len(lines):
        if not is_row(lines[i]):
            i += 1
            continue
        j = i
        spans: dict[int, list[str]] = {}  # a spanning line met inside the table, from row j
        joined: dict[int, str] = {}  # a row's label begun on the line before ("Macro Avg")
        while j < len(lines) and (is_row(lines[j]) or (
                j + 1 < len(lines) and is_row(lines[j + 1]) and not CAPTION.match(lines[j])
                and (len(_groups(lines[j])) > 1 or _label_line(lines[j])))):
            if not is_row(lines[j]):
                if _label_line(lines[j]):
                    joined[j + 1] = lines[j]
                else:
                    spans[j] = _groups(lines[j])
            j += 1
        rows = [k for k in range(i, j) if k not in spans and k + 1 not in joined]
        if len(rows) >= 2:
            out.append(_read([f"{joined[k]} {ln}" if k in joined else ln
                              for k, ln in enumerate(lines)], i, j, rows, spans))
        i = j
    return out


def _caption_at(lines: list[str], k: int) -> tuple[str, int]:
    """The caption that starts at line ``k`` (up to three lines, to its first full stop) and
    the index of its last line."""
    end = k
    while end < min(k + 2, len(lines) - 1) and not lines[end].rstrip().endswith(".") \
            and not is_row(lines[end + 1]):
        end += 1
    return " ".join(lines[k:end + 1]), end


def _read(lines: list[str], start: int, end: int, rows: list[int],
          spans: dict[int, list[str]]) -> list[Cell]:
    above = [k for k in range(max(0, start - 6), start) if CAPTION.match(lines[k])]
    captions: list[str] = []
    top = max(-1, start - 4)  # the header lines start after the caption above, if any
    if above:
        text, last = _caption_at(lines, above[-1])
        captions.append(text)
        top = last
    if end < len(lines) and CAPTION.match(lines[end]):
        captions.append(_caption_at(lines, end)[0])
    heads = [lines[k] for k in range(top + 1, start) if lines[k]]
    # the header over rows that do not line up, read with each of them: the short lines
    # right above the first row, however many a narrow header wraps into ("Corpus Papers
    # w/", "body text", "Citation", "contexts", ...)
    k = start - 1
    while k >= 0 and k > start - 13 and lines[k] and not CAPTION.match(lines[k]) \
            and len(lines[k].split()) <= 6 and not lines[k].rstrip().endswith("."):
        k -= 1
    header = " ".join(lines[k + 1:start])
    # a caption above and one below: one is another table's ("Table 1: Types of Predictors"
    # over "Model Full Grobid Subset" whose own caption follows); the table's own shares
    # its words ("Multi-LexSum train-dev-test splits" over rows Train, Test, Dev)
    def said(texts: list[str]) -> set[str]:
        return {stem(w) for t in texts for w in tokens(t) if w.isalpha() and w not in STOP_WORDS}

    words = said(heads + [lines[k] for k in rows])
    shared = [len(words & said([c])) for c in captions]
    caption = " ".join(c for c, n in zip(captions, shared, strict=True) if n == max(shared))
    cells: list[Cell] = []
    for k in rows:
        group = spans[max(s for s in spans if s < k)] if any(s < k for s in spans) else []
        label, values = split_row(lines[k])
        if not values:  # "S2ORC (PDF-parse) 8.1M full text yes": a row, not of cells
            cells.append(Cell(lines[k], "", "", caption, lines[k], header))
            continue
        columns, context, grouped = _line_up(heads, len(values), group)
        if columns is None:
            cells.append(Cell(label, "", " ".join(values), caption, lines[k], header))
            continue
        for c, v in enumerate(values):
            column = _gloss(columns[c])
            if grouped:
                column = f"{grouped[c]} {column}"
            cells.append(Cell(label, column, v, caption, lines[k], context))
    return cells


def _line_up(heads: list[str], n: int, group: list[str]
             ) -> tuple[list[str] | None, str, list[str]]:
    """The columns of ``n`` values from the header lines: the nearest line with as many
    columns (or one more, the labels' own: "Model"); a line that repeats its first word in
    groups dividing them spans them ("D → L D → S D → T"); another short line over the header
    is read with every cell ("Model Full Grobid Subset"). None when no line lines up."""
    if n < 2:
        return None, "", []
    at = next((i for i in range(len(heads) - 1, -1, -1)
               if len(_columns(heads[i])) in (n, n + 1)), None)
    if at is None:
        return None, "", []
    columns = _columns(heads[at])
    if len(columns) == n + 1:
        columns = columns[1:]  # the labels' own column ("Model", "Models")
    spanning = group
    context = ""
    for i in range(len(heads) - 1, -1, -1):
        g = _groups(heads[i])
        if i == at or heads[i].rstrip().endswith("."):
            continue
        if not spanning and len(g) > 1 and n % len(g) == 0:
            spanning = g
        elif not context and i < at and len(heads[i].split()) <= 8:
            context = heads[i]
    grouped = ([spanning[c * len(spanning) // n] for c in range(n)]
               if spanning and n % len(spanning) == 0 else [])
    return columns, context, grouped

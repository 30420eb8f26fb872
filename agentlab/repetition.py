"""Stopping an answer that repeats itself, on the stream.

A small model at temperature 0 can fall into a loop: the same sentence again and again until
``max_tokens`` ("The Transformer uses 2 heads. The Transformer uses 2 heads. ..."), or a run of
the same few words ("LSTM-RNN-LSTM-RNN-..."). Every loop costs the person minutes and adds
nothing. :class:`RepetitionGuard` reads the answer as it streams and says when it loops; the
answer keeps everything up to where the loop began.
"""

from __future__ import annotations

import re

_SENTENCE = re.compile(r"[^.!?\n]+[.!?\n]")
_WORD = re.compile(r"\w+")


class RepetitionGuard:
    """Feed it the streamed text; :meth:`feed` turns True once the text loops:

    - a sentence (of four words or more) written for the second time, or
    - the last ``span`` words repeating a stretch of ``period`` words at least ``times``
      times over (a loop with no sentence end: "RNN-LSTM-RNN-LSTM").
    """

    def __init__(self, span: int = 24, times: int = 4) -> None:
        self.text = ""
        self.span, self.times = span, times
        self.cut: int | None = None  # where the loop began: the answer is text[:cut]
        self._seen: set[str] = set()
        self._done = 0  # characters of complete sentences already read

    def feed(self, piece: str) -> bool:
        if self.cut is not None:
            return True
        self.text += piece
        for m in _SENTENCE.finditer(self.text, self._done):
            words = _WORD.findall(m.group(0).lower())
            key = " ".join(words)
            if len(words) >= 4 and key in self._seen:
                self.cut = m.start()
                return True
            self._seen.add(key)
            self._done = m.end()
        start = self._looping_words()
        if start is not None:
            self.cut = start
            return True
        return False

    def _looping_words(self) -> int | None:
        """Where a run of repeated words began, when the text ends in one."""
        words = list(_WORD.finditer(self.text.lower()))
        if len(words) < self.span:
            return None
        tail = [w.group(0) for w in words[-self.span:]]
        for period in range(1, self.span // self.times + 1):
            if all(tail[i] == tail[i - period] for i in range(period, len(tail))):
                # walk back to where the repetition started
                first = len(words) - self.span
                while first - 1 >= 0 and words[first - 1].group(0) == \
                        words[first - 1 + period].group(0):
                    first -= 1
                return words[first + period].start()  # keep one round of it
        return None

    @property
    def answer(self) -> str:
        """The text without the loop."""
        return (self.text if self.cut is None else self.text[:self.cut]).rstrip()


def unlooped(text: str) -> str | None:
    """``text`` as the stream would have kept it: cut where it began to loop, or None when it
    does not loop (for a reply that was not streamed, such as a suite's, so that it reads as
    ``ask`` would have shown it)."""
    guard = RepetitionGuard()
    for piece in re.findall(r"\S+\s*|\s+", text):
        if guard.feed(piece):
            return guard.answer
    return None

"""GRPO reward functions: plain Python callables, as TRL's ``GRPOTrainer`` takes them.

Each gets the batch's ``completions`` (conversational: a list with the assistant message) and
the dataset's other columns as keyword arguments: ``oracle`` (the number of the source that
answers, None for a refusal example), ``n_sources``, ``answerable``, ``question``,
``reference`` (the example's verified answer, without markers) and ``sources`` (the numbered
passages of the prompt). Each returns one float per completion.

Two rewards are checked against the library rather than the answer's form: ``keyfact`` (the
answer states what the reference answer states: its numbers and the terms the question does
not already hold) and ``supported`` (every claim verified against the passages the model was
given, by the same verification `ask` shows; a contradicted claim costs more than an
unsupported one). No judge model is asked.

Add your own with ``rewards: ["my_rewards.py:brevity"]`` in a run config (a file path or an
importable module, then the function's name); it gets the same arguments.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from agentlab.attribution import split_sentences
from agentlab.citations import NOT_IN_LIBRARY
from litcore.errors import UserError

Reward = Callable[..., list[float]]
_MARKER = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
MAX_WORDS = 80


def _text(completion: Any) -> str:
    if isinstance(completion, list):
        return str(completion[-1]["content"]) if completion else ""
    return str(completion)


def _cited(text: str) -> list[int]:
    return [int(x) for m in _MARKER.finditer(text) for x in re.split(r"\s*[,;]\s*", m.group(1))]


def _column(kwargs: dict[str, Any], name: str, n: int) -> list[Any]:
    values = kwargs.get(name)
    return list(values) if values is not None else [None] * n


def citations(completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """1 when every marker points at a given source and the oracle is cited; 0.5 when the
    oracle is cited beside other sources; 0 when nothing is cited; -1 for a marker that points
    at no source. Refusal examples score 0 (the refusal reward judges them)."""
    n = len(completions)
    oracles, counts = _column(kwargs, "oracle", n), _column(kwargs, "n_sources", n)
    out = []
    for c, oracle, count in zip(completions, oracles, counts, strict=True):
        cited = _cited(_text(c))
        if oracle is None:
            out.append(0.0)
        elif any(not 1 <= x <= int(count or 0) for x in cited):
            out.append(-1.0)
        elif not cited or oracle not in cited:
            out.append(0.0)
        else:
            out.append(1.0 if set(cited) == {oracle} else 0.5)
    return out


def refusal(completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """1 when the reply refuses (NOT_IN_LIBRARY) exactly when the sources do not answer,
    -1 when it refuses an answerable question or answers an unanswerable one."""
    n = len(completions)
    answerable = _column(kwargs, "answerable", n)
    return [1.0 if (NOT_IN_LIBRARY in _text(c)) == (not a) else -1.0
            for c, a in zip(completions, answerable, strict=True)]


def format_(completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """The share of sentences that end in a marker; for a refusal, whether the reply is the
    sentinel alone."""
    n = len(completions)
    answerable = _column(kwargs, "answerable", n)
    out = []
    for c, a in zip(completions, answerable, strict=True):
        text = _text(c).strip()
        if not a:
            out.append(1.0 if text == NOT_IN_LIBRARY else 0.0)
            continue
        sentences = split_sentences(text)
        marked = sum(1 for s in sentences if re.search(r"\]\W*$", s.strip()))
        out.append(marked / len(sentences) if sentences else 0.0)
    return out


def length(completions: Sequence[Any], **_: Any) -> list[float]:
    """0 up to MAX_WORDS words, then falling to -1 at twice that."""
    return [-min(1.0, max(0, len(_text(c).split()) - MAX_WORDS) / MAX_WORDS) for c in completions]


def plain_answer(text: str) -> str:
    """An answer without its ``[n]`` markers."""
    return re.sub(r"\s+([.,;:])", r"\1", _MARKER.sub("", text)).strip()


def key_terms(reference: str, question: str = "") -> list[str]:
    """What a right answer must say: the reference's numbers, then its content terms that
    the question does not already hold (at most six)."""
    from litcore.text import FILLER_WORDS, GENERIC_WORDS, STOP_WORDS

    plain = _MARKER.sub("", reference)
    numbers = re.findall(r"\b\d+(?:[.,]\d+)?", plain)
    asked = set(_words(question))
    common = STOP_WORDS | FILLER_WORDS | GENERIC_WORDS
    words = [w for w in dict.fromkeys(_words(plain))
             if w not in asked and w not in common and not w[0].isdigit() and len(w) > 2]
    return list(dict.fromkeys(numbers)) + words[:max(0, 6 - len(numbers))]


def _words(text: str) -> list[str]:
    from litcore.text import stem, terms

    return [stem(w.lower()) for w in terms(text)]


def keyfact(completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """For an answerable example, the share of the reference answer's key terms (its numbers
    count twice) the reply states; 0 for a refusal example (the refusal reward judges it)."""
    n = len(completions)
    refs, questions = _column(kwargs, "reference", n), _column(kwargs, "question", n)
    answerable = _column(kwargs, "answerable", n)
    out = []
    for c, ref, q, a in zip(completions, refs, questions, answerable, strict=True):
        keys = key_terms(str(ref or ""), str(q or "")) if a else []
        if not keys:
            out.append(0.0)
            continue
        text = _text(c)
        said = set(_words(text)) | set(re.findall(r"\b\d+(?:[.,]\d+)?", text))
        weights = [2.0 if k[0].isdigit() else 1.0 for k in keys]
        out.append(sum(w for k, w in zip(keys, weights, strict=True) if k in said) / sum(weights))
    return out


_EMBEDDER: list[Any] = []


def _embed(texts: list[str]) -> Any:
    if not _EMBEDDER:
        from retrievers.index.embeddings import get_embedder

        _EMBEDDER.append(get_embedder())
    return _EMBEDDER[0].embed_few(texts)


def supported(completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """For an answerable example, the share of the reply's claims the given passages support
    (litlab's verification, as `ask` shows it), less twice the share they contradict; 0 for
    a refusal example or a reply that claims nothing."""
    from agentlab.attribution import attribute
    from agentlab.citations import Source

    n = len(completions)
    given, answerable = _column(kwargs, "sources", n), _column(kwargs, "answerable", n)
    out = []
    for c, srcs, a in zip(completions, given, answerable, strict=True):
        text = _text(c)
        if not a or not srcs or NOT_IN_LIBRARY in text:
            out.append(0.0)
            continue
        sources = [Source(n=int(d["n"]), chunk_id=0, paper="", title=str(d.get("title", "")),
                          section=str(d.get("section", "")), pages="", text=str(d["text"]))
                   for d in srcs]
        claims = [s for s in attribute(text, sources, _embed) if s.claim]
        if not claims:
            out.append(0.0)
            continue
        good = sum(1 for s in claims if s.supported) / len(claims)
        bad = sum(1 for s in claims if s.contradicted) / len(claims)
        out.append(good - 2 * bad)
    return out


format_.__name__ = "format"  # how TRL names it in the metrics

SHIPPED: dict[str, Reward] = {"citations": citations, "refusal": refusal, "format": format_,
                              "length": length, "keyfact": keyfact, "supported": supported}


def load(spec: str, base: Path | None = None) -> Reward:
    """A reward by name: a shipped one, ``module:function`` or ``path/to/file.py:function``."""
    if spec in SHIPPED:
        return SHIPPED[spec]
    where, _, attr = spec.rpartition(":")
    if not where or not attr:
        raise UserError(f"unknown reward '{spec}'",
                        f"shipped: {', '.join(SHIPPED)}; or name yours as file.py:function")
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_absolute() and base is not None:
            path = base / path
        if not path.is_file():
            raise UserError(f"reward file {path} does not exist")
        spec_ = importlib.util.spec_from_file_location(f"litlab_reward_{path.stem}", path)
        if spec_ is None or spec_.loader is None:
            raise UserError(f"cannot load rewards from {path}")
        module = importlib.util.module_from_spec(spec_)
        spec_.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as e:
            raise UserError(f"cannot import reward module '{where}': {e}") from e
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise UserError(f"{where} has no function '{attr}'")
    return fn

"""A retriever fitted to the person's own library: ``litlab finetune retriever``.

The text embedder (the packaged all-MiniLM-L6-v2 by default) is fine-tuned on pairs the
library makes itself, no model and no download needed:

- *cloze* pairs (the Inverse Cloze Task, Lee et al. 2019): one sentence of a passage is the
  query, the passage without that sentence (with its paper's title and section, as the library
  embeds it) is what it should find;
- *question* pairs: the fine-tuning data builder's extractive question about a passage's
  rarest terms, with that passage;
- with ``--teacher``: questions a model writes about each passage (the InPars / GPL recipe).

Each pair carries a hard negative: the passage of another chunk that the library's search
ranks highest for the query. Training is sentence-transformers' trainer with
MultipleNegativesRankingLoss (the other passages of a batch and the hard negatives as
negatives).

Nothing in the library changes while a candidate is made. It is kept under
``HOME/retrievers/NAME/`` (``model/``, its own vector store ``indexes/`` of every chunk, and
``retriever.json``), and the gate runs the library's hybrid search twice over held-out
questions — once with the library's vectors, once with the candidate's: questions made from
papers the training never saw, and any hand-written question sets given with ``--eval``. A
candidate is *adopted* only when it finds significantly more (exact McNemar test, p < 0.05)
and loses on no hand-written set: its store replaces the library's and ``embed_model`` points
at it. ``use --force`` adopts one by hand; ``reset`` goes back to the packaged model.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from litcore.errors import UserError

Progress = Callable[[str], None]
MIN_WORDS = 30  # a chunk shorter than this gives no passage worth finding
P_VALUE = 0.05


def _quiet(_: str) -> None:
    pass


def retrievers_dir(home: Path) -> Path:
    return Path(home) / "retrievers"


@dataclass
class Pair:
    """A query, the passage it should find, and a passage the search wrongly prefers."""

    query: str
    positive: str
    negative: str | None
    chunk_id: int
    paper: str
    kind: str  # cloze | question | teacher


@dataclass
class Question:
    """A held-out question: a hit is one of ``chunks`` in the top k, or (hand-written sets) a
    passage of ``paper`` holding one of ``expect``."""

    q: str
    chunks: list[int] = field(default_factory=list)
    paper: str = ""
    expect: list[str] = field(default_factory=list)
    set: str = "held-out papers"


# -- pairs from the library ----------------------------------------------------------------
def _sentences(text: str) -> list[str]:
    from agentlab.attribution import split_sentences

    out = []
    for s in split_sentences(text):
        words = s.split()
        digits = sum(any(c.isdigit() for c in w) for w in words)
        if 6 <= len(words) <= 45 and digits <= 0.3 * len(words) and s.count("|") <= 1:
            out.append(s.strip())
    return out


def make_pairs(library: Any, papers: set[str], *, limit: int, seed: int = 0,
               teacher: Any = None, progress: Progress = _quiet,
               stop: threading.Event | None = None) -> list[Pair]:
    """Up to ``limit`` pairs from the chunks of ``papers`` (keys), papers taken in turn."""
    from finetune.grounded import Rarity, extractive, quotable

    cat, vectors = library.catalog, library.vectors
    rng = random.Random(seed)
    per_paper: list[tuple[Any, list[Any]]] = []
    texts: list[str] = []
    for p in cat.papers(state="indexed"):
        every = cat.chunks_of(int(p.id or 0))
        texts += [c.text for c in every]
        if p.key not in papers:
            continue
        chunks = [c for c in every if len(c.text.split()) >= MIN_WORDS and quotable(c.section)]
        random.Random(f"{seed}:{p.key}").shuffle(chunks)
        if chunks:
            per_paper.append((p, chunks))
    rarity = Rarity(texts)
    pairs: list[Pair] = []
    while per_paper and len(pairs) < limit:
        for entry in list(per_paper):
            if len(pairs) >= limit or (stop is not None and stop.is_set()):
                return pairs
            paper, chunks = entry
            chunk = chunks.pop()
            if not chunks:
                per_paper.remove(entry)
            sentences = _sentences(chunk.text.replace("\n", " "))
            made: list[tuple[str, str, str]] = []  # (query, passage text, kind)
            if len(sentences) >= 2:
                s = rng.choice(sentences)
                rest = " ".join(x for x in sentences if x != s)
                made.append((s, rest, "cloze"))
            if teacher is not None:
                try:
                    q, _ = teacher.write(chunk.text, paper.title)
                except Exception:  # noqa: BLE001 - a teacher's bad reply costs one pair
                    q = ""
                if q:
                    made.append((q, chunk.text, "teacher"))
            else:
                qa = extractive(chunk.text, rarity)
                if qa:
                    made.append((qa[0], chunk.text, "question"))
            for query, text, kind in made:
                positive = vectors.passage(_with_text(chunk, text), paper)
                pairs.append(Pair(query, positive, _hard_negative(library, query, chunk),
                                  int(chunk.id or 0), paper.key, kind))
            progress(f"made {len(pairs)} pairs")
    return pairs[:limit]


def _with_text(chunk: Any, text: str) -> Any:
    from dataclasses import replace

    return replace(chunk, text=text)


def _hard_negative(library: Any, query: str, chunk: Any) -> str | None:
    """The passage of another chunk the library's search ranks highest for ``query``."""
    for hit in library.search(query, 5):
        if hit.chunk.id != chunk.id and query[:60] not in hit.chunk.text:
            return str(library.vectors.passage(hit.chunk, hit.paper))
    return None


def held_out_questions(pairs: Sequence[Pair]) -> list[Question]:
    return [Question(p.query, [p.chunk_id], p.paper) for p in pairs]


def load_questions(path: Path) -> list[Question]:
    """Hand-written questions: a JSON list (or JSON lines) of ``{"q", "paper", "expect"}``, the
    form of the dev question sets (a hit is a passage of ``paper`` — file name, key or arXiv id
    — that holds one of the ``expect`` phrases)."""
    try:
        raw = path.read_text()
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror}", "give a readable JSON file") \
            from None
    try:
        rows = json.loads(raw) if raw.lstrip().startswith("[") else \
            [json.loads(line) for line in raw.splitlines() if line.strip()]
    except ValueError as e:
        raise UserError(f"{path} is not JSON: {e}",
                        'give a list of {"q": ..., "paper": ..., "expect": [...]}') from None
    out = []
    for i, r in enumerate(rows, start=1):
        if not isinstance(r, dict) or not str(r.get("q") or "").strip() \
                or not isinstance(r.get("expect"), list) or not r.get("paper"):
            raise UserError(f"{path}: question {i} needs 'q', 'paper' and a list 'expect'",
                            'each row: {"q": ..., "paper": ..., "expect": ["phrase", ...]}')
        out.append(Question(str(r["q"]), paper=str(r["paper"]),
                            expect=[str(e) for e in r["expect"]], set=path.name))
    if not out:
        raise UserError(f"{path} holds no questions", "add some, or leave --eval out")
    return out


def _norm(text: str) -> str:
    text = re.sub(r"(\w)-\s+(\w)", r"\1\2", text)
    return re.sub(r"\s+", " ", text).strip().lower()


def _paper_matches(paper: Any, name: str) -> bool:
    key = str(paper.key or "")
    names = {key, key.removeprefix("file:"), Path(key.removeprefix("file:")).name,
             str(paper.arxiv_id or ""), str(paper.title or "")}
    return name in names


def hit(question: Question, hits: Sequence[Any], k: int) -> bool:
    for h in hits[:k]:
        if question.chunks:
            if int(h.chunk.id or 0) in question.chunks:
                return True
        elif _paper_matches(h.paper, question.paper) and \
                any(_norm(e) in _norm(h.chunk.text) for e in question.expect):
            return True
    return False


# -- training --------------------------------------------------------------------------------
@dataclass
class TrainConfig:
    base: str = "all-MiniLM-L6-v2"
    pairs: int = 400
    epochs: int = 1
    batch: int = 16
    lr: float = 2e-5
    seed: int = 0
    hard_negatives: bool = True


def train(pairs: Sequence[Pair], out: Path, cfg: TrainConfig,
          on_step: Callable[[int, int, float | None], None] | None = None,
          stop: threading.Event | None = None) -> list[tuple[int, float]]:
    """Fine-tune ``cfg.base`` on ``pairs`` into ``out``; the logged losses."""
    from datasets import Dataset as HFDataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.losses import MultipleNegativesRankingLoss
    from sentence_transformers.training_args import BatchSamplers
    from transformers import PrinterCallback, ProgressCallback, TrainerCallback
    from transformers.utils import logging as hf_logging

    from retrievers.index.st_embedder import model_path

    hf_logging.disable_progress_bar()
    model = SentenceTransformer(model_path(cfg.base), device="cpu")
    use_negatives = cfg.hard_negatives and all(p.negative for p in pairs)
    columns: dict[str, list[str]] = {"anchor": [p.query for p in pairs],
                                     "positive": [p.positive for p in pairs]}
    if use_negatives:
        columns["negative"] = [str(p.negative) for p in pairs]
    data = HFDataset.from_dict(columns)
    losses: list[tuple[int, float]] = []

    class Report(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any,
                   logs: dict[str, Any] | None = None, **kw: Any) -> None:
            if logs and "loss" in logs:
                losses.append((int(state.global_step), float(logs["loss"])))

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if on_step is not None:
                on_step(int(state.global_step), int(state.max_steps),
                        losses[-1][1] if losses else None)
            if stop is not None and stop.is_set():
                control.should_training_stop = True

    args = SentenceTransformerTrainingArguments(
        output_dir=str(out / "trainer"), num_train_epochs=cfg.epochs,
        per_device_train_batch_size=cfg.batch, learning_rate=cfg.lr, warmup_steps=0.1,
        seed=cfg.seed, logging_steps=1, save_strategy="no", report_to=[],
        batch_sampler=BatchSamplers.NO_DUPLICATES, use_cpu=True, disable_tqdm=True)
    class Trainer(SentenceTransformerTrainer):
        def add_model_card_callback(self, *_: Any, **__: Any) -> None:
            pass  # no model card: it samples "widget examples" with a bar of its own

    trainer = Trainer(model=model, args=args, train_dataset=data,
                      loss=MultipleNegativesRankingLoss(model), callbacks=[Report()])
    for quiet in (PrinterCallback, ProgressCallback):  # progress is the caller's to show
        trainer.remove_callback(quiet)
    trainer.train()
    model.save(str(out / "model"), create_model_card=False)
    from retrievers.index.onnx_embedder import BESIDE

    (out / BESIDE).mkdir(exist_ok=True)  # its fast export is kept with it, not machine-wide
    shutil.rmtree(out / "trainer", ignore_errors=True)
    return losses


# -- a candidate: made, gated, adopted --------------------------------------------------------
@dataclass
class Candidate:
    """A fine-tuned embedder beside the library, with its own vectors of every chunk."""

    name: str
    folder: Path

    @property
    def model(self) -> Path:
        return self.folder / "model"

    @property
    def info_path(self) -> Path:
        return self.folder / "retriever.json"

    def info(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.info_path.read_text()))
        except (OSError, ValueError):
            return {}

    def write_info(self, **more: Any) -> None:
        data = {**self.info(), **more}
        tmp = self.info_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, self.info_path)

    def vectors(self, library: Any, embedder: Any = None) -> Any:
        """The candidate's chunk vectors (FAISS under ``folder/indexes``)."""
        from retrievers.index.vectors import ChunkVectors

        return ChunkVectors(self.folder, "faiss", None, str(self.model),
                            library.vectors.chunk_context, library.vectors.cache_dir,
                            embedder=embedder)


def candidates(home: Path) -> list[Candidate]:
    root = retrievers_dir(home)
    if not root.is_dir():
        return []
    return [Candidate(p.name, p) for p in sorted(root.iterdir())
            if (p / "retriever.json").is_file()]


def get_candidate(home: Path, name: str) -> Candidate:
    c = Candidate(name, retrievers_dir(home) / name)
    if not c.info_path.is_file():
        have = ", ".join(x.name for x in candidates(home)) or "none yet"
        raise UserError(f"no fine-tuned retriever '{name}' (have: {have})",
                        "make one with `litlab finetune retriever train`")
    return c


def _split(keys: list[str], seed: int) -> tuple[set[str], set[str]]:
    """(train papers, held-out papers): a quarter of the papers held out by hash, at least
    one when there are two or more."""
    from finetune.grounded import eval_papers

    held = eval_papers(keys, 0.25, seed)
    return set(keys) - held, held


def passes(gained: int, lost: int, worse_on: Sequence[str]) -> bool:
    """A candidate passes when it finds significantly more than the library's embedder
    (exact McNemar test on the questions only one of them found) and is worse on no
    hand-written set."""
    from evals.compare import mcnemar

    return gained > lost and mcnemar(lost, gained) < P_VALUE and not worse_on


def gate(library: Any, cand_vectors: Any, sets: dict[str, list[Question]], k: int = 5,
         progress: Progress = _quiet) -> dict[str, Any]:
    """The library's search with its own vectors and with the candidate's, question by
    question: recall@k of each per set, the exact McNemar p-value over all, and the verdict."""
    from evals.compare import mcnemar
    from retrievers.search.hybrid import hybrid_search

    report: dict[str, Any] = {"k": k, "sets": {}}
    gained = lost = 0
    worse_handwritten = []
    done, total = 0, sum(len(v) for v in sets.values())
    for name, questions in sets.items():
        before = after = 0
        misses: list[dict[str, Any]] = []
        for q in questions:
            a = hit(q, hybrid_search(library.catalog, library.vectors, q.q, k), k)
            b = hit(q, hybrid_search(library.catalog, cand_vectors, q.q, k), k)
            before, after = before + a, after + b
            gained, lost = gained + (b and not a), lost + (a and not b)
            if a != b:
                misses.append({"q": q.q, "base": a, "tuned": b})
            done += 1
            progress(f"gate: {done}/{total} questions")
        n = len(questions) or 1
        report["sets"][name] = {"questions": len(questions), "base": round(before / n, 3),
                                "tuned": round(after / n, 3), "changed": misses}
        if name != "held-out papers" and after < before:
            worse_handwritten.append(name)
    p = mcnemar(lost, gained) if gained + lost else 1.0
    report.update(gained=gained, lost=lost, p_value=round(p, 4),
                  worse_on=worse_handwritten, passed=passes(gained, lost, worse_handwritten))
    return report


def make(library: Any, name: str, cfg: TrainConfig, *, eval_files: Sequence[Path] = (),
         teacher: Any = None, progress: Progress = _quiet,
         on_step: Callable[[int, int, float | None], None] | None = None,
         stop: threading.Event | None = None) -> Candidate:
    """Pairs, training, the candidate's vectors and the gate: a candidate with its verdict
    (the library itself is untouched)."""
    from retrievers.index.indexing import IndexReport, sync_vectors
    from retrievers.index.st_embedder import SentenceTransformerEmbedder

    handwritten = {p.name: load_questions(p) for p in eval_files}  # bad files fail first
    keys = [p.key for p in library.catalog.papers(state="indexed")]
    if not keys:
        raise UserError("the library is empty", "index papers first: `litlab index files ...`")
    cand = Candidate(name, retrievers_dir(library.home) / name)
    if cand.info_path.is_file():
        raise UserError(f"a fine-tuned retriever '{name}' exists already",
                        "give another --name, or remove it with "
                        f"`litlab finetune retriever remove {name}`")
    train_keys, held = _split(keys, cfg.seed)
    if not train_keys:
        train_keys, held = set(keys), set()
    started = time.time()
    progress("making pairs from the library")
    pairs = make_pairs(library, train_keys, limit=cfg.pairs, seed=cfg.seed, teacher=teacher,
                       progress=progress, stop=stop)
    tests = make_pairs(library, held, limit=max(20, cfg.pairs // 4), seed=cfg.seed + 1,
                       progress=progress, stop=stop) if held else []
    if stop is not None and stop.is_set():
        raise UserError("stopped before training began; nothing was kept",
                        "run the command again")
    if len(pairs) < cfg.batch:
        raise UserError(f"the library gives only {len(pairs)} training pairs "
                        f"(at least {cfg.batch} needed)",
                        "index more papers, or lower --batch")
    cand.folder.mkdir(parents=True, exist_ok=True)
    cand.write_info(name=name, base=cfg.base, config=asdict(cfg), state="training",
                    started=started, chunk_context=library.vectors.chunk_context, train_papers=sorted(train_keys),
                    held_out_papers=sorted(held), pairs=len(pairs),
                    kinds={k: sum(p.kind == k for p in pairs)
                           for k in ("cloze", "question", "teacher")})
    t0 = time.time()
    losses = train(pairs, cand.folder, cfg, on_step, stop)
    if stop is not None and stop.is_set():
        shutil.rmtree(cand.folder, ignore_errors=True)
        raise UserError("stopped during training; nothing was kept", "run the command again")
    train_s = time.time() - t0
    cand.write_info(state="embedding", losses=losses, train_seconds=round(train_s, 1))
    embedder = SentenceTransformerEmbedder(str(cand.model))
    vectors = cand.vectors(library, embedder)
    t0 = time.time()
    sync_vectors(library.catalog, vectors, IndexReport(), progress)
    embed_s = time.time() - t0
    chunks = len(library.catalog.all_chunk_ids())
    sets = ({"held-out papers": held_out_questions(tests)} if tests else {}) | handwritten
    result = gate(library, vectors, sets, progress=progress) if sets else \
        {"passed": False, "sets": {}, "p_value": 1.0, "gained": 0, "lost": 0, "worse_on": [],
         "note": "no held-out paper and no --eval set: nothing to gate on"}
    cand.write_info(state="gated", gate=result, embed_seconds=round(embed_s, 1),
                    chunks=chunks, seconds=round(time.time() - started, 1),
                    made_at=time.strftime("%Y-%m-%d %H:%M:%S"))
    return cand


def adopt(library: Any, cand: Candidate, *, force: bool = False,
          progress: Progress = _quiet) -> Any:
    """Make ``cand`` the library's embedder: its vectors replace the store's, then
    ``embed_model`` (in the home's litlab.toml) points at it, and the figure captions are
    embedded again. Interrupted at any point, the library either stays as it was or says
    which command finishes it. Returns the library as it now is."""
    from agentlab.settings import save_setting
    from retrievers.library import Library

    info = cand.info()
    if info.get("state") != "gated":
        raise UserError(f"'{cand.name}' was not finished (state: {info.get('state')})",
                        f"remove it (`litlab finetune retriever remove {cand.name}`) and "
                        "train again")
    if not info.get("gate", {}).get("passed") and not force:
        raise UserError(f"'{cand.name}' did not pass its gate",
                        f"see `litlab finetune retriever show {cand.name}`; --force adopts it "
                        "anyway")
    if library.vectors.chunk_context != info.get("chunk_context"):
        raise UserError("the library's chunk_context changed since this retriever was made",
                        "train a new one")
    model = str(cand.model)
    with library.locked():
        if library.store_kind == "faiss":
            dest = library.home / "indexes"
            dest.mkdir(parents=True, exist_ok=True)
            # the record first: a crash after it leaves a store that says it needs a rebuild,
            # never old vectors searched with the new model
            for f in ("faiss.json", "faiss.index"):
                shutil.copy2(cand.folder / "indexes" / f, dest / f"{f}.new")
                os.replace(dest / f"{f}.new", dest / f)
        else:  # a Chroma store is emptied here and embedded again below
            library.vectors.drop()
        save_setting(library.home, "embed_model", model)
    now = Library(library.home, store=library.store_kind, chroma_url=library.chroma_url,
                  embed_model=model, chunk_context=library.vectors.chunk_context,
                  clip_model=library.clip_model, cache_dir=library.vectors.cache_dir)
    progress("embedding what the new model has not (figure captions)")
    now.sync(progress)
    progress("preparing the new model's fast export")
    _ = now.embedder  # made now, beside the model: the next command's first query is quick
    return now


def reset(library: Any, progress: Progress = _quiet) -> Any:
    """Back to the packaged embedder: ``embed_model`` removed from litlab.toml and the
    library embedded again with it."""
    from agentlab.settings import save_setting
    from retrievers.index.st_embedder import DEFAULT_MODEL
    from retrievers.library import Library

    with library.locked():
        save_setting(library.home, "embed_model", None)
    now = Library(library.home, store=library.store_kind, chroma_url=library.chroma_url,
                  embed_model=DEFAULT_MODEL, chunk_context=library.vectors.chunk_context,
                  clip_model=library.clip_model, cache_dir=library.vectors.cache_dir)
    now.rebuild(progress)
    return now

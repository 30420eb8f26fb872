"""`litlab finetune retriever`: pairs made from a real library (real MiniLM, SQLite, FAISS),
real sentence-transformers training steps, the gate's search with and without the candidate,
adoption and going back."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from finetune.retriever import Question, gate, hit, load_questions, make_pairs, passes
from litcore.errors import UserError
from litlab.cli import main
from retrievers.library import Library
from tests.papers import topic_notes


@pytest.fixture
def library(tmp_path: Path) -> Library:
    lib = Library(Path(os.environ["LITLAB_HOME"]))
    assert lib.index_files([topic_notes(tmp_path / "notes")]).ok
    return lib


def _litlab(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, list(args))
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    return r.exit_code, r.output


def test_pairs_ask_for_a_passage_without_giving_it_away(library: Library) -> None:
    keys = {p.key for p in library.catalog.papers()}
    pairs = make_pairs(library, keys, limit=40)
    assert {p.kind for p in pairs} == {"cloze", "question"}
    assert {p.paper for p in pairs} == keys  # papers taken in turn
    by_id = library.catalog.chunks_by_id([p.chunk_id for p in pairs])
    for p in pairs:
        if p.kind == "cloze":
            # the query is a sentence of the chunk, and the passage to find no longer holds it
            assert p.query in by_id[p.chunk_id].text.replace("\n", " ")
            assert p.query not in p.positive
        title = library.catalog.find(p.paper).title  # type: ignore[union-attr]
        assert p.positive.startswith(title)  # embedded as the library embeds a chunk
        assert p.negative and p.negative != p.positive  # the passage search wrongly prefers


def test_the_gate_needs_significantly_more_found_and_no_hand_written_set_worse() -> None:
    assert passes(gained=9, lost=0, worse_on=[])
    assert not passes(gained=3, lost=0, worse_on=[])  # too few to tell from chance
    assert not passes(gained=12, lost=10, worse_on=[])
    assert not passes(gained=12, lost=0, worse_on=["mine.json"])


def test_a_hand_written_question_hits_a_passage_of_its_paper_holding_its_phrase(
        library: Library) -> None:
    asked = "How much does the number of trainable parameters fall?"
    hits = library.search(asked, 5)
    q = Question(asked, paper="lora.md", expect=["ten thousand  times"])
    assert hit(q, hits, 5)
    assert not hit(Question("...", paper="mamba.md", expect=["ten thousand times"]), hits, 5)
    assert not hit(Question("...", paper="lora.md", expect=["a million tokens"]), hits, 5)
    assert gate(library, library.vectors, {"mine": [q]})["sets"]["mine"]["base"] == 1.0


def test_bad_question_files_say_what_a_row_needs(tmp_path: Path) -> None:
    f = tmp_path / "q.json"
    f.write_text('[{"q": "What?", "paper": "lora.md"}]')
    with pytest.raises(UserError, match="question 1 needs 'q', 'paper' and a list 'expect'"):
        load_questions(f)
    f.write_text("[{")
    with pytest.raises(UserError, match="is not JSON"):
        load_questions(f)
    f.write_text('{"q": "What?", "paper": "lora.md", "expect": ["rank"]}\n')
    assert load_questions(f)[0].expect == ["rank"]  # JSON lines too


def test_train_makes_a_gated_candidate_and_leaves_the_library_alone(library: Library,
                                                                     tmp_path: Path) -> None:
    record = library.home / "indexes" / "faiss.json"
    before = (record.read_text(), (library.home / "indexes" / "faiss.index").read_bytes())
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps([{"q": "Which model scales linearly with sequence length?",
                                 "paper": "mamba.md", "expect": ["scales linearly"]}]))
    code, out = _litlab("finetune", "retriever", "train", "--name", "r1", "--pairs", "16",
                        "--batch", "8", "--eval", str(mine), "--no-adopt", "--json")
    assert code == 0, out
    info = json.loads(out[out.index("{"):])
    assert info["state"] == "gated" and not info["adopted"]
    assert info["pairs"] == 16 and len(info["losses"]) == 2  # two real training steps
    assert len(info["held_out_papers"]) == 1 and len(info["train_papers"]) == 3
    gate_sets = info["gate"]["sets"]
    assert gate_sets["mine.json"]["questions"] == 1 and "held-out papers" in gate_sets
    assert Path(info["loss_plot"]).is_file()
    # the candidate holds every chunk in a store of its own; the library's store is untouched
    cand = Path(info["path"])
    assert json.loads((cand / "indexes" / "faiss.json").read_text())["embed_model"].startswith(
        str(cand / "model"))
    assert (record.read_text(), (library.home / "indexes" / "faiss.index").read_bytes()) == before

    code, out = _litlab("finetune", "retriever", "list")
    assert "search uses: all-MiniLM-L6-v2" in out and "r1" in out
    code, out = _litlab("finetune", "retriever", "train", "--name", "r1", "--pairs", "16")
    assert code != 0 and "exists already" in out


def test_use_searches_with_the_candidate_and_reset_goes_back(library: Library) -> None:
    code, out = _litlab("finetune", "retriever", "train", "--name", "r2", "--pairs", "16",
                        "--batch", "8", "--no-adopt")
    assert code == 0, out
    if "gate passed" not in out:
        code, out = _litlab("finetune", "retriever", "use", "r2")
        assert code != 0 and "did not pass its gate" in out and "--force" in out
    code, out = _litlab("finetune", "retriever", "use", "r2", "--force")
    assert code == 0, out
    model = Path(os.environ["LITLAB_HOME"]) / "retrievers" / "r2" / "model"
    assert f'embed_model = "{model}"' in (library.home / "litlab.toml").read_text()
    # its fast export lives with it (removed with it), not in the machine-wide cache
    assert (model.parent / "onnx" / "model.onnx").is_file()
    code, out = _litlab("search", "Which model scales linearly with sequence length?")
    assert code == 0 and "Mamba" in out, out
    code, out = _litlab("finetune", "retriever", "list", "--json")
    assert json.loads(out)["retrievers"][0]["in_use"]
    code, out = _litlab("finetune", "retriever", "remove", "r2")
    assert code != 0 and "reset" in out
    code, out = _litlab("finetune", "retriever", "reset")
    assert code == 0 and "all-MiniLM-L6-v2" in out
    assert "embed_model" not in (library.home / "litlab.toml").read_text()
    code, out = _litlab("search", "Which model scales linearly with sequence length?")
    assert code == 0 and "Mamba" in out, out


def test_an_empty_library_and_a_bad_eval_file_say_what_to_do(tmp_path: Path) -> None:
    code, out = _litlab("finetune", "retriever", "train", "--pairs", "16")
    assert code != 0 and "the library is empty" in out and "litlab index files" in out
    assert not (Path(os.environ["LITLAB_HOME"]) / "retrievers").exists()

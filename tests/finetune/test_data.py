"""Fine-tuning datasets: rows checked with file and line, grounded examples built from a real
library (real MiniLM, real SQLite and FAISS) and checked, feedback turned into pairs, the
GRPO rewards scoring hand-made completions."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from agentlab.citations import NOT_IN_LIBRARY, Source
from finetune import rewards
from finetune.data import DatasetStore
from finetune.grounded import Builder, Rarity, check, cite, extractive
from finetune.records import DataError, read_jsonl
from litlab.cli import main
from retrievers.library import Library

ORACLE = Source(2, 12, "2106.09685", "LoRA", "2 Method", "3",
                "LoRA freezes the pretrained weights and injects trainable rank decomposition "
                "matrices into each layer of the Transformer.")
OTHER = Source(1, 11, "1706.03762", "Attention", "3 Model", "2",
               "The Transformer uses multi-head attention with eight heads in every layer.")


def test_bad_rows_are_named_by_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "data.jsonl"
    good = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    f.write_text(json.dumps(good) + "\n\n" + '{"prompt": "q", "completion": 3}\n')
    with pytest.raises(DataError, match=r"data.jsonl:3: 'completion'"):
        read_jsonl(f)
    f.write_text('{"prompt": "q", "chosen": "same", "rejected": "same"}\n')
    with pytest.raises(DataError, match=r"data.jsonl:1: 'chosen' and 'rejected' are the same"):
        read_jsonl(f)
    f.write_text(json.dumps(good) + "\n{not json\n")
    with pytest.raises(DataError, match=r"data.jsonl:2: not JSON"):
        read_jsonl(f)
    f.write_text(json.dumps(good) + '\n{"prompt": "q", "chosen": "a", "rejected": "b"}\n')
    with pytest.raises(DataError, match=r"data.jsonl:2: a preference pair .* in an SFT dataset"):
        read_jsonl(f)
    # Messages become prompt/completion, so the loss is on the answer only.
    f.write_text(json.dumps(good) + "\n")
    (row,) = read_jsonl(f)
    assert row["prompt"] == [{"role": "user", "content": "q"}]
    assert row["completion"] == [{"role": "assistant", "content": "a"}]


def test_the_check_rejects_a_citation_of_a_distractor(embed) -> None:
    sources = [OTHER, ORACLE]
    good = "LoRA freezes the pretrained weights and injects rank decomposition matrices [2]."
    assert check(good, sources, 2, embed, 0.55) is None
    wrong = good.replace("[2]", "[1]")
    assert check(wrong, sources, 2, embed, 0.55) == "cites [1], a distractor"
    assert check(good.replace("[2]", "[7]"), sources, 2, embed, 0.55) == \
        "cites [7], which is not among the sources"
    unsupported = "The Transformer uses eight attention heads in every layer [2]."
    assert "does not support" in str(check(unsupported, sources, 2, embed, 0.55))
    assert check(NOT_IN_LIBRARY, sources, None, embed, 0.55) is None


def test_extractive_questions_quote_a_claim_and_cite_it() -> None:
    text = ("Smith, J., Doe, A., Roe, B., Poe, C., and Moe, D. 2020. A list of names. "
            "Results 12.1 13.4 15.2 16.0 17.3 18.9 19.5 20.1 are shown in the table. "
            "We train the Crawler and the Selector on Qwen2.5-7b with 33,511 synthetic queries.")
    q, a = extractive(text, Rarity([text, "an unrelated chunk about queries"]))  # type: ignore[misc]
    assert a.startswith("We train the Crawler")
    assert q.startswith("What does the library say about") and "Qwen2.5-7b" in q
    assert cite(a, 3).endswith("synthetic queries [3].")


def test_library_dataset_holds_out_papers_and_cites_the_oracle(papers_dir: Path,
                                                               tmp_path: Path) -> None:
    home = Path(os.environ["LITLAB_HOME"])
    lib = Library(home)
    assert lib.index_files([papers_dir]).ok
    store = DatasetStore(home)
    builder = Builder(lib, k=2, refusal_share=0.25, home=home)
    report = store.from_library("lib", builder, examples=3, eval_share=0.34)
    ds = report.dataset
    train, evals = ds.rows("train"), ds.rows("eval")
    assert len(train) + len(evals) == report.added > 0
    held = set(ds.manifest["split"]["eval_papers"])
    assert len(held) == 1
    assert not {r["meta"]["paper"] for r in train} & held  # eval papers are unseen in training
    assert {r["meta"]["paper"] for r in evals} <= held
    chunks = lib.catalog.chunks_by_id([r["meta"]["chunk_id"] for r in train + evals])
    for r in train + evals:
        answer = r["completion"][0]["content"]
        system = r["prompt"][0]["content"]
        if r["meta"]["kind"] == "refusal":
            assert answer == NOT_IN_LIBRARY and r["oracle"] is None
            continue
        n = r["oracle"]
        assert answer.endswith(f"[{n}].") and r["meta"]["sources"][n - 1] == r["meta"]["chunk_id"]
        # the oracle's passage is in the prompt under its number, as `ask` shows sources
        block = system.split(f"\n\n[{n}] ")[1] if n > 1 else system.split("[1] ", 1)[1]
        assert chunks[r["meta"]["chunk_id"]].text.strip()[:40] in block
    # the passages as numbered travel with the row, for the rewards that verify against them
    for r in train + evals:
        assert [d["n"] for d in r["sources"]] == list(range(1, r["n_sources"] + 1))
        if r["oracle"]:
            assert r["sources"][r["oracle"] - 1]["text"] == chunks[r["meta"]["chunk_id"]].text
    # Building again continues: nothing repeated, more added.
    more = store.from_library("lib", Builder(lib, k=2, refusal_share=0.25, home=home),
                              examples=report.added + 2, eval_share=0.34)
    ids = [r["meta"]["chunk_id"] for r in more.dataset.rows("train") + more.dataset.rows("eval")]
    assert len(ids) == len(set(ids)) > report.added
    lib.close()


def test_rewards_score_hand_made_completions() -> None:
    def c(text: str) -> list[dict[str, str]]:
        return [{"role": "assistant", "content": text}]

    completions = [c("LoRA freezes weights [2]."), c("LoRA freezes weights [1][2]."),
                   c("LoRA freezes weights."), c("LoRA freezes weights [5]."),
                   c(NOT_IN_LIBRARY), c(NOT_IN_LIBRARY)]
    kw = {"oracle": [2, 2, 2, 2, 2, None], "n_sources": [3] * 6,
          "answerable": [True] * 5 + [False]}
    assert rewards.citations(completions, **kw) == [1.0, 0.5, 0.0, -1.0, 0.0, 0.0]
    assert rewards.refusal(completions, **kw) == [1.0, 1.0, 1.0, 1.0, -1.0, 1.0]
    assert rewards.format_(completions, **kw)[:3] == [1.0, 1.0, 0.0]
    assert rewards.length([c("word " * 200)])[0] == -1.0
    assert rewards.length([c("short")])[0] == 0.0


def test_library_checked_rewards_score_the_fact_and_what_the_passages_say() -> None:
    """keyfact: the reference's number (and the terms the question lacks) in the reply;
    supported: claims verified against the passages, a contradicted number costing more
    than a claim the passages do not make."""
    def c(text: str) -> list[dict[str, str]]:
        return [{"role": "assistant", "content": text}]

    passage = ("We introduce S2ORC, a large corpus of 81.1M English-language academic papers "
               "spanning many academic disciplines.")
    replies = [c("S2ORC contains 81.1M English-language academic papers [1]."),
               c("S2ORC contains 12M English-language academic papers [1]."),
               c("The corpus was assembled by hand at a library in Seattle."),
               c(NOT_IN_LIBRARY)]
    n = len(replies)
    kw: dict[str, list[Any]] = {"reference": ["S2ORC has 81.1M English-language academic papers"] * n,
          "question": ["How many papers does S2ORC contain?"] * n,
          "answerable": [True] * n,
          "sources": [[{"n": 1, "title": "S2ORC", "section": "Introduction",
                        "text": passage}]] * n}
    fact = rewards.keyfact(replies, **kw)
    assert fact[0] == 1.0 and fact[1] < 0.6 and fact[3] == 0.0
    assert fact[2] == 0.0  # neither the number nor the terms
    assert rewards.supported(replies, **kw) == [1.0, -2.0, 0.0, 0.0]
    # an unanswerable example scores nothing here (the refusal reward judges it)
    assert rewards.keyfact(replies[:1], **{k: v[:1] for k, v in kw.items()} |
                           {"answerable": [False]}) == [0.0]


def test_user_rewards_load_from_a_file_and_bad_names_say_so(tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text(
        "def brevity(completions, **kw):\n    return [1.0 / len(c[-1]['content']) for c in completions]\n")
    fn = rewards.load("mine.py:brevity", tmp_path)
    assert fn([[{"role": "assistant", "content": "ab"}]]) == [0.5]
    with pytest.raises(Exception, match="unknown reward 'nope'"):
        rewards.load("nope")
    with pytest.raises(Exception, match="has no function 'missing'"):
        rewards.load("mine.py:missing", tmp_path)


def test_a_teacher_that_goes_down_stops_the_build_and_keeps_what_it_built(
        papers_dir: Path) -> None:
    """The teacher's server fails after two examples: the build stops naming its URL, keeps
    the two, and the same build continues later without repeating them."""
    from agentlab.errors import ServerUnavailable
    from finetune.grounded import Teacher

    class Client:  # a teacher server that answers twice, then is gone
        def __init__(self, answers: int) -> None:
            self.left = answers

        def chat(self, messages, **kw):
            if self.left == 0:
                raise ServerUnavailable("cannot reach the model server at http://teacher:9/v1",
                                        "start it")
            self.left -= 1
            passage = messages[-1]["content"].split("Passage:\n", 1)[1]
            first = passage.replace("\n", " ").split(". ")[0].strip().rstrip(".") + "."

            class R:
                text = json.dumps({"question": "What does the passage say?", "answer": first})
            return R()

    home = Path(os.environ["LITLAB_HOME"])
    lib = Library(home)
    assert lib.index_files([papers_dir]).ok
    store = DatasetStore(home)
    builder = Builder(lib, k=2, refusal_share=0, home=home, teacher=Teacher(Client(2), "t"))
    report = store.from_library("taught", builder, examples=5, eval_share=0)
    assert "http://teacher:9/v1" in str(report.stopped)
    kept = report.dataset.rows("train")
    assert report.added == len(kept) >= 1 and all(r["meta"]["teacher"] == "t" for r in kept)
    again = Builder(lib, k=2, refusal_share=0, home=home, teacher=Teacher(Client(9), "t"))
    more = store.from_library("taught", again, examples=len(kept) + 1, eval_share=0)
    ids = [r["meta"]["chunk_id"] for r in more.dataset.rows("train")]
    assert len(ids) == len(set(ids)) == len(kept) + 1
    lib.close()


def test_feedback_on_a_turn_whose_template_broke_is_skipped_with_the_reason(
        tmp_path: Path) -> None:
    """The prompt of a rated turn is rebuilt with the template it was asked with; when that
    template no longer loads, the turn is skipped and counted with the reason, not rebuilt
    with another template (which would train on a prompt the model never saw)."""
    from agentlab.chats import ChatStore
    from finetune.feedback import build

    home = tmp_path / "home"
    (home / "prompts").mkdir(parents=True)
    mine = home / "prompts" / "mine.toml"
    mine.write_text('description = "Terse."\nvariables = ["question"]\n'
                    'system = "Answer in one line."\nuser = "{{ question }}"\n')
    chats = ChatStore(home / "chats.sqlite")
    turn = chats.add_turn(chats.new_conversation("q"), "What does LoRA freeze?",
                          "The pretrained weights.", prompt="mine")
    chats.set_feedback(turn, rating=1)

    built = build(chats, None, home)
    assert [r["prompt"][0]["content"] for r in built.sft] == ["Answer in one line."]
    mine.write_text("description = 'Terse.\nvariables = [")  # broken TOML
    built = build(chats, None, home)
    assert built.sft == [] and built.dpo == []
    (reason, count), = built.skipped.items()
    assert count == 1 and "template" in reason and "mine" in reason


def test_feedback_trains_on_the_models_words_never_on_litlabs(tmp_path: Path) -> None:
    """The answer line litlab put before the model's words is not the model's, nor is the note
    that stands in for words litlab withheld: a correction of such an answer is an SFT example
    with no rejected reply, and a thumbs-up on it teaches nothing."""
    from agentlab.answer_line import line
    from agentlab.chats import ChatStore
    from agentlab.citations import WITHHELD_MESSAGE
    from finetune.feedback import NOT_KEPT, build

    home = tmp_path / "home"
    (home / "prompts").mkdir(parents=True)
    (home / "prompts" / "mine.toml").write_text(
        'description = "Terse."\nvariables = ["question"]\nsystem = "One line."\n'
        'user = "{{ question }}"\n')
    chats = ChatStore(home / "chats.sqlite")
    lead = line(1, "Low-rank adaptation freezes the pretrained weights.")
    kept = chats.add_turn(chats.new_conversation("q"), "What does LoRA freeze?",
                          lead + "It freezes the weights [1].", prompt="mine")
    chats.set_feedback(kept, rating=-1, preferred="The pretrained weights [1].")
    withheld = chats.add_turn(chats.new_conversation("q"), "What does LoRA train?",
                              lead + WITHHELD_MESSAGE, prompt="mine")
    chats.set_feedback(withheld, rating=1)
    built = build(chats, None, home)
    (pair,) = built.dpo
    assert pair["rejected"][0]["content"] == "It freezes the weights [1]."  # no answer line
    assert [r["completion"][0]["content"] for r in built.sft] == ["The pretrained weights [1]."]
    assert built.skipped == {NOT_KEPT: 1}


def test_dpo_pairs_from_an_eval_runs_failures(tmp_path: Path) -> None:
    """`data build NAME --from run:RUN`: a failed answerable case becomes a pair, the passage
    sentence with the key fact (cited, verified) preferred over the model's reply as it was
    sent; a case whose passages lack the fact, a passed case and a refusal case give none."""
    from agentlab.citations import Source
    from evals.store import Result, RunStore

    home = Path(os.environ["LITLAB_HOME"])
    suite = tmp_path / "facts.yaml"
    suite.write_text(
        "targets: [{name: base, kind: ask}]\nprompts: [rag]\ncases:\n"
        "  - {id: heads, question: 'How many attention heads does the base model use?',"
        " assert: [{type: regex, value: '\\b8\\b'}]}\n"
        "  - {id: depth, question: 'How many layers does the encoder stack have?',"
        " assert: [{type: regex, value: '\\b6\\b'}]}\n"
        "  - {id: lr, question: 'Which optimizer is used?', assert: [{type: regex, value: Adam}]}\n"
        "  - {id: capital, question: 'What is the capital of France?', should_refuse: true}\n")
    heads = Source(1, 11, "1706.03762", "Attention Is All You Need", "3.2.2 Multi-Head", "5",
                   "In this work we employ h = 8 parallel attention layers, or heads, in the "
                   "base model. For each of these we use dk = dv = 64.")
    other = Source(2, 12, "1706.03762", "Attention Is All You Need", "5.3 Optimizer", "7",
                   "We used the Adam optimizer with beta1 = 0.9 and beta2 = 0.98 for training.")

    def result(case: str, text: str, passed: bool, sources: list[Source]) -> Result:
        return Result(case, "base", "rag", 0, [], {"text": text,
                      "sources": [s.to_dict() for s in sources]}, {}, passed, float(passed))

    store = RunStore(home)
    store.start("gate-1", str(suite), "d", {})
    store.add("gate-1", result("heads", "“For each of these we use dk = dv = 64.” [1]\n\n"
                               "The base model uses 2 attention heads.", False, [heads, other]))
    store.add("gate-1", result("depth", "The encoder has 12 layers.", False, [other]))
    store.add("gate-1", result("lr", "It uses Adam [2].", True, [other]))
    store.add("gate-1", result("capital", "Paris.", False, [other]))
    store.close()

    out = CliRunner().invoke(main, ["finetune", "data", "build", "fails", "--from", "run:gate-1",
                                    "--json"])
    assert out.exit_code == 0, out.output
    rows = DatasetStore(home).get("fails").rows("train")
    assert len(rows) == 1 and DatasetStore(home).get("fails").kind == "dpo"
    (pair,) = rows
    chosen, rejected = pair["chosen"][0]["content"], pair["rejected"][0]["content"]
    assert "h = 8 parallel attention layers" in chosen and chosen.endswith("[1].")
    assert rejected == "The base model uses 2 attention heads."  # the answer line left out
    assert "In this work we employ h = 8" in pair["prompt"][0]["content"]  # as it was sent
    skipped = json.loads(out.output)["skipped"]
    assert skipped == {"no passage sentence states the key fact": 1,
                       "a case that should be refused": 1}

    bad = CliRunner().invoke(main, ["finetune", "data", "build", "x", "--from", "run:nope"])
    assert bad.exit_code == 1 and "no evaluation run 'nope'" in bad.output


def test_one_paper_library_builds_questions_that_ask_for_a_fact(tmp_path: Path) -> None:
    """A library of one paper has no passages of another paper to refuse with: the refusals
    asked for are built as grounded examples instead (not zero examples), and an example asks
    for a fact the way a person would and answers with the clause that states it."""
    home = Path(os.environ["LITLAB_HOME"])
    note = tmp_path / "splade.md"
    note.write_text(
        "# Sparse Retrieval at Scale\n\n## Method\n"
        "SPLADE expands every query with 30 weighted vocabulary terms before the search. "
        "We use BM25 as the first-stage retriever for every experiment in this study. "
        "The final index holds 8.8M passages drawn from anonymised web search logs.\n\n"
        "## Results\nThe reranker improves recall substantially over the first stage on "
        "every benchmark that we tried during the development of the system.\n")
    lib = Library(home)
    assert lib.index_files([note]).ok
    report = DatasetStore(home).from_library(
        "one", Builder(lib, k=2, refusal_share=0.5, home=home), examples=3, eval_share=0)
    rows = report.dataset.rows("train")
    assert rows and all(r["meta"]["kind"] == "grounded" for r in rows)
    assert any(k.startswith("refusal: ") for k in report.rejected)
    facts = [r for r in rows if r["meta"]["key"]]
    assert facts, [r["meta"]["question"] for r in rows]
    for r in facts:
        assert r["meta"]["question"].endswith("?")
        assert r["meta"]["key"] not in r["meta"]["question"]
        assert r["meta"]["key"] in r["completion"][0]["content"]
    lib.close()

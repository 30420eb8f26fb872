"""Suite files: every mistake is one line with the file and the line. Compare: a planted
regression is flagged with its significance; two equal runs are not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from evals.compare import compare, mcnemar
from evals.store import Result
from evals.suite import SuiteError, load_suite

GOOD = """\
description: ok
targets:
  - {name: base, kind: ask}
prompts: [rag, {name: terse, system: "Be brief.", user: "{{ question }}"}]
assert: [{type: citations}]
cases:
  - question: What is LoRA?
    papers: [lora.md]
  - file: more.jsonl
"""


def write(tmp_path: Path, text: str, cases: str = '{"question": "What is DPO?"}\n') -> Path:
    (tmp_path / "more.jsonl").write_text(cases)
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return path


def test_a_good_suite_loads_with_its_case_files(tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path, GOOD))
    cases = suite.all_cases()
    assert [c.question for c in cases] == ["What is LoRA?", "What is DPO?"]
    assert [c.id for c in cases] == ["case-1", "case-2"]
    assert suite.prompt_names() == ["rag", "terse"]


@pytest.mark.parametrize(("text", "line", "words"), [
    (GOOD.replace("description: ok", "descripton: ok"), 1, "descripton: unknown key"),
    (GOOD.replace("kind: ask", "kind: chat"), 3, "targets.0.kind"),
    (GOOD.replace("[{type: citations}]", "[{type: citation}]"), 5, "assert.0.type"),
    (GOOD.replace("    papers: [lora.md]", "    paper: [lora.md]"), 8, "unknown key"),
    (GOOD.replace("targets:\n  - {name: base, kind: ask}\n", ""), 1, "targets: required"),
    (GOOD.replace("description: ok", "description: ok: no"), 1, "not valid YAML"),
    (GOOD.replace("prompts: [rag", "prompts: [rag, [x]"), 4, "prompts.1"),
])
def test_a_broken_suite_is_one_line_with_file_and_line(tmp_path: Path, text: str, line: int,
                                                       words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SuiteError) as e:
        load_suite(path).all_cases()
    message = str(e.value)
    assert message.startswith(f"{path}:{line}:") and words in message and "\n" not in message


def test_a_broken_case_file_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD, cases='{"question": "ok"}\n{"question": "x", "tag": []}\n')
    with pytest.raises(SuiteError, match=r"more.jsonl:2: tag: unknown key"):
        load_suite(path).all_cases()
    path = write(tmp_path, GOOD, cases='{"question": "ok"}\nnot json\n')
    with pytest.raises(SuiteError, match=r"more.jsonl:2: not JSON"):
        load_suite(path).all_cases()


def results(passes: list[bool], prompt: str = "rag") -> list[Result]:
    return [Result(f"case-{i}", "base", prompt, 0, [], {"text": ""},
                   {"citations": {"type": "citations", "passed": p, "score": float(p),
                                  "reason": "", "weight": 1.0}}, p, float(p))
            for i, p in enumerate(passes)]


def test_compare_flags_a_planted_regression_with_its_significance() -> None:
    a = results([True] * 30)
    b = results([True] * 18 + [False] * 12)  # twelve cases that passed now fail
    result = compare(a, b)
    (case,) = [d for d in result.deltas if d.assertion == "(case)"]
    assert case.regressed == [f"case-{i}" for i in range(18, 30)] and case.improved == []
    assert case.p_value < 0.001 and case.ci[1] < 0
    assert {d.assertion for d in result.regressions()} == {"(case)", "citations"}


def test_compare_does_not_flag_equal_runs_or_noise() -> None:
    same = results([True, False] * 15)
    assert compare(same, results([True, False] * 15)).regressions() == []
    # two cases changed each way: no evidence of a difference
    noisy = results([False, True, True, False] + [True, False] * 13)
    assert compare(same, noisy).regressions() == []
    assert mcnemar(0, 0) == 1.0 and mcnemar(5, 5) == 1.0


def test_two_prompts_of_one_run_pair_by_case() -> None:
    run = results([True] * 20, "rag") + results([True] * 10 + [False] * 10, "terse")
    a = [r for r in run if r.prompt == "rag"]
    b = [r for r in run if r.prompt == "terse"]
    result = compare(a, b)
    assert result.unpaired == 0 and result.regressions("(case)")


def test_compare_command_exits_non_zero_on_a_planted_regression(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from evals.store import RunStore
    from litlab.cli import main

    store = RunStore(tmp_path)
    for run_id, passes in (("before", [True] * 30), ("after", [True] * 18 + [False] * 12)):
        store.start(run_id, "suite.yaml", "d", {})
        for r in results(passes):
            store.add(run_id, r)
        store.finish(run_id)
    store.close()
    cli = CliRunner()
    worse = cli.invoke(main, ["--home", str(tmp_path), "eval", "compare", "before", "after"])
    assert worse.exit_code == 1 and "case-29" in worse.output and "0.000" in worse.output
    same = cli.invoke(main, ["--home", str(tmp_path), "eval", "compare", "before", "before"])
    assert same.exit_code == 0
    one = cli.invoke(main, ["--home", str(tmp_path), "eval", "compare", "before", "after",
                            "--fail-on", "citations", "--json"])
    assert one.exit_code == 1
    assert "citations" in __import__("json").loads(one.output)["regressed"]


def _prompt_runner(tmp_path: Path, cases: int, client: Any) -> Any:
    """A runner of a suite of ``cases`` questions ("question 0?", ...) on one prompt target
    that passes when the answer says "fine"."""
    from agentlab.settings import Settings
    from evals.runner import Runner
    from evals.store import RunStore

    lines = "".join(f'{{"id": "q{i}", "question": "question {i}?"}}\n' for i in range(cases))
    (tmp_path / "c.jsonl").write_text(lines)
    (tmp_path / "s.yaml").write_text(
        "targets: [{name: base, kind: prompt, model: m}]\nprompts: [zero_shot]\n"
        "assert: [{type: icontains, value: fine}]\ncases: [{file: c.jsonl}]\n")
    settings = Settings(home=tmp_path / "home")
    return Runner(load_suite(tmp_path / "s.yaml"), settings, client,
                  store=RunStore(settings.home_dir))


def test_a_server_that_goes_away_fails_its_cases_with_the_reason(tmp_path: Path) -> None:
    from agentlab.errors import ServerUnavailable

    class GoesAway:
        """Answers twice, then the server is gone."""

        calls = 0

        def chat(self, messages, **kw):
            from agentlab.client import ChatResult

            self.calls += 1
            if self.calls > 2:
                raise ServerUnavailable("no model server at http://127.0.0.1:9/v1",
                                        "start it with `litlab serve`")
            return ChatResult("fine", "m", 1, 1, "stop")

    summary = _prompt_runner(tmp_path, 5, GoesAway()).run(jobs=1)
    assert len(summary.results) == 5  # the run finished
    failed = [r for r in summary.results if not r.passed]
    assert len(failed) == 3
    assert all("no model server at http://127.0.0.1:9/v1" in str(r.output["error"])
               for r in failed)


def test_a_case_whose_request_timed_out_is_asked_again_alone(tmp_path: Path) -> None:
    """On a slow CPU a request can wait behind the others past request_timeout: that says
    nothing about the model, so the case is asked again once, alone, and the answer replaces
    the timeout (a gate comparing base and adapter would otherwise count it as a failure)."""
    from agentlab.client import ChatResult
    from agentlab.errors import ServerUnavailable

    class Slow:
        """Times out on question 1 the first time it is asked; on question 2 always."""

        def __init__(self) -> None:
            self.asked: list[str] = []

        def chat(self, messages, **kw):
            q = messages[-1]["content"]
            self.asked.append(q)
            if "question 2" in q or ("question 1" in q and self.asked.count(q) == 1):
                raise ServerUnavailable("the model server at http://127.0.0.1:9/v1 did not "
                                        "answer in time", "raise request_timeout")
            return ChatResult("fine", "m", 1, 1, "stop")

    client = Slow()
    summary = _prompt_runner(tmp_path, 4, client).run(jobs=2)
    assert summary.retried == 2 and len(summary.results) == 4
    by_case = {r.case_id: r for r in summary.results}
    assert by_case["q1"].passed  # the second asking answered
    assert not by_case["q2"].passed and "did not answer in time" in by_case["q2"].output["error"]
    assert sum("question 1" in q for q in client.asked) == 2  # once more, not in a loop
    assert sum("question 2" in q for q in client.asked) == 2


def test_targets_on_different_base_models_each_reach_a_server_that_serves_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A suite comparing the two packaged base models: litlab's server is switched to each
    base in turn (the settings' base first, no restart for it) and back at the end; a base
    that cannot start fails its own cases with the reason, the others still pass."""
    import agentlab.server as server
    from agentlab.client import ChatResult
    from agentlab.settings import Settings
    from evals.runner import run_suite

    class Serves:
        def __init__(self, base: str) -> None:
            self.base = base

        def chat(self, messages, *, model: str, **kw):
            assert model == self.base, f"{model} asked of a server that serves {self.base}"
            return ChatResult(f"fine from {self.base}", model, 1, 1, "stop")

        def models(self) -> list[str]:
            return [self.base]

    switched: list[str] = []

    def switcher(settings, say):
        def switch(model: str):
            switched.append(model)
            if model == "gemma-3-270m" and fail_gemma:
                raise server.UserError("the server did not start on gemma-3-270m",
                                       "see server.log")
            say(f"serving {model}")
            return Serves(model)
        return switch

    monkeypatch.setattr(server, "switcher", switcher)
    cases = "".join(f'{{"id": "q{i}", "question": "question {i}?"}}\n' for i in range(3))
    (tmp_path / "c.jsonl").write_text(cases)
    (tmp_path / "s.yaml").write_text(
        "targets:\n"
        "  - {name: gemma, kind: prompt, model: gemma-3-270m}\n"
        "  - {name: smol, kind: prompt, model: smollm2-135m-instruct}\n"
        "prompts: [zero_shot]\nassert: [{type: icontains, value: fine}]\n"
        "cases: [{file: c.jsonl}]\n")
    settings = Settings(home=tmp_path / "home")  # the settings' model: smollm2-135m-instruct
    said: list[str] = []
    fail_gemma = False
    summary = run_suite(load_suite(tmp_path / "s.yaml"), settings, Serves("smollm2-135m-instruct"),
                        jobs=2, say=said.append)
    assert all(r.passed for r in summary.results) and len(summary.results) == 6
    by_target = {r.target: r.output["text"] for r in summary.results}
    assert by_target == {"gemma": "fine from gemma-3-270m",
                         "smol": "fine from smollm2-135m-instruct"}
    # the running base first, then gemma, then back to the settings' model
    assert switched == ["smollm2-135m-instruct", "gemma-3-270m", "smollm2-135m-instruct"]
    assert summary.switched == ["smollm2-135m-instruct", "gemma-3-270m"]
    assert "serving gemma-3-270m" in said

    switched.clear()
    fail_gemma = True
    summary = run_suite(load_suite(tmp_path / "s.yaml"), settings,
                        Serves("smollm2-135m-instruct"), use_cache=False)
    failed = [r for r in summary.results if not r.passed]
    assert {r.target for r in failed} == {"gemma"} and len(failed) == 3
    assert all("did not start on gemma-3-270m" in r.output["error"] for r in failed)
    assert switched[-1] == "smollm2-135m-instruct"


def test_on_a_cpu_an_adapter_target_runs_on_its_merged_server_and_the_base_on_its_own(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A gate's suite (base and adapter) on litlab's own CPU server: the base's cases where
    the server already is, the adapter's on a server restarted on its merge (4x faster than
    vLLM's CPU LoRA kernels), then back to the settings' model as they serve it; with
    ``adapter_serving = "lora"`` the adapter is loaded beside the base, no restart."""
    import json as _json

    import agentlab.server as server
    from agentlab.client import ChatResult
    from agentlab.settings import Settings
    from evals.runner import run_suite

    class Serves:
        def __init__(self, names: list[str]) -> None:
            self.names, self.loaded = names, list[str]()

        def chat(self, messages, *, model: str, **kw):
            assert model in self.names, f"{model} asked of a server serving {self.names}"
            return ChatResult(f"fine from {model}", model, 1, 1, "stop")

        def models(self) -> list[str]:
            return list(self.names)

        def load_adapter(self, name: str, path: str) -> None:
            self.loaded.append(name)
            self.names.append(name)

    switched: list[tuple[str, str]] = []

    def switcher(settings, say):
        def switch(model: str):
            switched.append((model, settings.adapter_serving))
            return Serves([model])
        return switch

    monkeypatch.setattr(server, "switcher", switcher)
    monkeypatch.setattr(server, "on_gpu", lambda: False)
    home = tmp_path / "home"
    (home / "adapters" / "tutor").mkdir(parents=True)
    (home / "adapters" / "tutor" / "adapter_config.json").write_text(_json.dumps(
        {"base_model_name_or_path": "/x/models/smollm2-135m-instruct"}))
    (tmp_path / "s.yaml").write_text(
        "targets:\n"
        "  - {name: adapter, kind: prompt, model: tutor}\n"
        "  - {name: base, kind: prompt, model: smollm2-135m-instruct}\n"
        "prompts: [zero_shot]\nassert: [{type: icontains, value: fine}]\n"
        "cases: [{id: a, question: 'q?'}, {id: b, question: 'r?'}]\n")
    summary = run_suite(load_suite(tmp_path / "s.yaml"), Settings(home=home),
                        Serves(["smollm2-135m-instruct"]), jobs=2)
    assert {r.target: r.output["text"] for r in summary.results} == {
        "adapter": "fine from tutor", "base": "fine from smollm2-135m-instruct"}
    assert switched == [("smollm2-135m-instruct", "merged"), ("tutor", "merged"),
                        ("smollm2-135m-instruct", "auto")]  # back as the settings serve it

    switched.clear()
    beside = Serves(["smollm2-135m-instruct"])
    summary = run_suite(load_suite(tmp_path / "s.yaml"),
                        Settings(home=home, adapter_serving="lora"), beside, use_cache=False)
    assert all(r.passed for r in summary.results) and not switched
    assert beside.loaded == ["tutor"]


def test_a_remote_server_is_never_switched(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """With api_base set, the remote server answers every target as it can; litlab restarts
    nothing (a model it does not serve fails its cases, as it says)."""
    import agentlab.server as server
    from agentlab.client import ChatResult
    from agentlab.settings import Settings
    from evals.runner import run_suite

    monkeypatch.setattr(server, "switcher", lambda *a: pytest.fail("switched a remote server"))

    class Remote:
        def chat(self, messages, *, model: str, **kw):
            return ChatResult("fine", model, 1, 1, "stop")

        def models(self) -> list[str]:
            return ["smollm2-135m-instruct", "gemma-3-270m"]

    (tmp_path / "s.yaml").write_text(
        "targets:\n"
        "  - {name: gemma, kind: prompt, model: gemma-3-270m}\n"
        "  - {name: smol, kind: prompt, model: smollm2-135m-instruct}\n"
        "prompts: [zero_shot]\nassert: [{type: icontains, value: fine}]\n"
        "cases: [{id: a, question: 'q?'}]\n")
    settings = Settings(home=tmp_path / "home", api_base="http://127.0.0.1:9/v1")
    summary = run_suite(load_suite(tmp_path / "s.yaml"), settings, Remote())
    assert all(r.passed for r in summary.results) and summary.switched == []


def test_a_suite_takes_its_cases_from_another_suite(tmp_path: Path) -> None:
    """`cases: [{file: other.yaml}]` reuses another suite's cases with their own checks; a
    loop of such files is one line, not a hang."""
    (tmp_path / "facts.yaml").write_text(
        "targets: [{name: a, kind: prompt}]\nprompts: [zero_shot]\n"
        "cases:\n  - {id: heads, question: 'How many heads?', assert: [{type: regex, value: '8'}]}\n"
        "  - {file: more.jsonl}\n")
    (tmp_path / "more.jsonl").write_text('{"id": "depth", "question": "How many layers?"}\n')
    (tmp_path / "models.yaml").write_text(
        "targets: [{name: b, kind: prompt, model: gemma-3-270m}]\nprompts: [zero_shot]\n"
        "cases: [{file: facts.yaml}]\n")
    cases = load_suite(tmp_path / "models.yaml").all_cases()
    assert [c.id for c in cases] == ["heads", "depth"]
    assert cases[0].assert_[0].value == "8"

    (tmp_path / "facts.yaml").write_text(
        "targets: [{name: a, kind: prompt}]\nprompts: [zero_shot]\n"
        "cases: [{file: models.yaml}]\n")
    with pytest.raises(SuiteError, match="takes its cases from itself"):
        load_suite(tmp_path / "models.yaml").all_cases()

"""The terminal app driven through Textual's pilot; the model is fake except in the last test."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Label, ListItem, ListView, Static

from agentlab.chats import ChatStore
from agentlab.settings import load_settings
from tests.tui.fakes import FakeClient
from tui.app import LitlabApp
from tui.services import Services
from tui.widgets.citations import CitationsPanel
from tui.widgets.message import MessageView

QUESTION = "What does low-rank adaptation freeze?"




def make_app(client: FakeClient | None = None, arxiv=None) -> LitlabApp:
    # answers as the model wrote them (the answer line, the source's best sentence quoted
    # first, has its own tests in test_trust_screens.py)
    return LitlabApp(Services(load_settings(answer_line=False).settings,
                              client=client or FakeClient(), arxiv=arxiv))


async def ask(pilot, question: str = QUESTION) -> MessageView:
    app = pilot.app
    app.screen.query_one("#ask", Input).value = question
    await pilot.press("enter")
    await app.workers.wait_for_complete()
    await pilot.pause()
    return list(app.screen.query(MessageView))[-1]


@pytest.mark.anyio
async def test_question_streams_in_with_citations_to_open(home: Path) -> None:
    app = make_app()
    async with app.run_test(size=(140, 40)) as pilot:
        await app.workers.wait_for_complete()
        assert "ready" in str(app.screen.query_one("#server", Static).render())
        view = await ask(pilot)
        assert view.text == "LoRA freezes the pretrained weights [1]. See also."  # [9] dropped
        assert "removed [9]" in str(view.query_one(".meta", Static).render())
        panel = app.screen.query_one(CitationsPanel)
        assert len(panel.citations) == 1
        assert panel.citations[0]["title"] == "Efficient Adaptation of Generative Models"
        panel.query_one(ListView).index = 0
        await pilot.pause()
        detail = str(panel.query_one("#citation-text", Static).render())
        assert "1 Introduction, p. 1" in detail and "decomposition" in detail
        # The turn is in chats.sqlite with its trace.
        chats = app.services.chats
        (conv,) = chats.conversations()
        assert conv.title == QUESTION
        assert [s.kind for s in chats.trace(view.message_id)][:2] == ["retrieve", "prompt"]


@pytest.mark.anyio
async def test_feedback_thumbs_and_edited_answer_are_stored(home: Path) -> None:
    app = make_app()
    async with app.run_test(size=(140, 40)) as pilot:
        await app.workers.wait_for_complete()
        view = await ask(pilot)
        await pilot.press("f4")
        assert app.services.chats.feedback(view.message_id) == (-1, None)
        await pilot.press("f5")
        editor = app.screen.query_one("#edit")
        editor.text = "LoRA freezes W and trains B and A [1]."  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.services.chats.feedback(view.message_id) == \
            (-1, "LoRA freezes W and trains B and A [1].")


@pytest.mark.anyio
async def test_stop_key_ends_the_answer_and_typing_never_waits(home: Path) -> None:
    app = make_app(FakeClient(answer=" ".join(f"word{i}" for i in range(200)), delay=0.05))
    async with app.run_test(size=(140, 40)) as pilot:
        await app.workers.wait_for_complete()
        app.screen.query_one("#ask", Input).value = QUESTION
        await pilot.press("enter")
        await pilot.pause(0.3)
        await pilot.press("h", "i")  # typed while the answer streams
        assert app.screen.query_one("#ask", Input).value == "hi"
        await pilot.press("escape")
        await app.workers.wait_for_complete()
        await pilot.pause()
        view = list(app.screen.query(MessageView))[-1]
        assert "[stopped]" in str(view.query_one(".meta", Static).render())
        assert view.text.count("word") < 200


@pytest.mark.anyio
async def test_conversations_resume_rename_export_delete(home: Path) -> None:
    app = make_app()
    async with app.run_test(size=(140, 40)) as pilot:
        await app.workers.wait_for_complete()
        await ask(pilot)
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert not list(app.screen.query(MessageView))
        conversations = app.screen.query_one("#conversation-list", ListView)
        conversations.index = 0
        conversations.action_select_cursor()
        await pilot.pause()
        assert [v.role for v in app.screen.query(MessageView)] == ["user", "assistant"]
        await pilot.press("f8")
        app.screen.query_one("#edit", Input).value = "LoRA basics"
        await pilot.press("enter")
        await pilot.pause()
        assert app.services.chats.conversations()[0].title == "LoRA basics"
        await pilot.press("f9")
        exported = home / "exports" / f"conversation-{app.services.chats.conversations()[0].id}.md"
        assert exported.read_text().startswith("# LoRA basics")
        await pilot.press("ctrl+delete")
        await pilot.pause()
        assert app.services.chats.conversations() == []


@pytest.mark.anyio
async def test_server_down_is_a_notification_not_a_crash(home: Path) -> None:
    app = make_app(FakeClient(down=True))
    async with app.run_test(size=(140, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "down" in str(app.screen.query_one("#server", Static).render())
        assert any("no model server" in n.message for n in app._notifications)
        view = await ask(pilot)
        assert "error" in view.text and app.is_running


@pytest.mark.anyio
async def test_library_screen_filters_adds_and_reports_failures(home: Path, tmp_path: Path) -> None:
    import httpx

    from retrievers.sources.arxiv import ArxivClient
    from tests.retrievers.test_arxiv import RecordedArxiv

    server = RecordedArxiv(tmp_path, source=None)
    app = make_app(arxiv=lambda: ArxivClient(delay=0.0, transport=httpx.MockTransport(server)))
    async with app.run_test(size=(140, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.press("f2")
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        assert table.row_count == 3
        app.screen.query_one("#filter", Input).value = "reinforcement"
        await pilot.pause()
        assert table.row_count == 1
        app.screen.query_one("#filter", Input).value = ""
        await pilot.press("a")
        app.screen.query_one("#add", Input).value = "2106.09685 2401.99999"
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        await app.workers.wait_for_complete()  # the table's refresh, started when indexing ended
        await pilot.pause()
        status = str(app.screen.query_one("#index-status").render())
        assert table.row_count == 5, status  # the new paper, and the failed id with its reason
        assert "indexed 1" in status and "2401.99999" in status
        table.move_cursor(row=0)
        await pilot.pause()
        assert "Sections:" in str(app.screen.query_one("#paper-details", Static).render())


def steady_cursors(app: LitlabApp) -> None:
    """A blinking cursor would make a snapshot depend on the moment it is taken."""
    for widget in app.screen.query("Input, TextArea"):
        widget.cursor_blink = False  # type: ignore[attr-defined]


def test_chat_screen_snapshot(home: Path, snap_compare) -> None:
    async def run_before(pilot) -> None:
        steady_cursors(pilot.app)
        await pilot.app.workers.wait_for_complete()
        await ask(pilot)
        panel = pilot.app.screen.query_one(CitationsPanel)
        panel.query_one(ListView).index = 0
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=(140, 40), run_before=run_before)


def test_library_screen_snapshot(home: Path, snap_compare) -> None:
    async def run_before(pilot) -> None:
        await pilot.app.workers.wait_for_complete()
        await pilot.press("f2")
        await pilot.app.workers.wait_for_complete()
        steady_cursors(pilot.app)
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=(140, 40), run_before=run_before)


def test_help_screen_snapshot(home: Path, snap_compare) -> None:
    assert snap_compare(make_app(), terminal_size=(140, 40), press=["f1"])


@pytest.mark.server
@pytest.mark.anyio
async def test_real_server_answer_with_a_citation_selected(home: Path, vllm_server) -> None:
    settings = load_settings(api_base=vllm_server.api_base, max_tokens=48, temperature=0).settings
    app = LitlabApp(Services(settings))
    async with app.run_test(size=(140, 40)) as pilot:
        await app.workers.wait_for_complete()
        assert "ready" in str(app.screen.query_one("#server", Static).render())
        view = await ask(pilot, "How does Mamba scale with sequence length?")
        assert view.text.strip() and view.message_id
        # Cited or not, the panel lists passages (the citations, or what the answer was given),
        # and selecting one shows that passage: the Mamba section of the test PDF.
        panel = app.screen.query_one(CitationsPanel)
        assert panel.citations and panel.citations[0]["section"] == "3 State Space Models"
        panel.query_one(ListView).index = 0
        await pilot.pause()
        detail = str(panel.query_one("#citation-text", Static).render())
        assert "Mamba" in detail and "3 State Space Models, p. 2" in detail
        # What the screen shows is what chats.sqlite keeps.
        from textual.widgets import Markdown

        shown = view.query_one(Markdown).source
        stored = app.services.chats.messages(app.services.chats.conversations()[0].id)
        assert [m.role for m in stored] == ["user", "assistant"]
        assert stored[0].content == "How does Mamba scale with sequence length?"
        assert stored[1].content == shown and shown.strip()
        assert stored[1].citations == view.citations


@pytest.mark.anyio
async def test_library_screen_adds_local_files_and_cancels_arxiv(home: Path, tmp_path: Path) -> None:
    import threading

    import httpx

    from retrievers.sources.arxiv import ArxivClient
    from tests.papers import MARKDOWN
    from tests.retrievers.test_arxiv import RecordedArxiv

    (tmp_path / "dpo.md").write_text(MARKDOWN.replace("Reinforcement Learning", "Direct Preference"))
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    release = threading.Event()
    recorded = RecordedArxiv(tmp_path, source=None)

    def slow(request: httpx.Request) -> httpx.Response:
        release.wait(10)
        return recorded(request)

    app = make_app(arxiv=lambda: ArxivClient(delay=0.0, transport=httpx.MockTransport(slow)))
    async with app.run_test(size=(140, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.press("f2")
        await app.workers.wait_for_complete()
        await pilot.press("a")
        app.screen.query_one("#add", Input).value = \
            f"{tmp_path / 'dpo.md'} {tmp_path / 'broken.pdf'}"
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        await app.workers.wait_for_complete()
        status = str(app.screen.query_one("#index-status").render())
        assert "indexed 1" in status and "broken.pdf" in status
        titles = [p.title for p in app.services.library.catalog.papers() if p.state == "indexed"]
        assert "Direct Preference from Human Feedback" in titles

        (tmp_path / "refs.bib").write_text(  # a .bib: its entries, with their citation keys
            "@misc{dpo2023, title = {DPO notes}, file = {dpo.md}}\n"
            "@misc{nothing2020, title = {No file}}\n")
        await pilot.press("a")
        app.screen.query_one("#add", Input).value = str(tmp_path / "refs.bib")
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        status = str(app.screen.query_one("#index-status").render())
        assert "unchanged 1" in status and "nothing2020" in status and "no file" in status
        paper = app.services.library.catalog.find("dpo2023")
        assert paper is not None and paper.title == "DPO notes"

        await pilot.press("a")
        app.screen.query_one("#add", Input).value = "2106.09685"
        await pilot.press("enter")
        await pilot.pause(0.2)
        await pilot.press("escape")  # while arXiv is being asked
        release.set()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "cancelled" in str(app.screen.query_one("#index-status").render())
        assert app.services.library.catalog.find("2106.09685") is None
        assert app.is_running


def test_edit_answer_snapshot(home: Path, snap_compare) -> None:
    async def run_before(pilot) -> None:
        await pilot.app.workers.wait_for_complete()
        await ask(pilot)
        await pilot.press("f5")
        await pilot.pause()
        steady_cursors(pilot.app)
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=(140, 40), run_before=run_before)


@pytest.mark.anyio
async def test_an_answer_citing_nothing_shows_what_it_was_given(home: Path) -> None:
    # No marker, and nothing in the sources supports it: the panel shows what it was given.
    app = make_app(FakeClient(answer="It is a kind of neural network that learns to learn."))
    async with app.run_test(size=(140, 40)) as pilot:
        await app.workers.wait_for_complete()
        await ask(pilot, "How does Mamba scale with sequence length?")
        panel = app.screen.query_one(CitationsPanel)
        assert "cites none" in str(panel.query_one("#citations-title", Static).render())
        assert panel.citations[0]["section"] == "3 State Space Models"


@pytest.mark.anyio
async def test_a_server_that_cannot_start_fails_the_question_instead_of_hanging(home: Path) -> None:
    from tests.conftest import free_port

    settings = load_settings(api_base=f"http://127.0.0.1:{free_port()}/v1").settings
    app = LitlabApp(Services(settings))
    async with app.run_test(size=(140, 40)) as pilot:
        await app.workers.wait_for_complete()
        assert "down" in str(app.screen.query_one("#server", Static).render())
        view = await ask(pilot)
        assert "error" in view.text and "127.0.0.1" in view.text
        app.screen.query_one("#ask", Input).value = "again?"
        await pilot.press("enter")  # the screen is not stuck "busy"
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert len(list(app.screen.query(MessageView))) == 4


@pytest.mark.anyio
async def test_escape_stops_the_agent_within_a_second(home: Path) -> None:
    import time

    from tests.tui.fakes import AgentClient

    app = make_app(AgentClient())
    async with app.run_test(size=(140, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.press("f7")  # agent mode
        app.screen.query_one("#ask", Input).value = QUESTION
        await pilot.press("enter")
        await pilot.pause(0.8)  # the agent is streaming its (40 s long) first reply
        assert app.screen._busy  # type: ignore[attr-defined]
        pressed = time.monotonic()
        await pilot.press("escape")
        while app.screen._busy and time.monotonic() - pressed < 5:  # type: ignore[attr-defined]
            await pilot.pause(0.05)
        assert time.monotonic() - pressed < 1.0
        view = list(app.screen.query(MessageView))[-1]
        assert "[stopped]" in str(view.query_one(".meta", Static).render())


@pytest.mark.anyio
async def test_the_agent_shows_its_hops_and_ends_with_a_cited_answer(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    import agentlab.plan
    from tests.agentlab.fakes import ScriptedChatModel

    # This test is about the model's steps. Whether the plan's two parts can be combined
    # without the model depends on how a near tie between two sentences of this tiny library
    # ranks, which flipped once in a full run (2026-12-03): the parts are never combined here.
    monkeypatch.setattr(agentlab.plan, "combine", lambda *_a, **_k: None)

    question = "Which is trained on human preference comparisons: the reward model or Mamba?"

    class ScriptedAgentClient(FakeClient):
        def langchain(self, model: str, **_: object) -> ScriptedChatModel:
            return ScriptedChatModel(script=[
                json.dumps({"tool": "search_library", "args": {"query": question}}),  # again
                json.dumps({"final_answer": "The reward model is trained on human preference "
                                            "comparisons [1]."})])

    app = make_app(ScriptedAgentClient())
    async with app.run_test(size=(140, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.press("f7")  # agent mode
        view = await ask(pilot, question)
        hops = str(view.query_one(".reasoning", Static).render())
        assert hops.startswith("Hops:\n1. plan (comparison): ")
        assert hops.count(". search_library ") == 3  # the question, then each side
        assert "model asked for search_library again: read instead" in hops
        assert "ended with the model's final answer, verified" in hops
        assert "reward model" in view.text and view.citations


@pytest.mark.anyio
async def test_the_agent_adds_a_paper_only_after_the_person_says_yes(home: Path,
                                                                      tmp_path: Path) -> None:
    import json
    import time

    import httpx

    from retrievers.library import Library
    from retrievers.sources.arxiv import ArxivClient
    from tests.agentlab.fakes import ScriptedChatModel
    from tests.retrievers.test_arxiv import RecordedArxiv
    from tui.screens.confirm import ConfirmScreen

    class IndexingClient(FakeClient):
        def langchain(self, model: str, **_: object) -> ScriptedChatModel:
            return ScriptedChatModel(script=[
                json.dumps({"tool": "index_paper", "args": {"arxiv_id": "2106.09685"}}),
                json.dumps({"final_answer": "LoRA freezes the pretrained weights [1]."})])

    server = RecordedArxiv(tmp_path, source=None)
    app = make_app(IndexingClient(),
                   arxiv=lambda: ArxivClient(delay=0.0, transport=httpx.MockTransport(server)))
    keys = lambda: {p.arxiv_id for p in Library(home).catalog.papers()}  # noqa: E731
    async with app.run_test(size=(140, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.press("f7")  # agent mode
        for key, added in (("n", False), ("y", True)):
            app.screen.query_one("#ask", Input).value = "Please index arXiv 2106.09685; " \
                                                        "what does LoRA freeze?"
            await pilot.press("enter")
            started = time.monotonic()
            while not isinstance(app.screen, ConfirmScreen) and time.monotonic() - started < 10:
                await pilot.pause(0.05)
            assert "Add arXiv 2106.09685 to the library?" in str(
                app.screen.query_one(Label).render())
            assert "2106.09685" not in keys()  # nothing changes before the answer
            await pilot.press(key)
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert ("2106.09685" in keys()) is added
        view = list(app.screen.query(MessageView))[-1]
        assert "index_paper 2106.09685" in str(view.query_one(".reasoning", Static).render())


@pytest.mark.anyio
async def test_a_bug_is_a_toast_naming_the_log_that_holds_its_traceback(home: Path) -> None:
    from tests.tui.fakes import BuggyClient

    app = make_app(BuggyClient())
    async with app.run_test(size=(140, 40)) as pilot:
        await app.workers.wait_for_complete()
        view = await ask(pilot)
        log = home / "logs" / "app.log"
        assert "RuntimeError" in view.text and str(log) in view.text
        assert any(str(log) in n.message for n in app._notifications)
        logged = log.read_text()
        assert "Traceback" in logged and "a bug in the client" in logged
        assert app.is_running


@pytest.mark.anyio
async def test_evaluations_screen_runs_a_suite_and_compares_two_runs(home: Path) -> None:
    from tui.screens.evals import EvalsScreen

    app = make_app(FakeClient(answer="Mamba scales linearly [1]."))
    async with app.run_test(size=(140, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.press("f10")
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, EvalsScreen)
        suites = screen.query_one("#suite-list", ListView)
        names = [str(item.query_one(Label).render()) for item in suites.query(ListItem)]
        assert {"citations", "prompting", "retrieval", "agent"} <= set(names)
        suites.index = names.index("citations")
        for _ in range(2):  # two runs: the second from the cache
            await pilot.press("r")
            await pilot.pause(0.2)
            await app.workers.wait_for_complete()
            await pilot.pause()
            await app.workers.wait_for_complete()
            await pilot.pause()
        status = str(screen.query_one("#run-status", Label).render())
        assert "passed" in status, status
        table = screen.query_one(DataTable)
        assert table.row_count == 2
        table.move_cursor(row=0)
        await pilot.pause()
        details = str(screen.query_one("#run-details", Static).render())
        assert "citations" in details and "█" in details and "refusal" in details
        await pilot.press("space")  # mark the newest run
        table.move_cursor(row=1)
        await pilot.pause()
        await pilot.press("c")
        await pilot.pause()
        details = str(screen.query_one("#run-details", Static).render())
        assert "against" in details and "worse 0" in details


@pytest.mark.anyio
async def test_the_app_sets_an_unsupported_sentence_apart(home: Path) -> None:
    answer = ("Low-rank adaptation freezes the pretrained weights and injects trainable rank "
              "decomposition matrices. It was invented by Napoleon in 1802.")
    app = make_app(FakeClient(answer=answer))
    async with app.run_test(size=(140, 40)) as pilot:
        await app.workers.wait_for_complete()
        view = await ask(pilot)
        support = str(view.query_one(".support", Static).render())
        assert "⚠ unsupported by the sources: It was invented by Napoleon in 1802." in support
        assert "✓ [1] (attributed)  Low-rank adaptation freezes" in support
        assert "1/2 sentences supported" in str(view.query_one(".meta", Static).render())
        panel = app.screen.query_one(CitationsPanel)
        assert panel.citations[0]["origin"] == "litlab"  # the source the first sentence has
        assert panel.citations[0]["section"] == "1 Introduction"
        first = panel.query_one(ListView).children[0].query_one(Label)
        assert "(attributed by litlab)" in str(first.render())


@pytest.mark.anyio
async def test_the_app_paints_before_its_settings_load_then_fills_in(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `litlab` hands the app a function that loads the settings; the chat is on screen and
    # takes keys before it returns (pydantic alone costs a tenth of a second of start-up).
    import threading

    release = threading.Event()
    calls = []

    def load():
        calls.append(threading.current_thread().name)
        release.wait(10)
        return load_settings()

    monkeypatch.setenv("LITLAB_TOPK", "3")  # a typo: loading warns about it
    chats = ChatStore(home / "chats.sqlite")
    chats.add_turn(chats.new_conversation("an earlier question"), "an earlier question",
                   "an earlier answer")
    app = LitlabApp(Services(load, client=FakeClient()))
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("h", "i")
        assert app.screen.query_one("#ask", Input).value == "hi"  # typing works at once
        assert "starting" in str(app.screen.query_one("#server", Static).render())
        assert len(app.screen.query_one("#conversation-list", ListView)) == 0
        release.set()
        await app.workers.wait_for_complete()
        await pilot.pause()
        await app.workers.wait_for_complete()
        assert calls and calls[0] != threading.main_thread().name  # never on the UI thread
        assert "ready" in str(app.screen.query_one("#server", Static).render())
        assert len(app.screen.query_one("#conversation-list", ListView)) == 1
        # Its warning is a notification, not a line written over the screen.
        assert any("LITLAB_TOPK" in n.message for n in app._notifications)


@pytest.mark.anyio
async def test_settings_that_do_not_load_close_the_app_with_their_error(home: Path) -> None:
    from agentlab.errors import ConfigError

    def load():
        raise ConfigError("litlab.toml: top_k must be at least 1", "fix it and run litlab again")

    app = LitlabApp(Services(load, client=FakeClient()))
    async with app.run_test(size=(140, 40)) as pilot:
        for _ in range(100):  # the settings load after the first paint
            await pilot.pause(0.05)
            if app.startup_error is not None:
                break
    assert isinstance(app.startup_error, ConfigError)

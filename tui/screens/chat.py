"""The chat: conversations on the left, the answer streaming in the middle, its sources on the
right. Answers run in a worker thread; the input never waits for them."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Input, Label, ListItem, ListView, Select, Static

from tui.widgets.citations import CitationsPanel

if TYPE_CHECKING:
    from tui.widgets.message import MessageView


def _message(role: str, text: str = "", message_id: int | None = None) -> MessageView:
    """A turn's view. Imported when the first one is shown: Textual's Markdown (markdown-it)
    is 50 ms of the app's start-up, and the chat opens empty."""
    from tui.widgets.message import MessageView

    return MessageView(role, text, message_id)


class Stopped(Exception):
    """The person pressed the stop key."""


class ChatScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "stop", "Stop"),
        Binding("ctrl+n", "new_conversation", "New chat"),
        Binding("f2", "app.switch_mode('library')", "Library"),
        Binding("f10", "app.switch_mode('evals')", "Evals"),
        Binding("f12", "app.switch_mode('models')", "Models"),
        Binding("f3", "thumb(1)", "👍"),
        Binding("f4", "thumb(-1)", "👎"),
        Binding("f5", "edit_answer", "Edit answer"),
        Binding("f6", "copy_answer", "Copy"),
        Binding("ctrl+b", "copy_bibtex", "Copy BibTeX", show=False),  # in the help (F1)
        Binding("f7", "toggle_agent", "Agent mode"),
        Binding("ctrl+o", "evidence", "Evidence", show=False),  # in the help (F1)
        Binding("ctrl+t", "app.switch_mode('check')", "Check a draft", show=False),
        Binding("f8", "rename", "Rename", show=False),  # in the help (F1)
        Binding("f9", "export", "Export", show=False),
        Binding("ctrl+delete", "delete_conversation", "Delete chat", show=False),
        Binding("f1", "app.push_screen('help')", "Help"),
    ]
    DEFAULT_CSS = """
    #conversations { width: 28; border-right: solid $primary; }
    #conversations ListView { height: 1fr; }
    #center { width: 1fr; }
    #messages { height: 1fr; padding: 0 1; }
    #toolbar { height: 3; }
    #toolbar Select { width: 1fr; }
    #toolbar #model { width: 2fr; }
    #toolbar #mode { width: 14; padding: 1 1; }
    #toolbar #feedback { width: auto; padding: 1 1; color: $text-muted; display: none; }
    #server { height: 1; padding: 0 1; background: $panel; }
    #server.up { color: $success; }
    #server.down { color: $error; }
    #ask { dock: bottom; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.conversation: int | None = None
        self.agent_mode = False
        self._stop = threading.Event()
        self._busy = False
        self._server_state: tuple[str, bool | None] = ("starting…", None)
        self._conversation_ids: list[int] = []
        self._models: list[str] = []
        self._prompts: list[str] = []  # the prompt templates, once loaded
        self._pickers_ready = False

    @property
    def services(self) -> Any:
        return self.app.services  # type: ignore[attr-defined]

    def compose(self) -> ComposeResult:
        with Horizontal():
            with Vertical(id="conversations"):
                yield Label("[b]Conversations[/b]  (ctrl+n new)")
                yield ListView(id="conversation-list")
            with Vertical(id="center"):
                yield Static("server: starting…", id="server", markup=False)
                with Horizontal(id="toolbar"):  # the pickers join it after the first paint
                    yield Label("answer", id="mode")
                    yield Label("", id="feedback")
                yield VerticalScroll(id="messages")
                yield Input(placeholder="Ask about the papers in your library…", id="ask")
            yield CitationsPanel()
        yield Footer()

    def on_mount(self) -> None:
        self._show_server()
        self.query_one("#ask", Input).focus()
        self.call_after_refresh(self._mount_pickers)

    async def _mount_pickers(self) -> None:
        """The model and prompt pickers, mounted once the chat is on screen: two Selects were
        a fifth of the first paint (bench/startup.py), and nothing can be picked before the
        settings and the server's model list arrive anyway."""
        names = self._prompts or ["rag"]
        await self.query_one("#toolbar", Horizontal).mount(
            Select([], prompt="model", id="model", allow_blank=True),
            Select([(n, n) for n in names], value="rag" if "rag" in names else names[0],
                   allow_blank=False, id="prompt"),
            before=0)
        self._pickers_ready = True
        self._show_models()

    def _select(self, name: str) -> Select[str] | None:
        """A picker, or None before it is mounted."""
        return self.query_one(f"#{name}", Select) if self._pickers_ready else None

    def settings_loaded(self) -> None:
        """The app loaded the settings (after the first paint): what needs them can load."""
        self.load_conversations()
        self.load_prompts()
        self.count_feedback()

    # -- server status (the app calls these) -------------------------------------------------------
    def server_status(self, text: str, ok: bool | None = None) -> None:
        """Show the server's state (kept until the screen is mounted, if it is not yet)."""
        self._server_state = (text, ok)
        if self.is_mounted:
            self._show_server()

    def _show_server(self) -> None:
        text, ok = self._server_state
        w = self.query_one("#server", Static)
        w.update(f"server: {text}")
        w.set_class(ok is True, "up")
        w.set_class(ok is False, "down")

    def set_models(self, models: list[str]) -> None:
        self._models = models
        if self.is_mounted:
            self._show_models()

    def _show_models(self) -> None:
        models = self._models
        select = self._select("model")
        if select is None:
            return  # shown when the picker is mounted
        chosen = self.chosen_model()  # a choice the person made survives a refreshed list
        select.set_options([(m, m) for m in models])
        if models:
            select.value = chosen or self.services.default_model(models)

    def pick_model(self, name: str) -> None:
        """Answer with ``name`` from now on (the Models screen's choice)."""
        select = self._select("model")
        if name in self._models and select is not None:
            select.value = name

    @work(thread=True, group="feedback-count", exclusive=True)
    def count_feedback(self) -> None:
        """How much the person's feedback has collected for fine-tuning (DPO pairs)."""
        counts = self.services.chats.preference_counts()
        text = f"feedback: {counts['pairs']} pair{'s' if counts['pairs'] != 1 else ''}" \
            if counts["rated"] else ""
        self.app.call_from_thread(self._show_feedback, text)

    def _show_feedback(self, text: str) -> None:
        label = self.query_one("#feedback", Label)
        label.update(text)
        label.display = bool(text)  # no room taken from the model picker until there is some

    def chosen_model(self) -> str | None:
        """The model picked in the toolbar, or None while the picker has no served model in it
        (before the server's list arrives). Never a widget's sentinel: only a name the server
        listed."""
        select = self._select("model")
        value = select.value if select is not None else None
        return value if isinstance(value, str) and value in self._models else None

    def chosen_prompt(self) -> str:
        select = self._select("prompt")
        value = select.value if select is not None else None
        return value if isinstance(value, str) else "rag"

    @work(thread=True, group="prompts")
    def load_prompts(self) -> None:
        from agentlab.prompts import template_names

        names = template_names(self.services.settings.home_dir, taking="question")
        self.app.call_from_thread(self._set_prompts, names)

    def _set_prompts(self, names: list[str]) -> None:
        if not names:
            return  # keep the built-in "rag" option
        self._prompts = names
        chosen = self.chosen_prompt()
        select = self._select("prompt")
        if select is None:
            return  # the picker is mounted with these
        select.set_options([(n, n) for n in names])
        select.value = chosen if chosen in names else ("rag" if "rag" in names else names[0])

    # -- conversations ---------------------------------------------------------------------------
    def load_conversations(self) -> None:
        lv = self.query_one("#conversation-list", ListView)
        lv.clear()
        self._conversation_ids = []
        for c in self.services.chats.conversations():
            self._conversation_ids.append(c.id)
            lv.append(ListItem(Label(c.title, markup=False)))

    @on(ListView.Selected, "#conversation-list")
    def open_conversation(self, event: ListView.Selected) -> None:
        index = event.list_view.index
        if index is None or self._busy:
            return
        self.conversation = self._conversation_ids[index]
        messages = self.query_one("#messages", VerticalScroll)
        messages.remove_children()
        last: MessageView | None = None
        for m in self.services.chats.messages(self.conversation):
            view = _message(m.role, m.content, m.id)
            view.citations = m.citations
            messages.mount(view)
            if m.role == "assistant":
                last = view
        self.query_one(CitationsPanel).show(last.citations if last else [])
        messages.scroll_end(animate=False)

    def action_new_conversation(self) -> None:
        if self._busy:
            return
        self.conversation = None
        self.query_one("#messages", VerticalScroll).remove_children()
        self.query_one(CitationsPanel).show([])
        self.query_one("#ask", Input).focus()

    def action_delete_conversation(self) -> None:
        if self.conversation is not None and not self._busy:
            self.services.chats.delete(self.conversation)
            self.action_new_conversation()
            self.load_conversations()
            self.notify("conversation deleted")

    def action_rename(self) -> None:
        from tui.screens.edit import EditScreen

        if self.conversation is None:
            self.notify("nothing to rename yet: ask a question first", severity="warning")
            return
        current = next((c.title for c in self.services.chats.conversations()
                        if c.id == self.conversation), "")

        def done(title: str | None) -> None:
            if title and self.conversation is not None:
                self.services.chats.rename(self.conversation, title)
                self.load_conversations()

        self.app.push_screen(EditScreen("Rename conversation", current, single_line=True), done)

    def action_export(self) -> None:
        if self.conversation is None:
            self.notify("nothing to export yet", severity="warning")
            return
        folder = self.services.settings.home_dir / "exports"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"conversation-{self.conversation}.md"
        path.write_text(self.services.chats.export_markdown(self.conversation))
        self.notify(f"exported to {path}")

    # -- asking ----------------------------------------------------------------------------------
    @on(Input.Submitted, "#ask")
    def ask(self, event: Input.Submitted) -> None:
        question = event.value.strip()
        if not question:
            return
        if self._busy:
            self.notify("an answer is still coming: wait, or press Esc to stop it",
                        severity="warning")
            return
        if not self.services.server_ready.is_set():
            self.notify("the model server is still starting; your question will wait for it")
        event.input.value = ""
        messages = self.query_one("#messages", VerticalScroll)
        messages.mount(_message("user", question))
        view = _message("assistant")
        messages.mount(view)
        messages.scroll_end(animate=False)
        self._busy = True
        self._stop.clear()
        # No model chosen yet (the server's list has not arrived): the worker picks the default
        # once the server is up.
        self.answer(question, view, self.chosen_model(), self.chosen_prompt(), self.agent_mode,
                    self._history(view))

    def _history(self, exclude: MessageView) -> list[dict[str, str]]:
        from tui.widgets.message import MessageView

        views = [v for v in self.query(MessageView) if v is not exclude]
        return [{"role": v.role, "content": v.text} for v in views[:-1] if v.text]

    @work(thread=True, group="answer")
    def answer(self, question: str, view: MessageView, model: str | None, prompt: str,
               agent: bool, history: list[dict[str, str]]) -> None:
        call = self.app.call_from_thread
        try:
            try:
                self.services.wait_for_server(self._stop)
            except InterruptedError:
                raise Stopped from None
            model = model or self.services.default_model()
            pieces: list[str] = []
            last = [0.0]

            def on_token(piece: str) -> None:
                if self._stop.is_set():
                    raise Stopped
                pieces.append(piece)
                now = time.monotonic()
                if now - last[0] > 0.05:  # repaint at most 20 times a second
                    last[0] = now
                    call(view.set_text, "".join(pieces))

            if agent:
                from agentlab.agent import Stopped as AgentStopped
                from agentlab.tools import hop

                working = "_the agent is working… (Esc stops it)_"
                call(view.set_text, working)
                hops: list[str] = []

                def on_step(step: Any) -> None:  # each hop on screen as it happens
                    line = hop(step)
                    if line:
                        hops.append(f"{len(hops) + 1}. {line}")
                        call(view.set_text, working + "\n\n" + "\n".join(hops[-8:]))

                try:
                    result = self.services.agent(model).run(question, stop=self._stop,
                                                            on_step=on_step,
                                                            confirm=self._confirm)
                except AgentStopped:
                    raise Stopped from None
            else:
                result = self.services.assistant(model).answer(
                    question, prompt=prompt, history=history, on_token=on_token)
            new = self.conversation is None
            self.conversation, message_id = self.services.chats.save_answer(self.conversation,
                                                                            result)
            if new:
                call(self.load_conversations)
            call(self._finish, view, result, message_id)
        except Stopped:
            call(view.set_meta, "[stopped]")
            call(self._done)
        except Exception as e:  # noqa: BLE001 - every failure is a notification, never a crash
            from litcore.errors import UserError

            if isinstance(e, UserError):
                text = str(e)
            else:  # a bug: the toast says where its traceback is
                log = self.services.log_bug(e)
                text = f"{type(e).__name__}: {e} (a bug: the traceback is in {log})"
            call(view.set_text, f"_error: {text}_")
            call(self.notify, text, title="could not answer", severity="error")
            call(self._done)

    def _confirm(self, question: str) -> bool:
        """Ask the person yes or no from the agent's thread (a modal); Esc on the turn is a
        no."""
        from tui.screens.confirm import ConfirmScreen

        answer: list[bool] = []
        done = threading.Event()

        def reply(yes: bool | None) -> None:
            answer.append(bool(yes))
            done.set()

        self.app.call_from_thread(self.app.push_screen, ConfirmScreen(question), reply)
        while not done.wait(0.1):
            if self._stop.is_set():
                return False
        return answer[0]

    def _finish(self, view: MessageView, result: Any, message_id: int) -> None:
        view.message_id = message_id
        view.answer = result
        view.citations = [c.to_dict() for c in result.citations]
        view.set_text(result.text)
        view.set_reasoning(result.reasoning or _hops(result))
        view.set_support(result.sentences)
        if getattr(result, "abstained", False) or getattr(result, "withheld", False):
            view.set_abstained(result.model_text, withheld=getattr(result, "withheld", False))
        meta = [result.model]
        if result.result is not None:
            meta.append(f"{result.result.completion_tokens} tokens")
        if result.dropped:
            meta.append("removed " + ", ".join(f"[{n}]" for n in result.dropped)
                        + ": no such source")
        if result.unverified:
            meta.append("not evidence: " + ", ".join(f"[{n}]" for n in result.unverified)
                        + " (they do not support their sentence)")
        if result.sentences:
            claims = [s for s in result.sentences if s.claim]
            supported = sum(s.supported for s in claims)
            meta.append(f"{supported}/{len(claims)} sentences supported")
        view.set_meta(" · ".join(meta))
        self.query_one(CitationsPanel).show(view.citations, [s.to_dict() for s in result.sources])
        self._done()

    def _done(self) -> None:
        self._busy = False
        self.query_one("#messages", VerticalScroll).scroll_end(animate=False)

    def action_stop(self) -> None:
        if self._busy:
            self._stop.set()

    # -- the last answer -------------------------------------------------------------------------
    def _last_answer(self) -> MessageView | None:
        from tui.widgets.message import MessageView

        views = [v for v in self.query(MessageView) if v.role == "assistant" and v.message_id]
        if not views:
            self.notify("no answer yet", severity="warning")
        return views[-1] if views else None

    def action_evidence(self) -> None:
        """Each sentence of the last answer with the source's words behind its verdict."""
        view = self._last_answer()
        if view is None:
            return
        if view.answer is None or not view.answer.sentences:
            self.notify("the evidence is kept for answers given in this session, verified "
                        "against their sources", severity="warning")
            return
        from tui.screens.evidence import EvidenceScreen
        from tui.widgets.verdicts import rows_of_answer

        self.app.push_screen(EvidenceScreen(rows_of_answer(view.answer), view.answer.question))

    def action_thumb(self, rating: int) -> None:
        view = self._last_answer()
        if view is not None:
            self.services.chats.set_feedback(view.message_id, rating=rating)
            view.set_meta(f"{'👍' if rating > 0 else '👎'} feedback saved")
            self.notify("thanks: feedback saved for fine-tuning")
            self.count_feedback()

    def action_edit_answer(self) -> None:
        from tui.screens.edit import EditScreen

        view = self._last_answer()
        if view is None:
            return

        def done(text: str | None) -> None:
            if text and text.strip() != view.text.strip():
                self.services.chats.set_feedback(view.message_id, preferred=text)
                view.set_meta("✎ your corrected answer is saved as the preferred one")
                self.count_feedback()

        self.app.push_screen(EditScreen("Edit the answer (saved as the preferred answer)",
                                        view.text), done)

    def action_copy_answer(self) -> None:
        view = self._last_answer()
        if view is not None:
            self.app.copy_to_clipboard(view.text)
            self.notify("answer copied")

    def action_copy_bibtex(self) -> None:
        """BibTeX entries of the papers the last answer cites, to paste into a .bib."""
        view = self._last_answer()
        if view is None:
            return
        from agentlab.check import bibtex

        keys = list(dict.fromkeys(str(c.get("paper")) for c in view.citations))
        if not keys:
            self.notify("this answer cites no paper", severity="warning")
            return
        by_key = {(p.arxiv_id or p.key): p
                  for p in self.services.library.catalog.papers("indexed")}
        papers = [by_key[k] for k in keys if k in by_key]
        if not papers:
            self.notify("the cited papers are no longer in the library", severity="warning")
            return
        self.app.copy_to_clipboard(bibtex(papers))
        self.notify(f"BibTeX of {len(papers)} cited paper(s) copied")

    def action_toggle_agent(self) -> None:
        self.agent_mode = not self.agent_mode
        self.query_one("#mode", Label).update("agent" if self.agent_mode else "answer")
        self.notify("agent mode: the assistant may use tools" if self.agent_mode
                    else "answer mode: retrieval and a cited answer")


def _hops(result: Any) -> str:
    """An agent's answer shows its hops where a model's reasoning goes: what it looked up and
    how the turn ended."""
    if getattr(result, "prompt", "") != "agent":
        return ""
    from agentlab.tools import hop

    lines = [line for line in (hop(s) for s in result.steps) if line]
    return "Hops:\n" + "\n".join(f"{i}. {line}" for i, line in enumerate(lines, start=1))

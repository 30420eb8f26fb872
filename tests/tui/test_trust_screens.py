"""Evidence in the app: an answer leads with the source's own best sentence, quoted; under it
each sentence shows its verdict and the source's words; ctrl+o lists the sentences and shows
the evidence of the selected one; an answer whose own words are all unsupported abstains with
them folded away; the Check screen verifies a pasted draft. The model is fake (these are about
the screens)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, ListView, Static, TextArea

from agentlab.citations import WITHHELD_MESSAGE
from agentlab.settings import load_settings
from tests.tui.fakes import FakeClient
from tui.app import LitlabApp
from tui.services import Services
from tui.widgets.message import MessageView
from tui.widgets.verdicts import VerdictList

QUESTION = "What does low-rank adaptation freeze?"




def make_app(answer: str) -> LitlabApp:
    return LitlabApp(Services(load_settings().settings, client=FakeClient(answer=answer)))


async def ask(pilot) -> MessageView:
    pilot.app.screen.query_one("#ask", Input).value = QUESTION
    await pilot.press("enter")
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    return list(pilot.app.screen.query(MessageView))[-1]


@pytest.mark.anyio
async def test_each_sentence_shows_its_verdict_and_the_selected_one_its_evidence(
        home: Path) -> None:
    app = make_app("Low-rank adaptation freezes the pretrained weights [1]. It reduces the "
                   "trainable parameters by one thousand times.")
    async with app.run_test(size=(140, 40)) as pilot:
        await app.workers.wait_for_complete()
        view = await ask(pilot)
        # the answer line: the source's sentence that answers, quoted and cited, first
        assert view.text.startswith("“Low-rank adaptation freezes the pretrained weights and "
                                    "injects trainable rank decomposition")
        support = str(view.query_one(".support", Static).render())
        assert "✓ [1]" in support and "“Low-rank adaptation freezes the pretrained" in support
        assert "✗ contradicted" in support and "ten thousand" in support
        await pilot.press("ctrl+o")
        await pilot.pause()
        verdicts = app.screen.query_one(VerdictList)
        assert [r.verdict for r in verdicts.rows] == ["supported", "supported", "contradicted"]
        verdicts.query_one(ListView).index = 2
        await pilot.pause()
        detail = str(verdicts.query_one("#verdict-evidence", Static).render())
        assert detail.startswith("Contradicted by [1] Efficient Adaptation of Generative Models")
        assert "the source gives ten thousand" in detail
        await pilot.press("escape")
        await pilot.press("ctrl+b")  # the cited paper, as BibTeX for a .bib
        await pilot.pause()
        assert app.clipboard.startswith("@article{") and \
            "title = {{Efficient Adaptation of Generative Models}}" in app.clipboard


@pytest.mark.anyio
async def test_an_answer_with_nothing_supported_keeps_only_the_sources_line(
        home: Path) -> None:
    app = make_app("Low-rank adaptation was invented in 1850 by telegraph clerks.")
    async with app.run_test(size=(140, 40)) as pilot:
        await app.workers.wait_for_complete()
        view = await ask(pilot)
        # the answer line stands as the answer; the model's words are withheld, behind a fold
        assert view.text.endswith(WITHHELD_MESSAGE) and view.has_class("withheld")
        assert not view.has_class("abstained")
        assert view.text.startswith("“Low-rank adaptation freezes")  # the source's words stay
        assert "telegraph clerks" in str(view.query_one(".model-text", Static).render())
        assert "telegraph" not in view.text


@pytest.mark.anyio
async def test_the_check_screen_verifies_a_pasted_draft(home: Path) -> None:
    app = make_app("unused")
    async with app.run_test(size=(140, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.press("ctrl+t")
        await pilot.pause()
        app.screen.query_one("#draft", TextArea).text = (
            "Low-rank adaptation freezes the pretrained weights. Quantum annealers factor "
            "large semiprimes in polynomial time.")
        await pilot.press("ctrl+r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        verdicts = app.screen.query_one(VerdictList)
        assert [r.verdict for r in verdicts.rows] == ["supported", "not_found"]
        assert "1 supported, 0 contradicted, 1 not found" in str(
            verdicts.query_one("#verdict-summary").render())
        await pilot.press("ctrl+t")  # back to the chat
        await pilot.pause()
        assert app.screen.query("#ask")

"""The Models screen through Textual's pilot: a fine-tuning run started from the screen with a
live loss curve, stopped with Esc and continued, its adapter listed with loss and gate; the
chat counts the preference pairs feedback collected. Real TRL steps on a tiny model; the chat
model is fake (these tests are not about it)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Input, Label

from agentlab.settings import load_settings
from retrievers.library import Library
from tests.finetune.tiny import tiny_model
from tests.tui.fakes import FakeClient
from tui.app import LitlabApp
from tui.screens.models import ModelsScreen
from tui.services import Services


@pytest.fixture
def home(papers_dir: Path) -> Path:
    home = Path(os.environ["LITLAB_HOME"])
    tiny_model(home)
    lib = Library(home)
    assert lib.index_files([papers_dir]).ok
    lib.close()
    return home


@pytest.mark.anyio
async def test_a_run_from_the_models_screen_shows_its_loss_and_adapter(home: Path) -> None:
    (home / "litlab.toml").write_text("")
    app = LitlabApp(Services(load_settings().settings, client=FakeClient()))
    async with app.run_test(size=(150, 45)) as pilot:
        await app.workers.wait_for_complete()
        # Feedback in the chat: the toolbar counts the pairs it makes.
        for n, question in enumerate(("What does low-rank adaptation freeze?",
                                      "Which weights does low-rank adaptation freeze?"), 1):
            app.screen.query_one("#ask", Input).value = question
            await pilot.press("enter")
            await app.workers.wait_for_complete()
            await pilot.press("f5")
            app.screen.query_one("#edit").text = f"LoRA freezes the weights W [1]. ({n})"  # type: ignore[attr-defined]
            await pilot.press("ctrl+s")
            await app.workers.wait_for_complete()
            await pilot.pause()
            label = str(app.screen.query_one("#feedback", Label).render())
            assert f"feedback: {n} pair" in label

        await pilot.press("f12")
        await app.workers.wait_for_complete()
        screen = app.screen
        assert isinstance(screen, ModelsScreen)
        assert screen.query_one(DataTable).row_count == 2  # the packaged base models

        await pilot.press("d")  # DPO on the feedback, in a worker
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not screen.running
        assert screen._live, str(screen.query_one("#train-status", Label).render())
        names = [r["name"] for r in screen._rows]
        dpo = next(r for r in screen._rows if r["method"] == "dpo")
        assert dpo["data"] == "feedback-pairs" and dpo["loss"] is not None
        assert dpo["gate"] == "not evaluated" and len(names) == 3
        status = str(screen.query_one("#train-status", Label).render())
        assert f"adapter {dpo['name']} ready" in status


@pytest.mark.anyio
async def test_escape_stops_a_run_cleanly_and_the_same_key_continues_it(home: Path) -> None:
    (home / "litlab.toml").write_text("")
    from finetune.config import TRAINING_DEFAULTS

    TRAINING_DEFAULTS["sft"]["max_steps"], saved = 400, TRAINING_DEFAULTS["sft"]["max_steps"]
    try:
        app = LitlabApp(Services(load_settings().settings, client=FakeClient()))
        async with app.run_test(size=(150, 45)) as pilot:
            await app.workers.wait_for_complete()
            await pilot.press("f12")
            await app.workers.wait_for_complete()
            screen = app.screen
            assert isinstance(screen, ModelsScreen)
            await pilot.press("s")  # builds the library dataset, then trains
            while not screen._live:
                await pilot.pause(0.2)
            await pilot.press("escape")
            await app.workers.wait_for_complete()
            await pilot.pause()
            status = str(screen.query_one("#train-status", Label).render())
            assert "stopped at step" in status and "press s to continue" in status
            assert not any(r["method"] == "sft" for r in screen._rows)
            runs = list((home / "runs" / "finetune").iterdir())
            assert len(runs) == 1 and list(runs[0].glob("checkpoints/checkpoint-*"))
    finally:
        TRAINING_DEFAULTS["sft"]["max_steps"] = saved


@pytest.mark.anyio
async def test_the_retriever_is_fine_tuned_from_the_models_screen_and_gated(tmp_path: Path,
                                                                            ) -> None:
    from tests.papers import topic_notes

    home = Path(os.environ["LITLAB_HOME"])
    lib = Library(home)
    assert lib.index_files([topic_notes(tmp_path / "notes")]).ok
    lib.close()
    app = LitlabApp(Services(load_settings().settings, client=FakeClient()))
    async with app.run_test(size=(150, 45)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.press("f12")
        await app.workers.wait_for_complete()
        screen = app.screen
        assert isinstance(screen, ModelsScreen)
        await pilot.press("r")  # pairs, real training steps, the candidate's vectors, the gate
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not screen.running and screen._live  # the loss was drawn as it trained
        status = str(screen.query_one("#train-status", Label).render())
        assert "recall@5 on held-out papers" in status and "(p = " in status, status
        adopted = "adopted, search now uses it" in status
        assert adopted or "not adopted, search keeps its embedder" in status, status
        model = app.services.settings.embed_model
        assert model.endswith("/model") if adopted else model == "all-MiniLM-L6-v2"
        assert len(list((home / "retrievers").iterdir())) == 1


@pytest.mark.anyio
async def test_the_recipe_runs_from_the_models_screen_and_is_gated(home: Path) -> None:
    """f: the default recipe (SFT on the library), then the gate; the status line gives the
    verdict and the adapter is listed with it."""
    (home / "litlab.toml").write_text("")
    from finetune.config import TRAINING_DEFAULTS, Method

    saved: dict[Method, Any] = {m: TRAINING_DEFAULTS[m]["max_steps"] for m in ("sft", "grpo")}
    for m in saved:
        TRAINING_DEFAULTS[m]["max_steps"] = 2
    try:
        app = LitlabApp(Services(load_settings().settings, client=FakeClient()))
        async with app.run_test(size=(150, 45)) as pilot:
            await app.workers.wait_for_complete()
            await pilot.press("f12")
            await app.workers.wait_for_complete()
            screen = app.screen
            assert isinstance(screen, ModelsScreen)
            await pilot.press("f")
            await app.workers.wait_for_complete()
            await pilot.pause()
            status = str(screen.query_one("#train-status", Label).render())
            assert "gate (citations)" in status, status
            row = next(r for r in screen._rows if r["name"].startswith("recipe-"))
            assert row["method"] == "sft" and row["gate"] in ("passed", "failed")
            assert f"adapter {row['name']} ready" in status
    finally:
        for m, steps in saved.items():
            TRAINING_DEFAULTS[m]["max_steps"] = steps

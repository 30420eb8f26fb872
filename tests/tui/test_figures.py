"""Figures in the app (pilot and snapshot): an answer's figure source shows its image in the
sources panel and opens full-size; the library screen lists a paper's figures and opens one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, ListView, Static

from agentlab.settings import load_settings
from retrievers.library import Library
from tests.papers import make_figures_pdf
from tests.tui.fakes import FakeClient
from tui.app import LitlabApp
from tui.services import Services
from tui.widgets.citations import CitationsPanel
from tui.widgets.figure import FigureScreen, FigureView


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = Path(os.environ["LITLAB_HOME"])
    lib = Library(home)
    assert lib.index_files([make_figures_pdf(tmp_path / "attention.pdf")]).ok
    lib.close()
    return home


QUESTION = "Which plot shows the attention heatmap?"


def make_app(home: Path) -> LitlabApp:
    """The app whose (fake) model cites the figure source by the number retrieval gives it."""
    from agentlab.assistant import Assistant

    lib = Library(home)
    n = next(s.n for s in Assistant(client=None, model="m", library=lib, figure_k=2)
             .retrieve(QUESTION) if s.figure_id is not None)
    lib.close()
    return LitlabApp(Services(load_settings().settings, client=FakeClient(
        answer=f"Figure 1 is the attention heatmap of layer three [{n}].")))


@pytest.mark.anyio
async def test_an_answers_figure_shows_in_the_sources_and_opens_full_size(home: Path) -> None:
    app = make_app(home)
    async with app.run_test(size=(140, 44)) as pilot:
        await app.workers.wait_for_complete()
        app.screen.query_one("#ask", Input).value = QUESTION
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        panel = app.screen.query_one(CitationsPanel)
        (cited,) = panel.citations
        assert cited["figure"] == "Figure 1" and cited["origin"] == "model"
        index = 0
        panel.query_one(ListView).index = index
        await pilot.pause()
        figure = panel.query_one(FigureView)
        assert figure.display and "▀" in _text(figure)
        assert "Attention heatmap of layer three" in _text(panel.query_one("#citation-text",
                                                                           Static))
        panel.query_one(ListView).focus()
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, FigureScreen)
        assert "▀" in _text(app.screen.query_one("#figure-image", Static))
        await pilot.press("escape")
        assert not isinstance(app.screen, FigureScreen)


@pytest.mark.anyio
async def test_library_screen_lists_a_papers_figures_and_opens_one(home: Path) -> None:
    app = make_app(home)
    async with app.run_test(size=(140, 44)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.press("f2")
        await app.workers.wait_for_complete()
        await pilot.pause()
        app.screen.query_one(DataTable).move_cursor(row=0)
        await pilot.pause()
        figures = app.screen.query_one("#paper-figures", ListView)
        assert len(figures) == 2
        await pilot.press("f")
        await pilot.press("down", "enter")  # the second: the vector bar chart, cropped
        await pilot.pause()
        assert isinstance(app.screen, FigureScreen)
        assert "Accuracy as a function of model size" in _text(
            app.screen.query_one("#figure-caption", Static))
        assert "▀" in _text(app.screen.query_one("#figure-image", Static))


def test_figure_screen_snapshot(home: Path, snap_compare) -> None:
    async def run_before(pilot) -> None:
        await pilot.app.workers.wait_for_complete()
        await pilot.press("f2")
        await pilot.app.workers.wait_for_complete()
        pilot.app.screen.query_one(DataTable).move_cursor(row=0)
        await pilot.pause()
        await pilot.press("f", "enter")
        await pilot.pause()
        # the image file's path lies under this run's temporary home: not part of the picture
        pilot.app.screen.query_one("#figure-path").display = False
        await pilot.pause()

    assert snap_compare(make_app(home), terminal_size=(120, 40), run_before=run_before)


def _text(widget: Static) -> str:
    """What a widget shows, as plain text (its renderable drawn by the app's console)."""
    console = widget.app.console
    with console.capture() as capture:
        console.print(widget.content, width=max(20, widget.size.width))
    return " ".join(capture.get().split())

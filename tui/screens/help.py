"""Keys and what litlab does, in one place."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# litlab

Ask about the papers in your library. Answers cite their sources as **[n]**; the panel on the
right lists them: select one to read the passage, its paper, section and page. A figure among
them shows its image; Enter opens it full-size. Under each answer, every sentence is marked:
✓ supported (with the source's words), ✗ contradicted (with the source's value) or ⚠
unsupported. When the library has nothing on a question, or supports nothing the model wrote,
litlab says so instead of guessing.

| key | chat |
|---|---|
| Enter | ask |
| Esc | stop the answer |
| ctrl+n | new conversation |
| F3 / F4 | thumbs up / down on the last answer |
| F5 | edit the last answer (kept as the preferred answer for fine-tuning) |
| F6 | copy the last answer |
| ctrl+b | copy the BibTeX entries of the papers the last answer cites |
| F7 | answer mode / agent mode (the agent uses tools) |
| F8 / F9 | rename / export the conversation (Markdown, under LITLAB_HOME/exports) |
| ctrl+o | the evidence of the last answer: each sentence, and the source's words behind it |
| ctrl+t | check a draft of your own against the library (ctrl+r checks; ctrl+t comes back) |
| ctrl+delete | delete the conversation |

| key | library (F2) |
|---|---|
| a | add papers: arXiv ids, `?` and a search query, a file or folder path, a `.bib` file or a Zotero data directory (citation keys and collections kept) |
| / | filter the papers |
| Enter | paper details |
| f, then Enter | the paper's figures: open one full-size (Esc closes) |
| delete | remove the selected paper |
| Esc | cancel indexing |

| key | evaluations (F10) |
|---|---|
| r | run the selected suite (live progress; run it again to resume a stopped one) |
| Esc | stop the run |
| space / c | mark a run / compare the selected run with the marked one |

| key | models (F12) |
|---|---|
| s | fine-tune (LoRA SFT) on examples built from your library; live loss curve |
| d | fine-tune (DPO) on your feedback: corrected answers and thumbs up vs down |
| f | the default recipe (SFT, the one measured best), loaded and gated |
| r | fine-tune the retriever (the embedder) on your library, kept only when search gets better |
| Esc | stop the run (a checkpoint is kept; the same key continues it) |
| u | answer with the selected model or adapter in the chat |

The chat's toolbar counts the preference pairs your feedback has collected.

F1 shows this help, ctrl+q quits. The mouse works everywhere.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90; height: 80%; border: thick $accent;
                                  background: $surface; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Markdown(HELP)

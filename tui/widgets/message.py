"""One turn of the conversation: the text as Markdown, reasoning folded away, a status line."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Collapsible, Markdown, Static


class MessageView(Vertical):
    DEFAULT_CSS = """
    MessageView { height: auto; margin: 0 0 1 0; padding: 0 1; }
    MessageView.user { background: $boost; border-left: thick $accent; }
    MessageView.assistant { border-left: thick $success; }
    MessageView .meta { color: $text-muted; }
    MessageView .support { color: $warning; display: none; }
    MessageView.has-support .support { display: block; }
    MessageView Collapsible { display: none; }
    MessageView.has-reasoning #reasoning-fold { display: block; }
    MessageView.abstained #model-text-fold, MessageView.withheld #model-text-fold {
        display: block;
    }
    MessageView.abstained Markdown { color: $warning; }
    """

    def __init__(self, role: str, text: str = "", message_id: int | None = None) -> None:
        super().__init__(classes=role)
        self.role, self.text, self.message_id = role, text, message_id
        self.answer: Any = None  # the Answer, for assistant turns made in this session
        self.citations: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        with Collapsible(title="reasoning", collapsed=True, id="reasoning-fold"):
            yield Static("", classes="reasoning", markup=False)
        yield Markdown(self.text or ("…" if self.role == "assistant" else ""))
        with Collapsible(title="what the model wrote (no sentence of it is supported)",
                         collapsed=True, id="model-text-fold"):
            yield Static("", classes="model-text", markup=False)
        yield Static("", classes="support", markup=False)
        yield Static("", classes="meta", markup=False)

    def set_text(self, text: str) -> None:
        self.text = text
        self.query_one(Markdown).update(text or "…")

    def set_reasoning(self, reasoning: str) -> None:
        if reasoning:
            self.query_one(".reasoning", Static).update(reasoning)
            self.add_class("has-reasoning")

    def set_support(self, sentences: list[Any]) -> None:
        """Which sentences the sources support (with the source's words), which one a source
        contradicts (with its value), and each unsupported one set apart."""
        if not sentences:
            return
        lines = []
        for s in sentences:
            if not s.claim:
                continue
            quote = s.evidence[0] if getattr(s, "evidence", None) else None
            if s.supported:
                how = {"model": "", "answer_line": " (the source's words)"}.get(
                    s.origin or "", " (attributed)")
                lines.append("✓ " + ", ".join(f"[{n}]" for n in s.sources) + how + "  "
                             + _short(s.text))
                if quote is not None and s.origin != "answer_line":  # the line is its quote
                    lines.append(f"    “{_short(quote.quote, 110)}”")
            elif getattr(s, "contradicted", False) and quote is not None:
                lines.append(f"✗ contradicted by [{quote.n}]: " + _short(s.text))
                lines.append(f"    {quote.reason}: “{_short(quote.quote, 100)}”")
            else:
                lines.append("⚠ unsupported by the sources: " + _short(s.text))
        self.query_one(".support", Static).update("\n".join(lines))
        self.add_class("has-support")

    def set_abstained(self, model_text: str, withheld: bool = False) -> None:
        """The model's words were taken out (an abstention, or ``withheld`` after the answer
        line, which stands as the answer); they stay behind a fold."""
        self.query_one(".model-text", Static).update(model_text)
        self.add_class("withheld" if withheld else "abstained")

    def set_meta(self, meta: str) -> None:
        self.query_one(".meta", Static).update(meta)


def _short(text: str, n: int = 100) -> str:
    text = " ".join(text.split())  # one line a sentence, whatever the model wrapped
    return text if len(text) <= n else text[: n - 1] + "…"

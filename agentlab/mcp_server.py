"""litlab's library for other tools: an MCP server (the official ``mcp`` SDK), over stdio for
desktop clients or streamable HTTP.

Tools read the library (``search``, ``search_figures``, ``read``, ``list_papers``, ``paper``),
answer as ``litlab ask`` does (``ask``: retrieval, the model, the answer line, every sentence
verified with its evidence) and verify claims (``check``). The one tool that changes the library,
``index_arxiv``, is registered only when the server was started with ``--allow-write``: a
read-only server has no tool a client (or a paper's text read by a client's model) could use to
change anything. Resources: ``litlab://papers`` and ``litlab://papers/{key}``.

Over HTTP the server listens on 127.0.0.1 unless told otherwise; another interface needs the
``access_token`` setting, sent by clients as ``Authorization: Bearer TOKEN``.
"""

from __future__ import annotations

import hmac
import json
import threading
from typing import Any

from agentlab.settings import Settings
from litcore.errors import UserError

INSTRUCTIONS = (
    "litlab: the person's library of deep-learning papers. search finds passages (paper, "
    "section, pages); read shows a section or a passage with its neighbours; ask answers from "
    "the library with numbered citations and each sentence's verdict (supported, contradicted, "
    "not found) with the source's words; check verifies claims against the library. Quote "
    "passages as the library gives them and cite their paper, section and page.")
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
MAX_BODY = 1_000_000  # bytes a request may carry over HTTP
MAX_TEXT = 20_000  # characters a check may verify in one call


class Backend:
    """What the tools share: the library (opened on first use) and, for ``ask``, a model
    client (the managed server started or reached as ``ask`` does, on first use)."""

    def __init__(self, settings: Settings, client: Any = None) -> None:
        self.settings, self._client = settings, client
        self._library: Any = None
        self.lock = threading.Lock()  # one library, used by one tool call at a time

    @property
    def library(self) -> Any:
        if self._library is None:
            from retrievers.library import Library

            self._library = Library.from_settings(self.settings)
        return self._library

    def client(self) -> Any:
        if self._client is None:
            from agentlab.server import connect

            self._client = connect(self.settings, lambda _msg: None)
        return self._client

    def papers(self) -> list[Any]:
        return list(self.library.catalog.papers("indexed"))

    def find(self, key: str) -> Any:
        p = self.library.catalog.find(key, titles=True)
        if p is None or p.id is None:
            raise UserError(f"no paper '{key}' in the library", "list them with list_papers")
        return p


def _paper(p: Any) -> dict[str, Any]:
    return {"key": p.arxiv_id or p.key, "title": p.title, "authors": p.authors, "year": p.year,
            "arxiv_id": p.arxiv_id, "categories": p.categories, "source": p.source,
            "cite_key": p.cite_key, "tags": p.tags}


def _bounded(k: int, most: int) -> int:
    return max(1, min(int(k), most))


def build_server(settings: Settings, *, allow_write: bool = False, client: Any = None) -> Any:
    """The MCP server over ``settings``' library (``client``: a model client for ``ask``;
    by default the one ``ask`` would use)."""
    from mcp.server.mcpserver import MCPServer
    from mcp.types import ToolAnnotations

    backend = Backend(settings, client)
    server = MCPServer("litlab", instructions=INSTRUCTIONS, log_level="WARNING")
    reading = ToolAnnotations(readOnlyHint=True, openWorldHint=False)

    def guarded(fn: Any) -> Any:
        """One tool call at a time on the library; a litlab error becomes the tool's error
        message (what is wrong and what to do), never a traceback."""
        import functools

        from mcp.server.mcpserver.exceptions import ToolError

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            with backend.lock:
                try:
                    return fn(*args, **kwargs)
                except UserError as e:
                    raise ToolError(f"{e.message} ({e.hint})" if e.hint else e.message) from None

        return run

    @server.tool(annotations=reading)
    @guarded
    def search(query: str, k: int = 5, paper: str | None = None,
               year: int | None = None) -> list[dict[str, Any]]:
        """Search the library's papers by meaning and keywords. Returns passages with their
        paper, title, section, pages and score, best first. paper: an arXiv id or a key, to
        search one paper; year: papers of that year."""
        hits = backend.library.search(query, _bounded(k, 20), paper=paper, year=year)
        return [h.to_dict() for h in hits]

    @server.tool(annotations=reading)
    @guarded
    def search_figures(query: str, k: int = 5) -> list[dict[str, Any]]:
        """Search the figures and tables of the library's papers by what they show (captions,
        and images when a CLIP model is set). Returns label, caption, page and paper."""
        hits = backend.library.search_figures(query, _bounded(k, 20))
        return [{key: v for key, v in h.to_dict().items() if key != "image_path"} for h in hits]

    @server.tool(annotations=reading)
    @guarded
    def read(paper: str, section: str | None = None, chunk_id: int | None = None,
             neighbours: int = 1) -> dict[str, Any]:
        """Read from a paper: a section by its heading or number (section), or a passage found
        by search with the passages around it (chunk_id, neighbours on each side). With
        neither, the paper's sections are listed."""
        p = backend.find(paper)
        chunks = backend.library.catalog.chunks_of(p.id)
        if chunk_id is not None:
            at = next((i for i, c in enumerate(chunks) if c.id == chunk_id), None)
            if at is None:
                raise UserError(f"passage {chunk_id} is not in '{paper}'",
                                "take chunk_id from a search result of this paper")
            n = max(0, min(int(neighbours), 5))
            chosen = chunks[max(0, at - n):at + n + 1]
        elif section:
            wanted = section.strip().lower()
            chosen = [c for c in chunks if wanted in c.section.lower()]
            if not chosen:
                names = sorted({c.section for c in chunks if c.section})
                raise UserError(f"no section '{section}' in '{paper}'",
                                "sections: " + "; ".join(names[:40]))
            chosen = chosen[:12]
        else:
            sections: list[str] = []
            for c in chunks:
                if c.section and c.section not in sections:
                    sections.append(c.section)
            return {"paper": _paper(p), "sections": sections}
        return {"paper": _paper(p), "passages": [
            {"chunk_id": c.id, "section": c.section, "pages": c.pages, "text": c.text}
            for c in chosen]}

    @server.tool(annotations=reading)
    @guarded
    def list_papers() -> list[dict[str, Any]]:
        """The papers in the library: key, title, authors, year."""
        return [_paper(p) for p in backend.papers()]

    @server.tool(annotations=reading)
    @guarded
    def paper(key: str) -> dict[str, Any]:
        """One paper: its metadata, abstract and sections."""
        p = backend.find(key)
        sections: list[str] = []
        for c in backend.library.catalog.chunks_of(p.id):
            if c.section and c.section not in sections:
                sections.append(c.section)
        return {**_paper(p), "abstract": p.abstract, "sections": sections}

    @server.tool(annotations=ToolAnnotations(readOnlyHint=True, openWorldHint=False))
    @guarded
    def ask(question: str) -> dict[str, Any]:
        """Answer a question from the library as litlab does: numbered citations [n] with paper,
        section and page, and every sentence's verdict (supported, contradicted, not_found)
        with the source's own words. When nothing in the library is relevant it says so."""
        from agentlab.assistant import Assistant

        bot = Assistant.from_settings(backend.settings, backend.client(), backend.library)
        answer = bot.answer(question)
        d = answer.to_dict()
        return {"answer": d["answer"], "not_in_library": d["not_in_library"],
                "abstained": d["abstained"], "withheld": d["withheld"], "model": d["model"],
                "citations": [{k: c[k] for k in ("n", "paper", "title", "section", "pages",
                                                 "text") if k in c} for c in d["citations"]],
                "sentences": [{"text": s["text"], "verdict": s["verdict"],
                               "sources": s.get("sources", []),
                               "evidence": s["evidence"]} for s in d["sentences"]]}

    @server.tool(annotations=reading)
    @guarded
    def check(text: str, k: int = 5) -> list[dict[str, Any]]:
        """Verify claims (a sentence, a paragraph, a draft in Markdown or LaTeX) against the
        library. Each sentence: supported (the source sentence quoted, with paper, section and
        page), contradicted (the source's value quoted) or not_found."""
        from agentlab.check import check_draft

        if len(text) > MAX_TEXT:
            raise UserError(f"the text is {len(text)} characters; one call checks at most "
                            f"{MAX_TEXT}", "check it in parts")
        kind = "latex" if "\\begin{" in text or "\\section" in text else "markdown"
        if backend.library.catalog.is_empty():
            raise UserError("the library is empty: nothing to check against",
                            "add papers with `litlab index files PATH`")
        return [c.to_dict() for c in check_draft(text, kind, backend.library,
                                                 k=_bounded(k, 10))]

    if allow_write:
        @server.tool(annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False,
                                                 openWorldHint=True))
        @guarded
        def index_arxiv(ids: list[str]) -> dict[str, Any]:
            """Add arXiv papers to the library by id (e.g. 1706.03762). Downloads them."""
            report = backend.library.index_arxiv(list(ids)[:20])
            return {"added": report.added, "replaced": report.replaced,
                    "unchanged": report.unchanged,
                    "failed": [{"paper": k, "error": e} for k, e in report.failed]}

    @server.resource("litlab://papers", mime_type="application/json")
    def papers_resource() -> str:
        """The papers in the library."""
        with backend.lock:
            return json.dumps([_paper(p) for p in backend.papers()])

    @server.resource("litlab://papers/{key}", mime_type="application/json")
    def paper_resource(key: str) -> str:
        """One paper's metadata and text, section by section."""
        with backend.lock:
            p = backend.find(key)
            body: dict[str, list[str]] = {}
            for c in backend.library.catalog.chunks_of(p.id):
                body.setdefault(c.section or "", []).append(c.text)
            return json.dumps({**_paper(p), "abstract": p.abstract,
                               "sections": [{"section": s, "text": "\n\n".join(t)}
                                            for s, t in body.items()]})

    return server


def http_app(server: Any, *, host: str, token: str | None) -> Any:
    """The streamable HTTP app, behind a bearer token when one is set."""
    from mcp.server.transport_security import TransportSecuritySettings

    security = None if host not in LOCAL_HOSTS else TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"])
    app = server.streamable_http_app(host=host, transport_security=security,
                                     max_request_body_size=MAX_BODY)
    return app if not token else BearerToken(app, token)


class BearerToken:
    """ASGI middleware: every HTTP request carries ``Authorization: Bearer TOKEN`` or gets a
    401 with a JSON error."""

    def __init__(self, app: Any, token: str) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            given = headers.get(b"authorization", b"").decode("latin-1")
            if not hmac.compare_digest(given, f"Bearer {self.token}"):
                body = json.dumps({"error": "missing or wrong token: send "
                                            "'Authorization: Bearer TOKEN' (the access_token "
                                            "setting)"}).encode()
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def listening(host: str, port: int, token: str | None) -> None:
    """Refuse to listen beyond this machine without a token, and say at once (one line) when
    the port is taken. Shared by the MCP server and the API (``serve --api``)."""
    if host not in LOCAL_HOSTS and not token:
        raise UserError(f"listening on {host} would let anyone on the network read the library",
                        "set a token first, `litlab config set access_token SECRET`; clients "
                        "send 'Authorization: Bearer SECRET'")
    import socket

    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError as e:
            raise UserError(f"cannot listen on {host}:{port} ({e.strerror})",
                            "pick another port with --port") from None

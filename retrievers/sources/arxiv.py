"""The arXiv API (Atom), used politely: one connection, at least 3 s between requests, a
User-Agent naming litlab, backoff on 429/503 and connection errors.

The feed has traps this module handles: a bad query answers HTTP 200 with one entry titled
"Error"; an unknown id answers an empty feed; throttling answers a plain "Rate exceeded.".
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from retrievers.errors import LibraryError
from retrievers.sources.arxiv_ids import ArxivId, parse_arxiv_id

API = "https://export.arxiv.org/api/query"
USER_AGENT = "litlab/0.1 (local research assistant; one request every 3 s)"
MAX_SOURCE_BYTES = 200 * 1024 * 1024
NS = {"atom": "http://www.w3.org/2005/Atom", "arxiv": "http://arxiv.org/schemas/atom",
      "opensearch": "http://a9.com/-/spec/opensearch/1.1/"}


class ArxivError(LibraryError):
    """arXiv could not answer, or answered with an error."""


class TransientArxivError(ArxivError):
    """arXiv could not answer now (throttled, unavailable, unreachable): worth trying later."""


@dataclass
class ArxivEntry:
    id: str
    version: int | None
    title: str
    abstract: str
    authors: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    published: str | None = None
    updated: str | None = None
    license: str | None = None
    pdf_url: str | None = None


def _ws(text: str | None) -> str:
    return re.sub(r"\s+", " ", text or "").strip()


def parse_feed(xml: str) -> tuple[list[ArxivEntry], int]:
    """Entries and totalResults of an API answer; raises ArxivError on an error feed."""
    from defusedxml import ElementTree

    if not xml.lstrip().startswith("<"):
        raise ArxivError(f"arXiv answered '{xml.strip()[:60]}'", "wait a minute and run it again")
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as e:
        raise ArxivError(f"arXiv answered malformed XML ({e})", "run it again later") from e
    total = int(root.findtext("opensearch:totalResults", "0", NS) or 0)
    entries = []
    for el in root.findall("atom:entry", NS):
        raw_id = el.findtext("atom:id", "", NS)
        if "/api/errors" in raw_id or _ws(el.findtext("atom:title", "", NS)) == "Error":
            raise ArxivError(f"arXiv rejected the query: {_ws(el.findtext('atom:summary', '', NS))}")
        aid = parse_arxiv_id(raw_id)
        pdf = next((ln.get("href") for ln in el.findall("atom:link", NS)
                    if ln.get("title") == "pdf" or ln.get("type") == "application/pdf"), None)
        entries.append(ArxivEntry(
            id=aid.id, version=aid.version,
            title=_ws(el.findtext("atom:title", "", NS)),
            abstract=_ws(el.findtext("atom:summary", "", NS)),
            authors=[_ws(a.findtext("atom:name", "", NS)) for a in el.findall("atom:author", NS)],
            categories=[c.get("term", "") for c in el.findall("atom:category", NS)],
            published=el.findtext("atom:published", None, NS),
            updated=el.findtext("atom:updated", None, NS),
            license=(el.find("arxiv:license", NS).text if el.find("arxiv:license", NS) is not None
                     else None),
            pdf_url=pdf,
        ))
    return entries, total


class ArxivClient:
    """Metadata, PDFs and e-print sources. ``transport`` lets tests replay recorded answers."""

    def __init__(self, api: str = API, delay: float = 3.0, retries: int = 4,
                 transport: httpx.BaseTransport | None = None, timeout: float = 60.0) -> None:
        self.api = api
        self.delay = delay
        self.retries = retries
        self._last = 0.0
        self.http = httpx.Client(
            headers={"User-Agent": USER_AGENT}, timeout=timeout, follow_redirects=True,
            transport=transport, limits=httpx.Limits(max_connections=1),
        )

    def _get(self, url: str, params: dict[str, Any] | None = None) -> httpx.Response:
        for attempt in range(self.retries + 1):
            wait = self._last + self.delay - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._last = time.monotonic()
            try:
                r = self.http.get(url, params=params)
            except httpx.TransportError as e:
                if attempt == self.retries:
                    raise TransientArxivError(f"cannot reach arXiv ({type(e).__name__})",
                                     "check the network and run it again") from e
            else:
                if r.status_code in (429, 503) and attempt < self.retries:
                    retry_after = r.headers.get("Retry-After", "")
                    time.sleep(float(retry_after) if retry_after.isdigit() else
                               self.delay * 2 ** attempt)
                    continue
                if r.status_code == 404:
                    raise ArxivError(f"arXiv has nothing at {url}")
                if r.status_code == 429 or r.status_code >= 500:
                    raise TransientArxivError(f"arXiv answered HTTP {r.status_code} for {url}",
                                              "run it again later")
                if r.status_code >= 400:
                    raise ArxivError(f"arXiv answered HTTP {r.status_code} for {url}",
                                     "run it again later")
                return r
            time.sleep(self.delay * 2 ** attempt)
        raise AssertionError("unreachable")

    def fetch(self, ids: list[ArxivId]) -> dict[str, ArxivEntry]:
        """Metadata for ids (a versioned id asks for that version); key: the bare id."""
        found: dict[str, ArxivEntry] = {}
        for start in range(0, len(ids), 50):
            part = ids[start:start + 50]
            r = self._get(self.api, {"id_list": ",".join(str(i) for i in part),
                                     "max_results": len(part)})
            entries, _ = parse_feed(r.text)
            found.update({e.id: e for e in entries})
        return found

    def search(self, query: str, max_results: int = 10, page_size: int = 50) -> list[ArxivEntry]:
        """Entries for an arXiv search query (e.g. 'all:"low-rank adaptation"'), paged."""
        out: list[ArxivEntry] = []
        while len(out) < max_results:
            n = min(page_size, max_results - len(out))
            r = self._get(self.api, {"search_query": query, "start": len(out), "max_results": n,
                                     "sortBy": "relevance"})
            entries, total = parse_feed(r.text)
            out += entries
            if not entries or len(out) >= total:
                break
        return out[:max_results]

    def download(self, url: str, dest: Path) -> Path:
        """Download to ``dest`` atomically (a killed download leaves no partial file)."""
        r = self._get(url)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(dest.suffix + ".part")
        tmp.write_bytes(r.content)
        tmp.replace(dest)
        return dest

    def source(self, entry: ArxivEntry, folder: Path) -> Path | None:
        """The e-print source (a tarball or a single gzipped .tex), or None if arXiv has none.
        Raises :class:`TransientArxivError` when arXiv could not answer now."""
        versioned = f"{entry.id}v{entry.version}" if entry.version else entry.id
        try:
            r = self._get(f"https://arxiv.org/e-print/{versioned}")
        except TransientArxivError:
            raise
        except ArxivError:
            return None
        data = r.content
        if data[:2] != b"\x1f\x8b":  # not gzip: a PDF-only submission
            return None
        import io
        import tarfile
        import zlib

        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        raw = inflate.decompress(data, MAX_SOURCE_BYTES + 1)
        if len(raw) > MAX_SOURCE_BYTES:
            raise ArxivError(f"the source of {versioned} unpacks past {MAX_SOURCE_BYTES >> 20} MiB")
        folder.mkdir(parents=True, exist_ok=True)
        if tarfile.is_tarfile(io.BytesIO(raw)):
            path = folder / "source.tar"
            path.write_bytes(raw)
        else:
            path = folder / "main.tex"
            path.write_bytes(raw)
        return path

    def close(self) -> None:
        self.http.close()

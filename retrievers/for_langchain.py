"""The library as a LangChain retriever and tool.

    from retrievers.library import Library
    from retrievers.for_langchain import LibraryRetriever, library_tool

    retriever = LibraryRetriever(library=Library(Path("~/.litlab").expanduser()), k=4)
    docs = retriever.invoke("what does LoRA freeze?")  # list[Document], metadata cites the chunk
    tool = library_tool(retriever)                      # give it to any LangChain agent
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.tools import StructuredTool, create_retriever_tool
from pydantic import ConfigDict

from retrievers.library import Hit, Library


def hit_to_document(hit: Hit) -> Document:
    meta = hit.to_dict()
    text = str(meta.pop("text"))
    return Document(page_content=text, metadata=meta, id=str(hit.chunk.id))


class LibraryRetriever(BaseRetriever):
    """Hybrid (BM25 + dense) search over a litlab library; filters as in ``litlab search``."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    library: Library
    k: int = 5
    paper: str | None = None
    year: int | None = None
    category: str | None = None

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        hits = self.library.search(query, self.k, paper=self.paper, year=self.year,
                                   category=self.category)
        return [hit_to_document(h) for h in hits]


def library_tool(retriever: LibraryRetriever, name: str = "search_library") -> StructuredTool:
    """A tool that returns the matching passages of indexed deep-learning papers."""
    return create_retriever_tool(
        retriever, name,
        "Search the indexed deep-learning papers; returns the most relevant passages.")

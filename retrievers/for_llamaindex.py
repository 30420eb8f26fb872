"""The library as a LlamaIndex retriever.

    from retrievers.library import Library
    from retrievers.for_llamaindex import LibraryRetriever

    retriever = LibraryRetriever(Library(Path("~/.litlab").expanduser()), k=4)
    nodes = retriever.retrieve("what does LoRA freeze?")  # list[NodeWithScore]
    # e.g. RetrieverQueryEngine.from_args(retriever, llm=...) for a query engine
"""

from __future__ import annotations

from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from retrievers.library import Library


class LibraryRetriever(BaseRetriever):
    """Hybrid (BM25 + dense) search over a litlab library, as LlamaIndex nodes."""

    def __init__(self, library: Library, k: int = 5, **filters: object) -> None:
        super().__init__()
        self.library, self.k, self.filters = library, k, filters

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        out = []
        for hit in self.library.search(query_bundle.query_str, self.k,
                                       **self.filters):  # type: ignore[arg-type]
            meta = hit.to_dict()
            text = str(meta.pop("text"))
            out.append(NodeWithScore(node=TextNode(id_=str(hit.chunk.id), text=text,
                                                   metadata=meta), score=hit.score))
        return out

"""litlab's paper library.

Sub-packages along its seams, each depending only on those after it:

- ``search``: hybrid chunk search (BM25 + vectors + label and proximity rankings), figure
  search;
- ``index``: the catalog (``library.sqlite``), vector stores, embedders (MiniLM, its ONNX
  export, CLIP), chunking and the crash-safe index runs;
- ``parsing``: a paper's files into a document (PDF, LaTeX, Markdown, text) with its figures;
- ``sources``: where papers come from (arXiv);

and, below them all, ``records`` (Paper, Chunk, Figure) and ``errors``. :class:`Library`
(``retrievers.library``) is the facade callers use; ``cli`` holds its commands and
``for_langchain`` / ``for_llamaindex`` offer it to those ecosystems.
"""

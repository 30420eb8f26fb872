"""Parsing: a paper's files (PDF, LaTeX, Markdown, text; tarballs unpacked safely) into a :class:`~retrievers.parsing.document.Document` with its figures."""

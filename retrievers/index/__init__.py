"""The index: the catalog (the source of truth), vector stores, embedders, chunking, and the crash-safe index runs that keep them in step."""

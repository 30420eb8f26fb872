"""litlab: retrievers."""

"""Where papers come from: arXiv (its API, ids in every pasted form)."""

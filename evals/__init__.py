"""litlab: evals."""

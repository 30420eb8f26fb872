"""litlab: tui."""

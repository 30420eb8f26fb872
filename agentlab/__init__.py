"""litlab: agentlab."""

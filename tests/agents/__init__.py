"""Stand-in agents (small scripts that behave like disciplined agents) and the town test kit."""

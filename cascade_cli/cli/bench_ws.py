"""cascade bench ws (being built)."""

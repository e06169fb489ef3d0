"""cascade bench api (being built)."""

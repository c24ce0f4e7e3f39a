"""Runtime rules: scopes (collections), effects, and the verdict engine."""

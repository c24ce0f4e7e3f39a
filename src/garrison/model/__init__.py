"""Per-image runtime models: what a container of an image normally does, and its learning states."""

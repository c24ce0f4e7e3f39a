"""Image scanning: inventory, vulnerability matching and compliance checks."""

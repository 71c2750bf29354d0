"""Named reproductions of published findings, each with a verdict."""

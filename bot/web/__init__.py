"""HTTP entry points: the LINE webhook and the operator endpoints."""

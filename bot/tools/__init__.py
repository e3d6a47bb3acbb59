"""Operator and developer tools that never run inside the serving processes."""

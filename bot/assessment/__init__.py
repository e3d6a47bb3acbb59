"""The skills assessment's logic: reading answers, scoring and ranking recommendations."""

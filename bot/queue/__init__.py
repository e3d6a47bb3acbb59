"""Accepted events waiting for a worker: the queue contract, and its Redis and in-process
implementations."""

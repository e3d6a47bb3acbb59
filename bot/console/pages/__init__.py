"""The console's pages, one module per part (each has a ``router``)."""

"""Knowledge the operators edit: schemas, loading, validation, places and queries."""

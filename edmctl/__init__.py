"""edmctl."""

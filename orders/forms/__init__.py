"""Forms of the orders pages, one module per page family."""

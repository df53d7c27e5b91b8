"""Forms of the tenants pages, one module per page family."""

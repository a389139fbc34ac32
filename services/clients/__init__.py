"""Clients of Tollgate's own interfaces, shared by the CLI, the demo and the benches."""

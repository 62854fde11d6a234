"""Helpers shared by every test layer: a real PostgreSQL server, free ports, process control."""

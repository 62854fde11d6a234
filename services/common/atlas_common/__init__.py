"""Shared plumbing of the Atlas services; each service holds only its own domain code."""

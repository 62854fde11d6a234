"""Atlas User Management service."""

VERSION = "0.1.0"

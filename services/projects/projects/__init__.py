"""Atlas Project Management service."""

VERSION = "0.1.0"

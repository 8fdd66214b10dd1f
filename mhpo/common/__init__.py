"""Shared helpers with no project dependencies: atomic file io, the process environment, code hashes."""

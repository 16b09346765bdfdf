"""Decoding Playground: watch how fast decoding methods for language models work."""

__version__ = "0.1.0"

"""Data: the standard library and PyPI corpus, the prompt suites, the numbers task."""

"""Benchmarks: methods and transformers peers on prompt suites, and how faithfully the app times a run."""

"""Runs stored in SQLite and read back for replay."""

"""The errors users see: each message is meant to be read as it is, on one line."""

import argparse
import sys


class PlaygroundError(Exception):
    pass


class StorageError(PlaygroundError):
    """The run database could not be opened, read or written (locked, damaged, read-only, full): a run still
    decodes without it (storage.recorder degrades), a reading command fails with this one line."""

    def __init__(self, message: str, reason: str = ""):
        super().__init__(message)
        self.reason = reason or message  # what failed, without the database's path: what a visitor is told


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a wrong argument is one line ('error: ...', exit status 2) like every other refusal, instead
    of the usage block and then the error; --help still prints the usage."""

    def error(self, message: str):
        sys.stderr.write(f"error: {self.prog}: {message} (see --help)\n")
        sys.exit(2)

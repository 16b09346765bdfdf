"""The errors users see: each message is meant to be read as it is, on one line."""

import argparse
import sys


class PlaygroundError(Exception):
    pass


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a wrong argument is one line ('error: ...', exit status 2) like every other refusal, instead
    of the usage block and then the error; --help still prints the usage."""

    def error(self, message: str):
        sys.stderr.write(f"error: {self.prog}: {message} (see --help)\n")
        sys.exit(2)

"""The one error type users see: its message is meant to be read as it is, on one line."""


class PlaygroundError(Exception):
    pass

"""The models: loading any of them by name or path, and the DA-Transformer class."""

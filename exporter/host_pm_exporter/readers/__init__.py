"""Readers: pure parsers of one file's text, and the functions that fetch that text
through `HostFS` and build the facts a collector needs.  Nothing here imports
prometheus_client."""


class ParseError(ValueError):
    """A file's text is not what the kernel writes there."""

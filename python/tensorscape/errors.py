"""Errors of the tensorscape Python module."""


class RunError(Exception):
    """A run folder or run.h5 that cannot be read: missing, not a tensorscape run, damaged, or written by a
    newer format version. The message is one line naming the file and what is wrong."""

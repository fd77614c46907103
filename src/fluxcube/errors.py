"""Errors that name the file, the place and what was expected."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input: says which file, which line and column (when known), and what was expected."""

    def __init__(self, file: str, message: str, line: int | None = None, column: str | None = None):
        self.file = file
        self.line = line
        self.column = column
        self.message = message
        where = file
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column {column}"
        super().__init__(f"{where}: {message}")

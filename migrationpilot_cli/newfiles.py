"""Files that appear whole or not at all: written under a hidden temporary name in their
directory, then renamed (or linked) onto their real name, which is atomic within a directory.
The one way `rules export -o` and `routing export -o DIR` create a file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO


def temporary(directory: Path, name: str) -> tuple[Path, BinaryIO]:
    """A new, empty file in ``directory`` under a hidden name derived from ``name``, open for
    writing, with the mode any new file gets (0666 less the umask). The caller writes it, then
    puts it in place or removes it. OSError when the directory cannot take it."""
    path = directory / f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    return path, os.fdopen(descriptor, "wb")

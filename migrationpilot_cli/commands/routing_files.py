"""`routing export -o DIR`: an export's files written into a directory so that a proxy reloading
at any moment reads either the old configuration or the new one, never half of one; and
`--check`, the proxy's own checker run on them before they are installed.

* Each file is written whole to a temporary name in DIR, flushed to disk, and renamed over
  its real name (a rename within a directory is atomic); the files another one loads (the
  scripts, routing.conf) are renamed first, the file the proxy starts from last.
* Nothing is renamed until every file is written: a directory that cannot be written (or a
  file where DIR should be) is exit 2 with nothing changed.
* `--check` writes the same export into a temporary directory inside DIR, runs the checker
  there, and installs only when it passes (exit 1 with its message otherwise).
"""

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from migrationpilot_cli import newfiles
from migrationpilot_cli.errors import BadInput, OperationFailed
from migrationpilot_cli.routing import Export

CHECK_TIMEOUT = 60  # seconds


def directory_of(value: Path) -> Path:
    """``-o``'s directory, absolute (symbolic links kept: the files name the path given),
    checked before any work: a file there is exit 2."""
    directory = Path(os.path.abspath(value))
    if directory.exists() and not directory.is_dir():
        raise BadInput(f"-o {value}: not a directory; nothing written")
    return directory


def install(render: Callable[[Path], Export], directory: Path, *, check: bool) -> Export:
    """Write ``render(directory)``'s files into ``directory`` (made when missing), once
    ``render`` of a temporary directory passed the checker when ``check``."""
    with _made(directory):
        if check:
            _check(render, directory)
        exported = render(directory)
        _write(exported, directory)
    return exported


@contextlib.contextmanager
def _made(directory: Path) -> Iterator[None]:
    """``directory`` and its missing parents, removed again when what follows fails."""
    missing = [path for path in (directory, *directory.parents) if not path.exists()]
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _unwritable(directory, error) from error
    try:
        yield
    except BaseException:
        for path in missing:  # the deepest first
            with contextlib.suppress(OSError):
                path.rmdir()
        raise


def _unwritable(directory: Path, error: OSError) -> BadInput:
    return BadInput(f"-o {directory}: cannot write there ({error.strerror}); nothing written")


def _write(exported: Export, directory: Path) -> None:
    temporary: list[tuple[Path, Path]] = []
    try:
        for name in exported.directories:
            (directory / name).mkdir(exist_ok=True)
        for file in exported.files:
            copy = _temporary_copy(directory, file.name, file.text)
            temporary.append((copy, directory / file.name))
    except OSError as error:
        for path, _ in temporary:
            path.unlink(missing_ok=True)
        raise _unwritable(directory, error) from error
    for path, destination in temporary:
        os.replace(path, destination)
    _sync(directory)


def _temporary_copy(directory: Path, name: str, text: str) -> Path:
    """``text`` in a new file of ``directory`` (mode 0666 less the umask, as any new file),
    flushed to disk; renamed into place later."""
    path, stream = newfiles.temporary(directory, name)
    try:
        with stream:
            stream.write(text.encode())
            stream.flush()
            os.fsync(stream.fileno())
    except OSError:
        path.unlink(missing_ok=True)
        raise
    return path


def _sync(directory: Path) -> None:
    """The renames themselves on disk."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _check(render: Callable[[Path], Export], directory: Path) -> None:
    try:
        staging = Path(tempfile.mkdtemp(prefix=".check-", dir=directory))
    except OSError as error:
        raise _unwritable(directory, error) from error
    try:
        exported = render(staging)
        _write(exported, staging)
        assert exported.checker is not None
        argv = exported.checker(str(staging))
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=CHECK_TIMEOUT)
        except FileNotFoundError as error:
            raise OperationFailed(
                f"--check: {argv[0]} is not installed (not on PATH); nothing written"
            ) from error
        except subprocess.TimeoutExpired as error:
            raise OperationFailed(
                f"--check: {argv[0]} took over {CHECK_TIMEOUT} s; nothing written"
            ) from error
        if done.returncode != 0:
            message = _first_complaint(done.stdout + done.stderr).replace(
                str(staging), str(directory)
            )
            raise OperationFailed(f"{' '.join(argv[:2])} failed: {message}; nothing written")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# After nginx's "[emerg]" its process and thread ids ("18676#18676: "), after HAProxy's
# "[ALERT]" its process id ("(18680) : ").
_PROCESS = re.compile(r"^\s*(?:\d+#\d+:|\(\d+\)\s*:)\s*")


def _first_complaint(output: str) -> str:
    """The checker's first error line: nginx's [emerg], HAProxy's [ALERT] (without the
    process id), else its first line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        for marker in ("[emerg]", "[ALERT]"):
            if marker in line:
                return _PROCESS.sub("", line.split(marker, 1)[1]).strip()
    return lines[0] if lines else "no message"

"""A second Python process that works for this one: the import's reader (``_reader``) and
the daily run's helper (``engine._helper``).

The child is this interpreter (``sys.executable``) running a function of an arflow module,
with the arflow this process loaded. It gets its work as JSON on standard input and
answers in frames on standard output, each a 4-byte length and a pickle of one message:
any number of ``(kind, ...)`` messages, then ``("end", ...)``, or ``("error", exception)``
when it failed. Pickle is safe here: both ends are arflow, one started by the other.
"""

from __future__ import annotations

import json
import pickle
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO

from .errors import WorkerFailed as WorkerFailed

_FRAME = struct.Struct("<I")

#: the arflow package this process loaded (its ``__init__.py``), found from this module's
#: own file rather than by importing the whole package: the child checks it loaded the same
_PACKAGE = Path(__file__).resolve().parent / "__init__.py"

Send = Callable[[tuple[Any, ...]], None]


class Child:
    """One child process running ``module.function`` on ``spec``: started at once, so
    that it works while this process does something else; read with :meth:`messages`;
    stopped (killed if still running) when the ``with`` block ends."""

    def __init__(self, module: str, function: str, spec: dict[str, Any], what: str) -> None:
        self.what = what
        root = str(_PACKAGE.parent.parent)
        boot = (
            "import sys\n"
            f"root = {root!r}\n"
            "if root not in sys.path:\n"
            "    sys.path.insert(0, root)\n"
            f"from arflow.{module} import {function}\n"
            f"{function}()\n"
        )
        self._errors: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", boot],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._errors,
            )
        except BaseException:
            self._errors.close()
            raise
        assert self._proc.stdin is not None
        try:
            payload = {**spec, "package": str(_PACKAGE)}
            self._proc.stdin.write(json.dumps(payload).encode())
            self._proc.stdin.close()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def messages(self) -> Iterator[tuple[Any, ...]]:
        """The child's messages as they come, up to and including ``("end", ...)``; the
        child's own exception is raised here."""
        assert self._proc.stdout is not None
        read = self._proc.stdout.read
        while True:
            head = read(_FRAME.size)
            if len(head) < _FRAME.size:
                raise self._stopped()
            size = _FRAME.unpack(head)[0]
            data = read(size)
            if len(data) < size:
                raise self._stopped()  # killed while it wrote a message
            try:
                message = pickle.loads(data)
            except Exception as exc:
                raise WorkerFailed(
                    f"{self.what} sent a broken message ({type(exc).__name__}: {exc})"
                ) from None
            if not isinstance(message, tuple) or not message:
                raise WorkerFailed(f"{self.what} sent a broken message ({type(message).__name__})")
            if message[0] == "error":
                raise message[1]
            yield message
            if message[0] == "end":
                return

    def _stopped(self) -> WorkerFailed:
        """The error for a child whose output ended early: its exit code and last words."""
        self._proc.wait()
        self._errors.seek(0)
        said = self._errors.read().decode(errors="replace").strip()
        return WorkerFailed(
            f"{self.what} stopped (exit code {self._proc.returncode})"
            + (f": {said[-2000:]}" if said else "")
        )

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._errors.close()


def serve(work: Callable[[dict[str, Any], Send], None]) -> None:
    """The child's side: read the spec from standard input, run ``work(spec, send)``, which
    sends its messages and the ``("end", ...)`` one; send what it raised instead."""
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not break the stream

    def send(message: tuple[Any, ...]) -> None:
        _write(out, message)

    spec = json.loads(sys.stdin.buffer.read())
    try:
        if str(_PACKAGE) != spec["package"]:
            raise WorkerFailed(
                f"the child process loaded arflow from {_PACKAGE}, not from "
                f"{spec['package']} as the process that started it did"
            )
        work(spec, send)
    except BaseException as exc:
        try:
            pickle.loads(pickle.dumps(exc))
        except Exception:
            exc = WorkerFailed(f"{type(exc).__name__}: {exc}")
        _write(out, ("error", exc))
    out.flush()


def _write(out: BinaryIO, message: tuple[Any, ...]) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_FRAME.pack(len(data)))
    out.write(data)

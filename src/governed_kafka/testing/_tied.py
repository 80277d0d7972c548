"""Processes that never outlive the process that started them.

A broker started by a test must die with the test run, whether that run ends well,
fails, or is killed with ``SIGKILL``, and whichever thread started the broker. Linux's
``PR_SET_PDEATHSIG`` ties a child to the *thread* that forked it, so it kills brokers
started from a worker thread as soon as that thread ends, and it does not exist on
macOS. Here every process is started through a small keeper (``_keeper.py``) that
holds the read end of a pipe; the starting process holds the only write end, and the
kernel closes it when that process dies, which makes the keeper kill the command.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["TiedProcess"]

_KEEPER = str(Path(__file__).with_name("_keeper.py"))

#: Longest wait for the keeper to report the pid of the command it started.
_PID_TIMEOUT_S = 30.0


class TiedProcess:
    """``command`` running under a keeper, writing its output to ``log_path``.

    :attr:`pid` is the command's own pid: signals (``SIGSTOP``, ``SIGKILL`` ...) go to
    it directly. Raises :class:`OSError` when the command cannot be started; the
    reason is in the log.
    """

    def __init__(
        self,
        command: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> None:
        watch_read, self._watch = os.pipe()
        pid_read, pid_write = os.pipe()
        try:
            with log_path.open("ab") as log:
                self._keeper = subprocess.Popen(
                    [
                        sys.executable,
                        "-I",
                        _KEEPER,
                        str(watch_read),
                        str(pid_write),
                        "--",
                        *command,
                    ],
                    pass_fds=(watch_read, pid_write),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    env=dict(env) if env is not None else None,
                    cwd=cwd,
                )
        except BaseException:
            os.close(self._watch)
            raise
        finally:
            os.close(watch_read)
            os.close(pid_write)
        try:
            self.pid = self._read_pid(pid_read)
        except BaseException:
            self._keeper.kill()
            self._keeper.wait()
            os.close(self._watch)
            raise
        finally:
            os.close(pid_read)

    def _read_pid(self, fd: int) -> int:
        ready, _, _ = select.select([fd], [], [], _PID_TIMEOUT_S)
        text = os.read(fd, 64).decode() if ready else ""
        if not text.strip():
            code = self._keeper.wait()
            msg = f"the process could not be started (keeper exit code {code})"
            raise OSError(msg)
        return int(text)

    @property
    def running(self) -> bool:
        """Whether the command is still alive (its keeper exits when it does)."""
        return self._keeper.poll() is None

    @property
    def returncode(self) -> int | None:
        """The command's exit status once it ended (``128 + n`` for signal ``n``)."""
        return self._keeper.poll()

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the command; a process that already ended is left alone."""
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the command to end; raises :class:`subprocess.TimeoutExpired`."""
        return self._keeper.wait(timeout)

    def kill(self) -> None:
        """``SIGKILL`` the command and wait for it."""
        self.signal(signal.SIGKILL)
        self._keeper.wait()
        self._release()

    def terminate(self, timeout: float) -> None:
        """``SIGTERM`` the command (continued first if paused), ``SIGKILL`` after ``timeout``."""
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            self._keeper.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._release()

    def _release(self) -> None:
        if self._watch >= 0:
            os.close(self._watch)
            self._watch = -1

    def __del__(self) -> None:
        # Dropping the last reference closes the pipe: the keeper then kills the command.
        with contextlib.suppress(Exception):
            self._release()

"""Run one command and kill it when the process that started the keeper dies.

Started by :class:`governed_kafka.testing._tied.TiedProcess` as a script of its own
(``python -I _keeper.py WATCH_FD PID_FD -- COMMAND...``), so it imports the standard
library only. It starts ``COMMAND``, writes the command's pid to ``PID_FD``, and then
blocks reading ``WATCH_FD``, a pipe whose only write end the starting process holds.
That read returns when the starting process closes the pipe or dies in any way,
``SIGKILL`` included, from whichever thread it started the keeper: the keeper then
kills the command at once. The keeper exits with the command's exit status.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading


def _watch(fd: int, child: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(OSError):
        while os.read(fd, 4096):
            pass
    with contextlib.suppress(ProcessLookupError):
        os.kill(child.pid, signal.SIGKILL)


def main(argv: list[str]) -> int:
    """Start the command in ``argv`` and wait for it; see the module docstring."""
    if len(argv) < 4 or argv[2] != "--":
        sys.stderr.write("usage: _keeper.py WATCH_FD PID_FD -- COMMAND...\n")
        return 2
    watch_fd, pid_fd, command = int(argv[0]), int(argv[1]), argv[3:]
    try:
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    except OSError as exc:
        sys.stderr.write(f"cannot start {command[0]!r}: {exc}\n")
        return 127
    os.write(pid_fd, f"{child.pid}\n".encode())
    os.close(pid_fd)
    threading.Thread(target=_watch, args=(watch_fd, child), daemon=True).start()
    while True:
        try:
            code = child.wait()
            break
        except KeyboardInterrupt:  # pragma: no cover - the keeper runs in its own session
            continue
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

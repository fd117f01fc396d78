"""The supervisor between a runner and a command: the command dies with its runner.

The runner starts ``python -I -S supervisor.py FD GRACE ARGV...`` in a new session, so this
process leads the process group that the command and everything it starts belong to. It
starts the command, reports its pid on FD (one end of a socket pair whose other end only
the runner holds) and waits. When the command exits it exits the same way (code or signal).
When FD reads end-of-file, the runner is gone (the kernel closes a dead process's sockets,
whatever killed it, on every POSIX system): it sends SIGTERM to the group, waits up to
GRACE seconds for it to empty, then SIGKILLs the group, itself included.

It ignores SIGTERM, SIGINT and SIGHUP sent to the group (the runner's timeout, cancel and
kill switch), so it outlives the command and reports how the command ended. The script
imports only the standard library's built-in modules, so that it starts quickly.
"""

from __future__ import annotations

import os
import select
import sys
import time

try:  # the C module alone: `signal` imports enum, which took a third of this script's start-up
    import _signal as signal
except ImportError:  # not CPython
    import signal  # type: ignore[no-redef]

PROC = "/proc"
# How often a tear-down looks at whether the group has emptied.
_POLL_SECONDS = 0.02


def proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (index 0 is the state, 2 the
    process group, 3 the session, 19 the start time in clock ticks since boot); None when
    there is no such process or no /proc."""
    try:
        with open(f"{PROC}/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
    except OSError:
        return None
    return stat[stat.rfind(")") + 2 :].split()


def group_members(pgid: int, exclude: int = 0) -> list[int]:
    """The live (not zombie) processes of group ``pgid`` other than ``exclude``, from /proc.
    Raises OSError where there is no /proc."""
    members = []
    for name in os.listdir(PROC):
        if not name.isdigit() or int(name) == exclude:
            continue
        fields = proc_stat(int(name))
        if fields is not None and len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            members.append(int(name))
    return members


_RESTORED = tuple(
    getattr(signal, name) for name in ("SIGPIPE", "SIGXFSZ", "SIGXFZ") if hasattr(signal, name)
)


def _report(fd: int, line: str) -> bool:
    """Tell the runner; False if it is gone already."""
    try:
        os.write(fd, (line + "\n").encode(errors="replace"))
    except OSError:
        return False
    return True


def _noop(signum: int, frame: object) -> None:
    """A handler, not SIG_IGN: an ignored disposition would be inherited by the command."""


def _exit_like(status: int) -> None:
    """End this process the way the command ended, so the runner sees its exit code."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            import resource  # a signal that dumps core would otherwise dump this process

            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        except (ImportError, ValueError, OSError):
            pass
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)
    os._exit(os.waitstatus_to_exitcode(status))


def _tear_down(child: int, grace: float) -> None:
    """The runner is gone: SIGTERM the group, wait for it to empty, SIGKILL what is left."""
    me = os.getpid()
    os.killpg(me, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if child:
            try:
                if os.waitpid(child, os.WNOHANG)[0]:
                    child = 0
            except ChildProcessError:
                child = 0
        try:
            if not group_members(me, exclude=me):
                break
        except OSError:  # no /proc: the command itself is all that can be watched
            if not child:
                break
        time.sleep(_POLL_SECONDS)
    os.killpg(me, signal.SIGKILL)


def main(args: list[str]) -> None:
    fd, grace, argv = int(args[0]), float(args[1]), args[2:]
    os.set_inheritable(fd, False)  # the command must not hold the runner's line open
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _noop)
    try:
        # Python ignores SIGPIPE (and SIGXFSZ); the command gets the defaults, as it would
        # from the runner's own subprocess call.
        child = os.posix_spawnp(argv[0], argv, dict(os.environ), setsigdef=_RESTORED)
    except OSError as exc:
        _report(fd, f"E{exc.strerror or exc}")
        os._exit(127)
    if not _report(fd, str(child)):
        _tear_down(child, grace)
    # poll, not select: the runner's descriptor numbers may pass select's limit of 1024.
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    poller.register(wake_r, select.POLLIN)
    while True:
        pid, status = os.waitpid(child, os.WNOHANG)
        if pid:
            _exit_like(status)
        ready = {ready_fd for ready_fd, _ in poller.poll()}
        if wake_r in ready:
            os.read(wake_r, 512)
        if fd in ready:
            try:
                data = os.read(fd, 64)
            except OSError:
                data = b""
            if not data:
                _tear_down(child, grace)


if __name__ == "__main__":
    main(sys.argv[1:])

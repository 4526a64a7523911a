"""Isolation where bubblewrap cannot start: Gradescope's Docker container, whose seccomp profile forbids creating
namespaces even to root ("Creating new namespace failed: Operation not permitted", containers/bubblewrap#505).

The runner and the student's kernel then run as an unprivileged user of their own, in a session of their own: a
user id drawn at random for this run (2**20 to 2**30, no account: nothing else in the container, or in another
container of the same machine, runs as it, so its process limit and the final kill concern this submission only;
a named `student` shared by all containers would let one student's thousand processes use up another's limit),
with:

- no new privileges (prctl PR_SET_NO_NEW_PRIVS): no setuid program gives root back;
- a seccomp filter (libseccomp's own Python bindings, `python3-seccomp`, or `pyseccomp`, a ctypes wrapper with the
  same interface): socket() for any family but AF_UNIX and AF_NETLINK fails with "Permission denied" (no network:
  no IPv4, IPv6 or raw packets; the kernel talks to its runner over Unix sockets, jupyter_client's transport
  "ipc"; netlink only reads the interfaces, which libzmq asks for), and ptrace, process_vm_readv/writev and
  io_uring fail with "Operation not permitted"; 32-bit system calls kill the process (libseccomp's default);
- resource limits: address space per process (RLIMIT_AS: an allocation beyond it is a MemoryError in the cell),
  processes of that user (RLIMIT_NPROC), size of any file written (RLIMIT_FSIZE), CPU seconds (RLIMIT_CPU), no core
  files; and oom_score_adj 1000, so that if the container's memory runs out its out-of-memory killer takes the
  student's processes, not the grader;
- the grader's files out of reach by permissions (teacher/gradescope.py makes /autograder/source and
  /autograder/results readable by root only), and a home folder of its own in the grader's scratch folder;
- every process of that user killed (SIGKILL, until none is left) when the notebook ends, before the values it
  wrote are read and before any verdict is written.

What bubblewrap gives and this does not: a file system of its own (the student's code sees the container's files
that any user may read: the system, the Python packages, the data), a process tree of its own, an empty /tmp.
"""

import ctypes
import errno
import os
import pwd
import resource
import secrets
import signal
import socket
import sys
import time
from pathlib import Path

import sandbox

PROCESSES = 256  # tasks (threads count) of the user at once: a kernel uses about 10
FILE_SIZE = 256 * 2**20  # bytes of any one file written (the executed notebook with 100 MB of output fits)
PR_SET_NO_NEW_PRIVS = 38
# socket families 0 to AF_MAX - 1 (46 in Linux 6.x; larger ones do not exist: EAFNOSUPPORT); allowed: AF_UNIX (the
# kernel's channels) and AF_NETLINK (reading the interfaces, which libzmq asks for; changing them needs root)
ADDRESS_FAMILIES = 64

# the runner as usual, its kernel on Unix sockets: the seccomp filter leaves no TCP for the default transport
IPC_RUNNER = '''"""teacher/sandbox_runner.py, the kernel's channels on Unix sockets (from teacher/fallback.py)."""
import runpy
import sys

import nbclient
from traitlets.config import Config


class UnixSocketClient(nbclient.NotebookClient):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("config", Config({"KernelManager": {"transport": "ipc"}}))
        super().__init__(*args, **kwargs)


nbclient.NotebookClient = UnixSocketClient
runner = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(runner, run_name="__main__")
'''


def seccomp_module():
    """libseccomp's Python bindings (Debian/Ubuntu: python3-seccomp), else pyseccomp (PyPI); ImportError if neither."""
    try:
        import seccomp
    except ImportError:
        import pyseccomp as seccomp
    return seccomp


def syscall_filter():
    """The seccomp filter: no socket but AF_UNIX, no ptrace, no reading or writing another process's memory."""
    seccomp = seccomp_module()
    rules = seccomp.SyscallFilter(seccomp.ALLOW)
    for family in range(ADDRESS_FAMILIES):  # one rule each: libseccomp compares an argument once per rule
        if family not in (socket.AF_UNIX, socket.AF_NETLINK):
            rules.add_rule(seccomp.ERRNO(errno.EACCES), "socket", seccomp.Arg(0, seccomp.EQ, family))
    for name in ("ptrace", "process_vm_readv", "process_vm_writev", "io_uring_setup"):
        rules.add_rule(seccomp.ERRNO(errno.EPERM), name)
    return rules


class Fallback:
    """Confinement without namespaces; execute.run_submission uses command() and kill_all()."""

    def __init__(self, cpu_seconds, memory=0, processes=PROCESSES, file_size=FILE_SIZE):
        if os.geteuid() != 0:
            raise SystemExit("fallback isolation: the grader must run as root (Gradescope runs run_autograder so)")
        while True:
            self.uid = self.gid = 2**20 + secrets.randbelow(2**30 - 2**20)
            try:
                pwd.getpwuid(self.uid)
            except KeyError:  # no account has it
                break
        self.user = f"uid {self.uid}"
        self.memory, self.cpu_seconds = memory, int(cpu_seconds)
        self.processes, self.file_size = processes, file_size
        self.filter = syscall_filter()  # built here: the child between fork and exec only loads it
        self.killed = 0

    def describe(self):
        limits = f"address space {self.memory / 2**30:g} GiB per process" if self.memory else "no address-space limit"
        return (
            f"a user of its own ({self.user}), no new privileges, seccomp: no socket but Unix sockets, no ptrace; "
            f"{limits}, {self.processes} processes, files up to {self.file_size // 2**20} MB, "
            f"{self.cpu_seconds} CPU seconds per process; every process of {self.user} killed before the verdicts"
        )

    def command(self, home, inputs, memory, runner_args, threads=1):
        """(command, env, preexec_fn) that runs the runner on inputs/submission.ipynb as the unprivileged user."""
        home, inputs = Path(home), Path(inputs)
        for folder in (home.parent, home.parent.parent):  # the scratch folders: passable, not listable
            folder.chmod(folder.stat().st_mode | 0o011)
        os.chown(home, self.uid, self.gid)
        home.chmod(0o700)
        (inputs / "ipc_runner.py").write_text(IPC_RUNNER, encoding="utf-8")
        for path in inputs.iterdir():  # copied from the grader's files, which only root may read
            path.chmod(0o644)
        env = sandbox.environment(str(home), threads)
        env.update(TMPDIR=str(home), USER="student", LOGNAME="student")  # the user has no account to look up
        cmd = [sys.executable, str(inputs / "ipc_runner.py"), str(inputs / "sandbox_runner.py")]
        cmd += [str(inputs / "submission.ipynb"), *runner_args]
        self.memory = memory
        return cmd, env, lambda: self.confine(memory)

    def confine(self, memory):
        """In the child, between fork and exec (as root): limits, then the user, then no privileges, then seccomp."""
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
        if memory:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_NPROC, (self.processes, self.processes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.file_size, self.file_size))
        resource.setrlimit(resource.RLIMIT_CPU, (self.cpu_seconds, self.cpu_seconds + 5))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.setgroups([])
        os.setgid(self.gid)
        os.setuid(self.uid)
        if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        self.filter.load()

    def processes_of_user(self):
        """Pids of the user's live processes (zombies excluded: they hold nothing and only their parent reaps them)."""
        found = []
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:  # the status file, not the folder's owner: a non-dumpable process's folder is root's
                status = Path(f"/proc/{entry.name}/status").read_text()
                uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
                state = next(line.split()[1] for line in status.splitlines() if line.startswith("State:"))
            except (OSError, StopIteration, IndexError):  # gone meanwhile
                continue
            if str(self.uid) in uids and state != "Z":
                found.append(int(entry.name))
        return found

    def kill_all(self, rounds=200):
        """SIGKILL every process of the user until none is left (a fork loop is outrun: stopped first, then killed)."""
        for _ in range(rounds):
            pids = self.processes_of_user()
            if not pids:
                return
            for sig in (signal.SIGSTOP, signal.SIGKILL):
                for pid in pids:
                    try:
                        os.kill(pid, sig)
                        self.killed += sig == signal.SIGKILL
                    except ProcessLookupError:
                        pass
            time.sleep(0.02)
        raise RuntimeError(f"processes of {self.user} still alive after {rounds} rounds of SIGKILL")

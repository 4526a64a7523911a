"""The sandbox each submission runs in: bubblewrap (bwrap), the tool Flatpak builds on, inside a cgroup of its own.

Per submission, `command(...)` gives a bwrap command line that runs teacher/sandbox_runner.py with:

- no network (its own network namespace: only a loopback, which the kernel needs to talk to the runner);
- a file system of its own, read-only but for three sized folders in memory: the operating system's /usr, the
  Python environment the grader runs in (`%pip install` cannot change it), the data folder (at /data), the runner
  and the prepared notebook (at /grader); writable only the home folder (HOME_SIZE), /tmp (TMP_SIZE) and /dev/shm
  (SHM_SIZE), each a tmpfs of a bounded size that is gone with the sandbox. Nothing else: not your home folder,
  this repository, the master notebook, the hidden tests, the other submissions or the grader's output;
- its own process tree (killed as a whole when bwrap ends), user id 65534 (nobody), no capabilities, no new user
  namespaces, a new terminal session;
- a cleared environment: only PATH, HOME, LANG and the settings below, none of your environment variables;
- limits per process (prlimit, before bwrap starts): RLIMIT_AS (address space), no core files, RLIMIT_FSIZE;
- limits for the whole submission (`Cgroups`, the kernel's control groups, v2 or v1): its total memory (every
  process, and the files in its tmpfs folders), no swap, a number of processes, a CPU share. Where cgroups are not
  writable, the grader says so and adds RLIMIT_NPROC per process instead.

The runner hands the values and the executed notebook back through file descriptors the grader opened outside the
sandbox (in a folder it cannot see); nothing is read back from the sandbox's folders.
"""

import errno
import os
import re
import resource
import shutil
import signal
import site
import subprocess
import sys
import time
from pathlib import Path

HOME = "/home/student"  # the scratch folder, inside
DATA = "/data"
GRADER = "/grader"
HOME_SIZE = 512 * 2**20  # bytes of the home folder (in memory)
TMP_SIZE = 256 * 2**20  # bytes of /tmp (in memory)
SHM_SIZE = 64 * 2**20  # bytes of /dev/shm (in memory)
PROCESSES = 256  # processes and threads of one submission (a kernel with BLAS and ZMQ threads uses about 30)
# without a cgroup, RLIMIT_NPROC: the kernel counts it against all the processes of the user the sandbox maps to
# (you), so it is set high enough for a desktop session's own; root is not limited by it at all
FALLBACK_PROCESSES = 4096
SYSTEM = ["/usr", "/etc/fonts", "/etc/ssl", "/etc/alternatives"]  # read-only, when they exist
LINKS = ["/bin", "/sbin", "/lib", "/lib32", "/lib64"]  # symlinks into /usr on current distributions
# the interpreter as an absolute path: `../venv/bin/python teacher/grade.py` gives a relative sys.executable, which
# bwrap would look for from the sandbox's working directory; not resolved, so that a virtualenv stays one
PYTHON = os.path.abspath(sys.executable)


def environment(home, threads=1):
    """The kernel's whole environment: nothing from the teacher's."""
    python = str(Path(PYTHON).parent)
    return {
        "PATH": f"{python}:/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "LANG": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": "/tmp/matplotlib" if home == HOME else f"{home}/.matplotlib",
        "IPYTHONDIR": "/tmp/ipython" if home == HOME else f"{home}/.ipython",
        "JUPYTER_RUNTIME_DIR": "/tmp/jupyter" if home == HOME else f"{home}/.jupyter-runtime",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": str(threads),
        "OPENBLAS_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
    }


def python_folders():
    """The folders the grader's Python lives in (its prefix and any site-packages outside it)."""
    folders = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    folders |= {Path(p).resolve() for p in site.getsitepackages() if Path(p).is_dir()}
    if site.ENABLE_USER_SITE and Path(site.getusersitepackages()).is_dir():
        folders.add(Path(site.getusersitepackages()).resolve())
    folders = sorted(f for f in folders if f.is_dir())
    return [f for f in folders if not any(f != g and g in f.parents for g in folders)]


def bwrap_path():
    return shutil.which("bwrap")


def prlimits(memory, cgroup=None):
    """prlimit's options: the address space per process, no core files, the size of one file, and (without a
    cgroup) the number of processes."""
    options = [f"--as={memory}"] if memory else []
    options += ["--core=0", f"--fsize={HOME_SIZE}"]
    if cgroup is None:
        options.append(f"--nproc={FALLBACK_PROCESSES}")
    return options


def command(inputs, data_dir, memory, runner_args, threads=1, cgroup=None):
    """The command line that runs the runner on inputs/submission.ipynb, in the sandbox (in `cgroup`, if given)."""
    cmd = cgroup.enter() if cgroup else []
    cmd += ["prlimit", *prlimits(memory, cgroup), "--"]
    cmd += [bwrap_path(), "--unshare-all", "--unshare-user", "--uid", "65534", "--gid", "65534"]
    cmd += ["--disable-userns", "--die-with-parent", "--new-session", "--clearenv"]
    for name, value in environment(HOME, threads).items():
        cmd += ["--setenv", name, value]
    for path in SYSTEM:
        if Path(path).exists():
            cmd += ["--ro-bind", path, path]
    for path in LINKS:
        if Path(path).is_symlink():
            cmd += ["--symlink", os.readlink(path), path]
        elif Path(path).is_dir():
            cmd += ["--ro-bind", path, path]
    # /dev: bwrap's own (null, zero, random, tty...), read-only but for a sized /dev/shm; /tmp first: a Python
    # environment that lives under /tmp (a CI virtualenv) is then bound on top of it
    cmd += ["--proc", "/proc", "--dev", "/dev", "--size", str(SHM_SIZE), "--tmpfs", "/dev/shm", "--remount-ro", "/dev"]
    cmd += ["--size", str(TMP_SIZE), "--tmpfs", "/tmp"]
    for folder in python_folders():
        if not str(folder).startswith("/usr/"):
            cmd += ["--ro-bind", str(folder), str(folder)]
    cmd += ["--ro-bind", str(Path(data_dir).resolve()), DATA, "--ro-bind", str(inputs), GRADER]
    cmd += ["--size", str(HOME_SIZE), "--perms", "0777", "--tmpfs", HOME, "--chdir", HOME]
    cmd += ["--remount-ro", "/"]  # bwrap's root (a tmpfs holding the mount points) read-only: nothing to fill
    cmd += [PYTHON, f"{GRADER}/sandbox_runner.py", f"{GRADER}/submission.ipynb", *runner_args]
    return cmd


def unsandboxed(scratch, inputs, memory, runner_args, threads=1):
    """(command, env, preexec_fn) for --no-sandbox: the runner as your user, with the memory limit only."""

    def limit():
        if memory:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    env = environment(str(scratch), threads)
    cmd = [PYTHON, str(inputs / "sandbox_runner.py"), str(inputs / "submission.ipynb"), *runner_args]
    return cmd, env, limit


def check(tmp):
    """None if bwrap runs here with these options, else why not (in words)."""
    if not bwrap_path():
        return "bubblewrap is not installed (Debian/Ubuntu: sudo apt-get install bubblewrap)"
    if not shutil.which("prlimit"):
        return "prlimit (util-linux) is not installed"
    if not os.access(PYTHON, os.X_OK):
        return f"the Python interpreter {PYTHON} is not an executable file"
    tmp = Path(tmp)
    (tmp / "in").mkdir(parents=True, exist_ok=True)
    cmd = command(tmp / "in", tmp / "in", 0, [])[:-3] + [PYTHON, "-c", "import nbclient"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        error = result.stderr.strip() or f"exit status {result.returncode}"
        if "No module named" in error:
            return f"inside the sandbox, {PYTHON} cannot import nbclient ({error.splitlines()[-1]})"
        return f"bubblewrap cannot start a sandbox here: {error}"
    return None


# ---------------------------------------------------------------------------------------------- cgroups

CONTROLLERS = ("memory", "pids", "cpu")


def own_cgroups():
    """{"v2": path} or {controller: (mount point, path)} of this process's cgroups, from /proc/self/cgroup."""
    lines = Path("/proc/self/cgroup").read_text().splitlines()
    return {fields[1]: fields[2] for fields in (line.split(":", 2) for line in lines) if len(fields) == 3}


def hierarchies():
    """[(version, mount point, {controllers})] of the cgroup file systems mounted here."""
    found = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[2] in ("cgroup", "cgroup2"):
            found.append((2 if fields[2] == "cgroup2" else 1, fields[1], set(fields[3].split(","))))
    return found


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


class Cgroups:
    """One cgroup per submission, under this process's own cgroup (v2, or v1's memory, pids and cpu hierarchies):
    memory.max (all its processes and its files in memory), no swap, pids.max, cpu.max. `Cgroups.open` gives one, or
    a reason why not (not root, no delegation, a read-only /sys/fs/cgroup)."""

    def __init__(self, version, bases, memory, processes, cpus):
        self.version, self.bases = version, bases  # bases: {controller or "v2": this run's folder}
        self.memory, self.processes, self.cpus = memory, processes, cpus

    @classmethod
    def open(cls, memory, processes=PROCESSES, cpus=1):
        """(Cgroups, None), or (None, why not in words)."""
        try:
            mine = own_cgroups()
            mounts = hierarchies()
            run = f"grader-{os.getpid()}"
            v2 = next((m for v, m, _ in mounts if v == 2), None)
            if v2 and "" in mine:
                base = Path(v2) / mine[""].lstrip("/")
                if set(CONTROLLERS) <= set((base / "cgroup.controllers").read_text().split()):
                    remove_stale(base)
                    enabled = set((base / "cgroup.subtree_control").read_text().split())
                    if not set(CONTROLLERS) <= enabled:  # fails (EBUSY) where this cgroup holds processes, unless root
                        write(base / "cgroup.subtree_control", " ".join(f"+{c}" for c in CONTROLLERS))
                    (base / run).mkdir()
                    write(base / run / "cgroup.subtree_control", " ".join(f"+{c}" for c in CONTROLLERS))
                    return cls(2, {"v2": base / run}, memory, processes, cpus), None
            bases = {}
            for controller in CONTROLLERS:
                mount = next((m for v, m, opts in mounts if v == 1 and controller in opts), None)
                path = next((p for k, p in mine.items() if controller in k.split(",")), None)
                if mount is None or path is None:
                    raise OSError(f"no cgroup hierarchy with the {controller} controller is mounted")
                base = Path(mount) / path.lstrip("/")
                remove_stale(base)
                (base / run).mkdir()
                bases[controller] = base / run
            return cls(1, bases, memory, processes, cpus), None
        except OSError as e:
            return None, f"{e.strerror or e}{f' ({e.filename})' if getattr(e, 'filename', None) else ''}"

    def describe(self):
        memory = f"{self.memory / 2**30:.3g} GB of memory in all" if self.memory else "no memory limit"
        cpus = f"{self.cpus:g} CPU{'s' if self.cpus != 1 else ''}"
        return f"cgroup v{self.version}: {memory} (no swap), {self.processes} processes, {cpus} per submission"

    def create(self, name):
        return Cgroup(self, name)

    def close(self):
        for base in self.bases.values():
            remove(base)


class Cgroup:
    """One submission's cgroup (in each hierarchy for v1)."""

    def __init__(self, cgroups, name):
        self.folders = [base / name for base in cgroups.bases.values()]
        for folder in self.folders:
            folder.mkdir()
        self.version = cgroups.version
        memory, period = cgroups.memory, 100_000
        settings = (
            {
                "memory.max": memory or "max",
                "memory.swap.max": 0,
                "pids.max": cgroups.processes,
                "cpu.max": f"{int(cgroups.cpus * period)} {period}",
            }
            if self.version == 2
            else {
                "memory.limit_in_bytes": memory or -1,
                "memory.memsw.limit_in_bytes": memory or -1,  # after the limit above: it must not be smaller
                "pids.max": cgroups.processes,
                "cpu.cfs_period_us": period,
                "cpu.cfs_quota_us": int(cgroups.cpus * period),
            }
        )
        for key, value in settings.items():
            for folder in self.folders:
                if (folder / key).exists():  # memory.swap.max or memsw: absent without swap accounting
                    write(folder / key, str(value))

    def enter(self):
        """A command prefix that moves itself into this cgroup, then execs the rest (so every child starts in it)."""
        script = 'for f; do [ "$f" = -- ] && break; echo 0 > "$f" || exit 125; shift; done; shift; exec "$@"'
        return ["/bin/sh", "-c", script, "sh", *[str(f / "cgroup.procs") for f in self.folders], "--"]

    def value(self, key):
        for folder in self.folders:
            try:
                return (folder / key).read_text()
            except OSError:
                continue
        return ""

    def peak_memory(self):
        """Bytes: the most memory the submission's processes and files held at once (None if unknown)."""
        text = self.value("memory.peak" if self.version == 2 else "memory.max_usage_in_bytes").strip()
        return int(text) if text.isdigit() else None

    def out_of_memory(self):
        """True if the kernel killed a process of the submission for using more than its memory."""
        text = self.value("memory.events" if self.version == 2 else "memory.oom_control")
        match = re.search(r"^oom_kill (\d+)", text, re.M)
        return bool(match and int(match.group(1)))

    def close(self):
        for folder in self.folders:
            remove(folder)


def remove(folder, seconds=10):
    """Kill every process in the cgroup `folder` (and its children), then remove it."""
    folder = Path(folder)
    if not folder.exists():
        return
    for child in [p for p in folder.iterdir() if p.is_dir()]:
        remove(child, seconds)
    if (folder / "cgroup.kill").exists():
        try:
            write(folder / "cgroup.kill", "1")
        except OSError:
            pass
    deadline = time.monotonic() + seconds
    while True:
        try:
            pids = [int(p) for p in (folder / "cgroup.procs").read_text().split()]
        except OSError:
            pids = []
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            folder.rmdir()
            return
        except OSError as e:
            if e.errno not in (errno.EBUSY, errno.ENOTEMPTY) or time.monotonic() > deadline:
                raise
        time.sleep(0.05)


def remove_stale(base):
    """The cgroups an earlier grader left (killed before it could remove them; its sandboxes died with it: bwrap's
    --die-with-parent): removed if empty. Never one of a grader still running, nor one holding a process."""
    for folder in base.glob("grader-*"):
        pid = folder.name.removeprefix("grader-")
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            for empty in sorted((p for p in folder.glob("**/") if p.is_dir()), key=lambda p: -len(p.parts)):
                try:
                    empty.rmdir()
                except OSError:  # not empty: left alone
                    pass

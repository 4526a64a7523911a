"""The sandbox each submission runs in: bubblewrap (bwrap), the tool Flatpak builds on.

Per submission, `command(...)` gives a bwrap command line that runs teacher/sandbox_runner.py with:

- no network (its own network namespace: only a loopback, which the kernel needs to talk to the runner);
- a file system of its own, made of: the operating system's /usr (read-only), the Python environment the grader
  runs in (read-only: `%pip install` cannot change it), the data folder (read-only, at /data), the runner and the
  prepared notebook (read-only, at /grader), a fresh scratch folder (writable: the home folder and the working
  directory) and an empty /tmp in memory of a bounded size. Nothing else: not your home folder, this repository,
  the master notebook, the hidden tests, the other submissions or the grader's output;
- its own process tree (killed as a whole when bwrap ends), user id 65534 (nobody), no capabilities, no new user
  namespaces, a new terminal session;
- a cleared environment: only PATH, HOME, LANG and the settings below, none of your environment variables;
- a memory limit: RLIMIT_AS (address space) per process, set with prlimit before bwrap starts.
"""

import os
import resource
import shutil
import site
import subprocess
import sys
from pathlib import Path

HOME = "/home/student"  # the scratch folder, inside
DATA = "/data"
GRADER = "/grader"
TMP_SIZE = 256 * 2**20  # bytes of /tmp (in memory)
SYSTEM = ["/usr", "/etc/fonts", "/etc/ssl", "/etc/alternatives"]  # read-only, when they exist
LINKS = ["/bin", "/sbin", "/lib", "/lib32", "/lib64"]  # symlinks into /usr on current distributions


def environment(home, threads=1):
    """The kernel's whole environment: nothing from the teacher's."""
    python = str(Path(sys.executable).parent)
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


def command(scratch, inputs, data_dir, memory, runner_args, threads=1):
    """The command line that runs the runner on inputs/submission.ipynb, in the sandbox."""
    cmd = ["prlimit", f"--as={memory}", "--core=0", "--"] if memory else []
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
    # /tmp first: a Python environment that lives under /tmp (a CI virtualenv) is then bound on top of it
    cmd += ["--proc", "/proc", "--dev", "/dev", "--size", str(TMP_SIZE), "--tmpfs", "/tmp"]
    for folder in python_folders():
        if not str(folder).startswith("/usr/"):
            cmd += ["--ro-bind", str(folder), str(folder)]
    cmd += ["--ro-bind", str(Path(data_dir).resolve()), DATA, "--ro-bind", str(inputs), GRADER]
    cmd += ["--bind", str(scratch), HOME, "--chdir", HOME]
    cmd += [sys.executable, f"{GRADER}/sandbox_runner.py", f"{GRADER}/submission.ipynb", *runner_args]
    return cmd


def unsandboxed(scratch, inputs, memory, runner_args, threads=1):
    """(command, env, preexec_fn) for --no-sandbox: the runner as your user, with the memory limit only."""

    def limit():
        if memory:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    env = environment(str(scratch), threads)
    cmd = [sys.executable, str(inputs / "sandbox_runner.py"), str(inputs / "submission.ipynb"), *runner_args]
    return cmd, env, limit


def check(tmp):
    """None if bwrap runs here with these options, else why not (in words)."""
    if not bwrap_path():
        return "bubblewrap is not installed (Debian/Ubuntu: sudo apt-get install bubblewrap)"
    if not shutil.which("prlimit"):
        return "prlimit (util-linux) is not installed"
    tmp = Path(tmp)
    (tmp / "in").mkdir(parents=True, exist_ok=True)
    (tmp / "home").mkdir(exist_ok=True)
    cmd = command(tmp / "home", tmp / "in", tmp / "in", 0, [])[:-3] + [sys.executable, "-c", "import nbclient"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        return f"bubblewrap cannot start a sandbox here: {result.stderr.strip() or result.returncode}"
    return None

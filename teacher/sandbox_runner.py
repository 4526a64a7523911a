"""Run one prepared submission, cell by cell, then the grader's own last cell: the process inside the sandbox.

    python sandbox_runner.py NOTEBOOK CELL_TIMEOUT FINAL_TIMEOUT < {"final": CELL, "values": PATH, "fds": [V, E]}

teacher/grade.py starts it (inside bubblewrap, or directly with --no-sandbox) in the submission's scratch folder,
which is its working directory and the kernel's. The grader's last cell comes on stdin, read before any of the
student's code runs, so no cell of the student's can read it beforehand (it names the file the values go to). The
process then makes itself non-dumpable: the kernel, a child running as the same user, cannot open its memory or
its files in /proc. Each cell's result is one JSON line on stdout (a file of the grader's, outside the sandbox).
What the grader reads back goes through two file descriptors it opened outside the sandbox (fds V and E, which no
child of this process inherits): the values file's bytes, read here as hostile input (the student's code can
replace it: no link followed, a regular file only, bounded), and the executed notebook. This file uses only
nbformat and nbclient: it is copied into the sandbox alone, without the rest of teacher/.
"""

import ctypes
import errno
import json
import os
import re
import stat
import subprocess
import sys
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError


def record(**event):
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def not_dumpable():
    """prctl(PR_SET_DUMPABLE, 0): the kernel's code cannot read this process's memory or file descriptors."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: nothing to do
        pass


MAX_VALUES = 64 * 2**20  # bytes of the values file passed on (teacher/judge.py refuses more anyway)
MAX_EXECUTED = 64 * 2**20  # bytes of the executed notebook passed on


def read_hostile(path, limit):
    """(bytes, None) or (None, why not): the file at path, if it is a regular file, not a link (nor are its parent
    folders), and at most `limit` bytes. O_NONBLOCK: a FIFO in its place cannot hang the read."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    # the folders opened as paths only (O_PATH): passing through needs no right to list them (the fallback's
    # scratch folders are passable, not listable)
    walk = getattr(os, "O_PATH", os.O_RDONLY) | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_DIRECTORY
    folder = fd = None
    try:
        folder = os.open("/", walk)
        parts = [p for p in path.split("/") if p]
        for part in parts[:-1]:
            inner = os.open(part, walk, dir_fd=folder)
            os.close(folder)
            folder = inner
        fd = os.open(parts[-1], flags | os.O_NONBLOCK, dir_fd=folder)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None, "it is not a regular file (a folder, a FIFO or a device took its place)"
        if info.st_size > limit:
            return None, f"it is larger than {limit // 2**20} MB"
        data = os.read(fd, limit + 1)
        while len(data) <= limit:
            more = os.read(fd, limit + 1 - len(data))
            if not more:
                break
            data += more
        if len(data) > limit:
            return None, f"it is larger than {limit // 2**20} MB"
        return data, None
    except FileNotFoundError:
        return None, "the grader's last cell wrote no values"
    except OSError as e:
        if e.errno == errno.ELOOP:
            return None, "a symbolic link took its place"
        return None, f"it could not be read ({e.strerror})"
    finally:
        for open_fd in (fd, folder):
            if open_fd is not None:
                os.close(open_fd)


def hand_back(fd, data):
    """Write data to the grader's file descriptor and close it."""
    with os.fdopen(fd, "wb") as out:
        out.write(data)


SKIPPED = re.compile(r"^Skipped: this cell needs your (.+?), which is not right yet\.", re.M)


def outcome(cell, seconds, limit):
    """What the grader notes of a cell (never a verdict): its error, a time-out, the exercise a skip waits for."""
    error = next((o for o in cell.outputs if o.output_type == "error"), None)
    stdout = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
    skipped = SKIPPED.search(stdout)
    return {
        "seconds": round(seconds, 3),
        "error": f"{error.ename}: {error.evalue}"[:300] if error else None,
        "timed_out": bool(error) and error.ename == "KeyboardInterrupt" and seconds >= limit,
        "skipped": skipped.group(1) if skipped else None,
    }


def peak(provisioner):
    """The kernel's peak address space in MB (VmPeak: what the memory limit bounds), or None."""
    try:
        status = open(f"/proc/{provisioner.pid}/status").read()
        return int(re.search(r"^VmPeak:\s+(\d+) kB", status, re.M).group(1)) // 1024
    except (OSError, AttributeError, TypeError):
        return None


def first_to_go(pid):
    """The kernel, and every process it starts, first in line for the out-of-memory killer (oom_score_adj 1000, which
    children inherit): a submission over its memory loses its own processes, not this runner and its report."""
    try:
        with open(f"/proc/{int(pid)}/oom_score_adj", "w") as f:
            f.write("1000")
    except (OSError, TypeError, ValueError):  # not Linux, or no such process: nothing to do
        pass


def main(notebook, cell_timeout, final_timeout):
    given = json.loads(sys.stdin.read())
    sys.stdin.close()
    not_dumpable()
    final, values_fd, executed_fd = given["final"], *given["fds"]
    for fd in (values_fd, executed_fd):  # never inherited by the kernel
        os.set_inheritable(fd, False)
    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(
        nb,
        timeout=cell_timeout,
        interrupt_on_timeout=True,
        allow_errors=True,
        kernel_name="python3",
        resources={"metadata": {"path": "."}},
    )
    try:
        # the kernel's own stdout and stderr (not its cells' output) go nowhere: this process's stdout is the grader's
        with client.setup_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
            provisioner = client.km.provisioner
            record(event="kernel", pid=getattr(provisioner, "pid", None), pgid=getattr(provisioner, "pgid", None))
            first_to_go(getattr(provisioner, "pid", None))
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                record(event="start", cell=index)
                start = time.monotonic()
                try:
                    client.execute_cell(cell, index)
                except DeadKernelError:
                    record(event="died", cell=index)
                    return
                record(event="done", cell=index, **outcome(cell, time.monotonic() - start, cell_timeout))
            cell = nbformat.v4.new_code_cell(final)
            cell.metadata["grading"] = "the grader's last cell"
            nb.cells.append(cell)
            record(event="final-start")
            client.timeout = final_timeout
            start = time.monotonic()
            try:
                client.execute_cell(cell, len(nb.cells) - 1)
            except DeadKernelError:
                record(event="died", cell=len(nb.cells) - 1)
                return
            record(event="final", **outcome(cell, time.monotonic() - start, final_timeout), peak=peak(provisioner))
        data, why = read_hostile(given["values"], MAX_VALUES)
        if why:
            record(event="values", problem=why)
        else:
            hand_back(values_fd, data)
            record(event="values", bytes=len(data))
    except Exception as e:  # the kernel did not start, or nbclient failed
        record(event="failed", reason=f"{type(e).__name__}: {e}"[:300])
    finally:
        text = nbformat.writes(nb).encode()
        hand_back(executed_fd, text if len(text) <= MAX_EXECUTED else b"")
        record(event="finished", executed=len(text))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], float(sys.argv[2]), float(sys.argv[3])))

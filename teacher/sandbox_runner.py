"""Run one prepared submission, cell by cell, then the grader's own last cell: the process inside the sandbox.

    python sandbox_runner.py NOTEBOOK CELL_TIMEOUT FINAL_TIMEOUT < final_cell.json

teacher/grade.py starts it (inside bubblewrap, or directly with --no-sandbox) in the submission's scratch folder,
which is its working directory and the kernel's. The grader's last cell comes on stdin, read before any of the
student's code runs, so no cell of the student's can read it beforehand (it names the file the values go to). The
process then makes itself non-dumpable: the kernel, a child running as the same user, cannot open its memory or
its files in /proc. Each cell's result is one JSON line on stdout (a file of the grader's, outside the sandbox);
the executed notebook is written to ./executed.ipynb. This file uses only nbformat and nbclient: it is copied into
the sandbox alone, without the rest of teacher/.
"""

import ctypes
import json
import re
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


def main(notebook, cell_timeout, final_timeout):
    final = json.loads(sys.stdin.read())["final"]
    sys.stdin.close()
    not_dumpable()
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
    except Exception as e:  # the kernel did not start, or nbclient failed
        record(event="failed", reason=f"{type(e).__name__}: {e}")
    finally:
        nbformat.write(nb, "executed.ipynb")
        record(event="finished")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], float(sys.argv[2]), float(sys.argv[3])))

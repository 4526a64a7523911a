"""Running one prepared submission in the sandbox, and reading back what it left.

Everything read back is hostile input (the student's code ran on the other side): the runner's events, its log,
the values and the executed notebook are read from files of the grader's own folder, which the runner wrote
through file descriptors the grader opened (the sandbox cannot see that folder), each opened without following a
link, a regular file only, and at most so many bytes (`judge.read_hostile`).
"""

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import judge
import nbformat
import sandbox
from prepare import first_line

HERE = Path(__file__).resolve().parent
MAX_EVENTS = 16 * 2**20  # bytes of the runner's events (one short line per cell)
MAX_LOG = 2**20  # bytes of the runner's log read back


def kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, TypeError):
        pass


def read_events(progress):
    """The runner's events (dicts with an "event"), from the file its stdout went to; [] if unreadable."""
    try:
        text = judge.read_hostile(progress, MAX_EVENTS, missing_ok=True).decode("utf-8", errors="replace")
    except judge.Garbled:
        return []
    events = []
    for line in text.splitlines():
        if len(line) > 2**16 or judge.nesting(line) > 4:
            continue
        try:
            event = json.loads(line)
        except (json.JSONDecodeError, ValueError, RecursionError):  # a line cut short by the kill
            continue
        if isinstance(event, dict) and isinstance(event.get("event"), str):
            events.append(event)
    return events


@dataclass
class Run:
    events: list
    seconds: float
    stopped_by: str | None
    values: dict | None
    garbled: str = ""
    out_of_memory: bool = False
    peak_memory: int | None = None  # bytes, the whole submission (from its cgroup)
    folder: Path | None = None


def create(path):
    """A new file of the grader's for the runner to write into (never an existing file or a link)."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)


def run_submission(prepared, folder, final, values_path, options, cgroup=None):
    """Run one prepared submission (sandboxed unless --no-sandbox, in `cgroup` if given) in `folder`; return a Run.
    `values_path` is where the grader's last cell writes the values (as the sandbox sees it).

    The values are not parsed here: `load_run_values` does that, in a process of its own.
    """
    inputs, home = folder / "in", folder / "home"
    inputs.mkdir(parents=True)
    nbformat.write(prepared.nb, inputs / "submission.ipynb")
    (inputs / "sandbox_runner.py").write_bytes((HERE / "sandbox_runner.py").read_bytes())
    args = [str(options.cell_timeout), str(options.final_timeout)]
    isolation = getattr(options, "isolation", None)  # teacher/fallback.py, where bubblewrap cannot start
    if options.no_sandbox:
        home.mkdir()
        if isolation:
            cmd, env, limit = isolation.command(home, inputs, options.memory, args, options.threads)
        else:
            cmd, env, limit = sandbox.unsandboxed(home, inputs, options.memory, args, options.threads)
        cwd = home
    else:
        cmd = sandbox.command(inputs, options.data_dir, options.memory, args, options.threads, cgroup)
        env, limit, cwd = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, None, folder
    fds = [create(folder / name) for name in ("progress.jsonl", "runner.log", "values.json", "executed.ipynb")]
    start = time.monotonic()
    try:
        child = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=fds[0],
            stderr=fds[1],
            pass_fds=fds[2:],
            start_new_session=True,  # its own process group, killed as one
            preexec_fn=limit,
        )
    finally:
        for fd in fds:
            os.close(fd)
    RUNNING.add(child.pid)
    try:
        child.stdin.write(json.dumps({"final": final, "values": values_path, "fds": fds[2:]}).encode())
        child.stdin.close()
    except BrokenPipeError:
        pass
    stopped_by = None
    try:
        child.wait(timeout=options.notebook_timeout)
    except subprocess.TimeoutExpired:
        stopped_by = "time limit"
    # kill what is left: the sandbox (bwrap's group; its process tree dies with it, and its cgroup is emptied by
    # the caller); without the sandbox, the kernel's group too (jupyter_client starts it in a session of its own)
    events = read_events(folder / "progress.jsonl")
    for event in events:
        if event["event"] == "kernel" and options.no_sandbox and isinstance(event.get("pgid"), int):
            kill_group(event["pgid"])
    kill_group(child.pid)
    if isolation:  # processes of its user in sessions of their own outlive the group
        isolation.kill_all()
    child.wait()
    RUNNING.discard(child.pid)
    seconds = time.monotonic() - start
    run = Run(read_events(folder / "progress.jsonl"), seconds, stopped_by, None, folder=folder)
    if cgroup is not None:
        run.out_of_memory, run.peak_memory = cgroup.out_of_memory(), cgroup.peak_memory()
    return run


def load_run_values(run):
    """Fill run.values (or run.garbled, why not) from the values the runner handed back."""
    if not any(e["event"] == "final" for e in run.events):
        return run
    problem = next((e.get("problem") for e in run.events if e["event"] == "values" and e.get("problem")), None)
    if problem:
        run.garbled = f"the values file: {str(problem)[:200]}"
        return run
    try:
        run.values = judge.load_values(run.folder / "values.json")
    except judge.Garbled as e:
        run.garbled = str(e)
    return run


def executed_notebook(run):
    """The executed notebook's bytes (bounded), or None."""
    try:
        data = judge.read_hostile(run.folder / "executed.ipynb", 64 * 2**20)
    except judge.Garbled:
        return None
    return data or None


def runner_log(run):
    try:
        return judge.read_hostile(run.folder / "runner.log", MAX_LOG, missing_ok=True).decode(errors="replace")
    except judge.Garbled:
        return ""


def why_no_values(prepared, run, options):
    """Why the grader's last cell gave no values, in words."""
    cells = prepared.nb.cells
    died = next((e for e in run.events if e["event"] == "died"), None)
    started = [e for e in run.events if e["event"] in ("start", "final-start")]
    failed = next((e for e in run.events if e["event"] == "failed"), None)
    final = next((e for e in run.events if e["event"] == "final"), None)

    def where(event):
        cell = event.get("cell")
        if not isinstance(cell, int) or event["event"] == "final-start" or not 0 <= cell < len(cells):
            return "the grader's last cell"
        return f"the cell starting {first_line(cells[cell].source)!r}"

    memory = f"{options.memory / 2**30:.3g} GB" if options.memory else "its"
    finished = any(e["event"] == "finished" for e in run.events)
    if run.out_of_memory and (died or not final or not finished):
        place = f" in {where(died)}" if died else f" while {where(started[-1])} ran" if started else ""
        return f"out of memory{place}: the submission's processes used more than the {memory} limit in all"
    if died:
        return f"the kernel died in {where(died)} (out of memory, or the code ended the process)"
    if run.stopped_by:
        running = f" while {where(started[-1])} ran" if started else ""
        return f"the notebook time limit ({options.notebook_timeout:g} s) passed{running}"
    if failed:
        return f"the notebook could not run: {str(failed.get('reason'))[:300]}"
    if final and final.get("error"):
        if final.get("timed_out"):
            return f"the grader's last cell ran over its {options.final_timeout:g} s limit"
        full = " (the submission filled its home folder)" if "No space left on device" in str(final["error"]) else ""
        return f"the grader's last cell failed: {str(final['error'])[:300]}{full}"
    if run.garbled:
        return f"the values the grader's last cell wrote could not be read: {run.garbled}"
    if not run.events:
        log = runner_log(run).strip().splitlines()
        return "the sandbox did not start" + (f": {log[-1][:300]}" if log else "")
    return "the run stopped before the grader's last cell (see the log)"


# ---------------------------------------------------------------------------------------------- judging, apart

JUDGE_SECONDS = 120  # reading one submission's values and judging them (a few seconds at most when honest)
JUDGE_MEMORY = 3 * 2**30  # address space of the process that does it
RUNNING = set()  # process groups of the sandboxes running now (stopped at once if the grader is told to stop)


def stop_all():
    """Kill every sandbox still running (the grader was told to stop)."""
    for pgid in list(RUNNING):
        kill_group(pgid)


class Failed(Exception):
    """Grading one submission failed outside its sandbox; the message says how."""


def judged(verdict_rows, args):
    """In the judging process: the run's values read back and parsed, then the verdicts."""
    load_run_values(args[4])
    return verdict_rows(*args)


def serve(connection, function, args, memory):
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    try:
        result = (True, function(*args))
    except BaseException as e:  # noqa: BLE001 (anything: it becomes this student's row)
        result = (False, f"{type(e).__name__}: {str(e)[:300]}")
    connection.send(result)
    connection.close()


def in_child(function, args, seconds=JUDGE_SECONDS, memory=JUDGE_MEMORY):
    """function(*args) in a process of its own (multiprocessing's forkserver), under a time and a memory limit:
    what the submission handed back is parsed there, never in the grader. Its result, or Failed saying why."""
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    # imported once, in the server the judging processes fork from: each then starts in milliseconds
    context.set_forkserver_preload(["execute", "reports", "judge", "numpy"])
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=serve, args=(send, function, args, memory), daemon=True)
    process.start()
    send.close()
    try:
        if not receive.poll(seconds):
            raise Failed(f"reading its values and judging them took longer than {seconds} s")
        ok, result = receive.recv()
    except (EOFError, OSError):
        raise Failed("the process reading its values ended without an answer (out of memory?)") from None
    finally:
        process.kill()
        process.join()
        receive.close()
    if not ok:
        raise Failed(f"reading its values and judging them failed: {result}")
    return result

"""Running one prepared submission in the sandbox, and reading back what it left."""

import json
import os
import shutil
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


def kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, TypeError):
        pass


def read_events(progress):
    if not progress.exists():
        return []
    events = []
    for line in progress.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by the kill
            continue
        if isinstance(event, dict) and "event" in event:
            events.append(event)
    return events


@dataclass
class Run:
    events: list
    seconds: float
    stopped_by: str | None
    values: dict | None
    garbled: str = ""


def run_submission(prepared, folder, final, token, options):
    """Run one prepared submission (sandboxed unless --no-sandbox) in `folder`; return a Run."""
    inputs, home = folder / "in", folder / "home"
    inputs.mkdir(parents=True)
    home.mkdir()
    home.chmod(0o777)  # whoever the sandbox's user maps to, it writes here
    nbformat.write(prepared.nb, inputs / "submission.ipynb")
    shutil.copy(HERE / "sandbox_runner.py", inputs / "sandbox_runner.py")
    args = [str(options.cell_timeout), str(options.final_timeout)]
    progress, log = folder / "progress.jsonl", folder / "runner.log"
    isolation = getattr(options, "isolation", None)  # teacher/fallback.py, where bubblewrap cannot start
    if isolation:
        cmd, env, limit = isolation.command(home, inputs, options.memory, args, options.threads)
    elif options.no_sandbox:
        cmd, env, limit = sandbox.unsandboxed(home, inputs, options.memory, args, options.threads)
    else:
        cmd = sandbox.command(home, inputs, options.data_dir, options.memory, args, options.threads)
        env, limit = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, None
    start = time.monotonic()
    with open(progress, "w") as out, open(log, "w") as err:
        child = subprocess.Popen(
            cmd,
            cwd=home,
            env=env,
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=err,
            start_new_session=True,  # its own process group, killed as one
            preexec_fn=limit,
        )
        try:
            child.stdin.write(json.dumps({"final": final}).encode())
            child.stdin.close()
        except BrokenPipeError:
            pass
        stopped_by = None
        try:
            child.wait(timeout=options.notebook_timeout)
        except subprocess.TimeoutExpired:
            stopped_by = "time limit"
    # kill what is left: the sandbox (bwrap's group; its process tree dies with it); without the sandbox, the
    # kernel's group too (jupyter_client starts the kernel in a session of its own)
    for event in read_events(progress):
        if event["event"] == "kernel" and options.no_sandbox:
            kill_group(event.get("pgid"))
    kill_group(child.pid)
    if isolation:  # processes of its user in sessions of their own outlive the group
        isolation.kill_all()
    child.wait()
    seconds = time.monotonic() - start
    events = read_events(progress)
    values, garbled = None, ""
    if any(e["event"] == "final" for e in events):
        try:
            values = judge.load_values(home / f".grader-{token}.json")
        except judge.Garbled as e:
            garbled = str(e)
    return Run(events, seconds, stopped_by, values, garbled)


def why_no_values(prepared, run, options):
    """Why the grader's last cell gave no values, in words."""
    cells = prepared.nb.cells
    died = next((e for e in run.events if e["event"] == "died"), None)
    started = [e for e in run.events if e["event"] in ("start", "final-start")]
    failed = next((e for e in run.events if e["event"] == "failed"), None)
    final = next((e for e in run.events if e["event"] == "final"), None)

    def where(event):
        if event.get("cell") is None or event["event"] == "final-start" or event["cell"] >= len(cells):
            return "the grader's last cell"
        return f"the cell starting {first_line(cells[event['cell']].source)!r}"

    if died:
        return f"the kernel died in {where(died)} (out of memory, or the code ended the process)"
    if run.stopped_by:
        running = f" while {where(started[-1])} ran" if started else ""
        return f"the notebook time limit ({options.notebook_timeout:g} s) passed{running}"
    if failed:
        return f"the notebook could not run: {failed['reason']}"
    if final and final["error"]:
        if final["timed_out"]:
            return f"the grader's last cell ran over its {options.final_timeout:g} s limit"
        return f"the grader's last cell failed: {final['error']}"
    if run.garbled:
        return f"the values the grader's last cell wrote could not be read: {run.garbled}"
    return "the run stopped before the grader's last cell (see the log)"

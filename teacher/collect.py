"""The grader's last cell: collect the values of each exercise's answer, in the student's kernel, as data.

teacher/grade.py sends this file's source and a payload into the kernel as one cell, after the student's last
cell. There it execs the master's helper and check cell of each exercise in a private namespace of its own (the
student's cells cannot have changed them), looks up the learner's final object by the check's ANSWER_NAME_N (the
last definition wins, as after Run all), calls values_N on it for the public cases and for the grader's hidden
cases (their inputs only: the expected results never enter the kernel), and writes everything as JSON, arrays
encoded explicitly, to the file the payload names. Nothing here judges: the verdicts are made by the grader, out
of the kernel's reach. Only NumPy and the standard library are used.
"""

import json
import math
import signal

import numpy as np

ARRAY_KINDS = "biuf"  # bool, signed and unsigned integers, floats
MAX_DEPTH = 40


class GraderStopped(BaseException):
    """values_N ran over the grader's time limit (a BaseException: the checks' `except Exception` let it through)."""


def encode(obj, depth=0):
    """obj as JSON data: arrays as {"__ndarray__": [...], "dtype", "shape"}, inf and nan as {"__float__": "inf"}."""
    if depth > MAX_DEPTH:
        return {"__unencodable__": "nested too deep"}
    if obj is None or type(obj) in (bool, str):
        return obj
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in ARRAY_KINDS:
            return {"__unencodable__": f"array of {obj.dtype}"}
        flat = obj.ravel().tolist()
        if obj.dtype.kind == "f":
            flat = [v if math.isfinite(v) else repr(v) for v in flat]
        return {"__ndarray__": flat, "dtype": obj.dtype.name, "shape": list(obj.shape)}
    if isinstance(obj, dict):
        return {str(key): encode(value, depth + 1) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [encode(value, depth + 1) for value in obj]
    return {"__unencodable__": type(obj).__name__}


def decode(obj):
    """The inverse of encode (for the hidden cases' inputs, which the grader encodes)."""
    if isinstance(obj, list):
        return [decode(value) for value in obj]
    if not isinstance(obj, dict):
        return obj
    if "__ndarray__" in obj:
        flat = [float(v) if isinstance(v, str) else v for v in obj["__ndarray__"]]
        return np.array(flat, dtype=obj["dtype"]).reshape(obj["shape"])
    if "__float__" in obj:
        return float(obj["__float__"])
    return {key: decode(value) for key, value in obj.items()}


def what_failed(error, kind):
    """The exception's type, and on a public case its message: a message raised on a hidden input may carry it."""
    name = type(error).__name__
    name = name if name.isidentifier() and len(name) <= 40 else "an exception"
    return f"{name}: {error}"[:300] if kind == "public" else name


def collect(payload, namespace):
    """{exercise: {"defined": bool, "public": values, "hidden": values}}, written to payload["out"]."""
    seconds = payload["seconds"]

    def stop(signum, frame):
        raise GraderStopped

    signal.signal(signal.SIGALRM, stop)
    collected, namespaces = {}, {}
    for n, check in payload["checks"].items():
        checks = {"np": np, "__name__": f"grader_check_{n}"}
        exec(compile(payload["helper"], "<the checks' helper>", "exec"), checks)
        exec(compile(check, f"<check {n}>", "exec"), checks)
        namespaces[n] = checks
        collected[n] = {"defined": payload["answers"][n] in namespace}
    # every exercise's public cases first, then the hidden ones: the learner's code sees no hidden input before all
    # of its public values are collected (a public value cannot carry a hidden input into the feedback)
    for kind in ("public", "hidden"):
        for n, checks in namespaces.items():
            if kind == "hidden" and n not in payload["hidden"]:
                continue
            cases = [] if kind == "public" else [decode(payload["hidden"][n])]
            entry = collected[n]
            signal.setitimer(signal.ITIMER_REAL, seconds)
            try:
                values = checks[f"values_{n}"](namespace.get(payload["answers"][n]), *cases)
                entry[kind] = encode(values)
            except GraderStopped:
                entry[kind] = {"__grader__": f"its answer ran over the grader's limit of {seconds:g} s"}
            except BaseException as e:  # noqa: BLE001 (the learner's code may raise anything, SystemExit too)
                entry[kind] = {"__grader__": f"collecting its values failed with {what_failed(e, kind)}"}
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
    with open(payload["out"], "w", encoding="utf-8") as f:
        json.dump(collected, f, allow_nan=False)
    print(f"The grader collected the values of {len(collected)} exercises.")

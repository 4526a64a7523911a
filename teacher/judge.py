"""The verdicts, made in the grader's own process from the values the student's kernel handed back as data.

- `MasterChecks` holds the master notebook's helper cell and check cells (their source: the student's copy of a
  check is never used) and, per exercise, execs helper + check in a fresh namespace holding only `np`, to call
  its pure verdict_N(values, cases=None).
- `load_values` reads the values file as hostile input (`read_hostile`: no link followed, a regular file only, at
  most MAX_BYTES; its nesting measured before it is parsed) and strictly: JSON with no NaN or Infinity literals,
  only the encodings of teacher/collect.py (arrays with a numeric or bool dtype and a shape that matches their
  data, non-finite floats); anything else is "garbled", and the submission "did not run", with the reason.
- `judge` turns one exercise's public and hidden values into (status, detail).
"""

import errno
import json
import math
import os
import re
import stat
from dataclasses import dataclass

import numpy as np
import student_edition as se

MAX_BYTES = 64 * 2**20
MAX_ELEMENTS = 10**7
MAX_DEPTH = 50  # teacher/collect.py writes at most 40 levels
# a JSON string: the unrolled loop (no nested quantifier that could backtrack; possessive ones need Python 3.11)
STRINGS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
DTYPES = {"bool", "float16", "float32", "float64", "longdouble", "float128"}
DTYPES |= {f"{sign}int{bits}" for sign in ("", "u") for bits in (8, 16, 32, 64)}
STATUSES = ("right", "wrong", "not attempted")
ANSWER_NAME = re.compile(r"^ANSWER_NAME_(\d+) *= *[\"'](\w+)[\"']", re.M)


class Garbled(Exception):
    """The values file is missing or not what teacher/collect.py writes; the message says how."""


def strict(obj, depth=0):
    """obj (parsed JSON) with collect.py's encodings turned back into NumPy arrays and floats; else Garbled."""
    if depth > 50:
        raise Garbled("nested too deep")
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise Garbled("a non-finite number outside the encoding")
        return obj
    if isinstance(obj, list):
        return [strict(v, depth + 1) for v in obj]
    if not isinstance(obj, dict):
        raise Garbled(f"an unexpected {type(obj).__name__}")
    if "__ndarray__" in obj:
        if set(obj) != {"__ndarray__", "dtype", "shape"} or obj["dtype"] not in DTYPES:
            raise Garbled("an array with unexpected fields or dtype")
        shape, flat = obj["shape"], obj["__ndarray__"]
        if not (isinstance(shape, list) and all(type(s) is int and 0 <= s for s in shape) and isinstance(flat, list)):
            raise Garbled("an array with a malformed shape")
        if len(flat) != math.prod(shape) or len(flat) > MAX_ELEMENTS:
            raise Garbled("an array whose data does not match its shape")
        if not all(type(v) in (int, float, bool) or v in ("inf", "-inf", "nan") for v in flat):
            raise Garbled("an array with entries that are not numbers")
        try:
            return np.array([float(v) if isinstance(v, str) else v for v in flat], dtype=obj["dtype"]).reshape(shape)
        except (ValueError, OverflowError, TypeError) as e:
            raise Garbled(f"an array that does not fit its dtype ({e})") from None
    if "__float__" in obj:
        if set(obj) != {"__float__"} or obj["__float__"] not in ("inf", "-inf", "nan"):
            raise Garbled("a malformed non-finite number")
        return float(obj["__float__"])
    return {key: strict(value, depth + 1) for key, value in obj.items()}


def read_hostile(path, limit, missing_ok=False):
    """The bytes of the file at path, read as hostile input: opened without following a link (neither the file nor
    its folder: openat from the folder, itself opened with O_NOFOLLOW), only a regular file (O_NONBLOCK: a FIFO
    cannot hang the open), at most `limit` bytes (a file that grows while read is cut there, then refused).
    Garbled says why not."""
    path = os.fspath(path)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        folder = os.open(os.path.dirname(path) or ".", flags | os.O_DIRECTORY)
        try:
            fd = os.open(os.path.basename(path), flags | os.O_NONBLOCK, dir_fd=folder)
        finally:
            os.close(folder)
    except FileNotFoundError:
        if missing_ok:
            return b""
        raise Garbled("the grader's last cell wrote no values") from None
    except OSError as e:
        linked = e.errno in (errno.ELOOP, errno.ENOTDIR)  # the file, or its folder (O_DIRECTORY|O_NOFOLLOW)
        what = "a symbolic link" if linked else f"a file that cannot be opened ({e.strerror})"
        raise Garbled(f"{os.path.basename(path)} is {what}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Garbled(f"{os.path.basename(path)} is not a regular file")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(2**20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise Garbled(f"{os.path.basename(path)} is larger than {limit // 2**20} MB")
        return b"".join(chunks)
    except OSError as e:
        raise Garbled(f"{os.path.basename(path)} cannot be read ({e.strerror})") from None
    finally:
        os.close(fd)


def nesting(text):
    """The deepest nesting of [ and { in JSON text, outside its strings (measured before parsing, which recurses)."""
    data = STRINGS.sub(b'""', text.encode("utf-8", errors="replace") if isinstance(text, str) else text)
    codes = np.frombuffer(data, dtype=np.uint8)
    deepest = depth = 0
    for start in range(0, len(codes), 2**20):  # in chunks: a few MB of memory for a file of 64 MB
        chunk = codes[start : start + 2**20]
        steps = (chunk == ord("[")).view(np.int8) + (chunk == ord("{")).view(np.int8)
        steps -= (chunk == ord("]")).view(np.int8) + (chunk == ord("}")).view(np.int8)
        levels = depth + np.cumsum(steps, dtype=np.int64)
        deepest, depth = max(deepest, int(levels.max())), int(levels[-1])
    return deepest


def load_values(path):
    """{exercise number: {"defined": bool, "public": values, "hidden": values}} from the values file; or Garbled."""
    return parse_values(read_hostile(path, MAX_BYTES))


def parse_values(raw):
    """The values file's bytes, parsed and checked strictly; or Garbled."""
    if nesting(raw) > MAX_DEPTH:
        raise Garbled(f"the values file is nested more than {MAX_DEPTH} levels deep")

    def no_constants(name):
        raise Garbled(f"{name} in the values file")

    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=no_constants)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise Garbled(f"the values file is not valid JSON ({str(e)[:200]})") from None
    except (ValueError, RecursionError) as e:  # a number of more than 4,300 digits, say
        raise Garbled(f"the values file cannot be parsed ({str(e)[:200]})") from None
    if not isinstance(data, dict) or not all(re.fullmatch(r"\d+", k) for k in data):
        raise Garbled("the values file is not a dict keyed by exercise numbers")
    values = {}
    for key, entry in data.items():
        if not isinstance(entry, dict) or not set(entry) <= {"defined", "public", "hidden"} or "public" not in entry:
            raise Garbled(f"exercise {key}'s entry is malformed")
        values[int(key)] = {name: strict(value) for name, value in entry.items()}
    return values


@dataclass
class Check:
    number: int
    answer_name: str
    source: str  # the check cell, as Python


class MasterChecks:
    """The master's helper and check cells, by exercise number."""

    def __init__(self, master):
        exercises = se.find_exercises(master)
        helper = se.helper_index(master)
        if helper is None:
            raise ValueError("the master has no helper cell shared by the checks (one that defines run_check)")
        self.helper = se.python_source(se.source(master.cells[helper]))
        self.checks = {}
        for n, ex in exercises.items():
            text = se.python_source(se.source(master.cells[ex.check]))
            names = dict((int(k), v) for k, v in ANSWER_NAME.findall(text))
            missing = [f"{w}_{n}" for w in ("values", "verdict") if not re.search(rf"^def {w}_{n}\(", text, re.M)]
            if n not in names or missing:
                raise ValueError(
                    f"the master's check for exercise {n} does not follow the check interface (README, For teachers): "
                    f"it lacks {', '.join(missing + ([] if n in names else [f'ANSWER_NAME_{n}']))}"
                )
            self.checks[n] = Check(n, names[n], text)

    def namespace(self, n):
        """A fresh namespace holding np, the helper's code and exercise n's check code."""
        namespace = {"np": np, "__name__": f"master_check_{n}"}
        exec(compile(self.helper, "<the master's helper>", "exec"), namespace)
        exec(compile(self.checks[n].source, f"<the master's check {n}>", "exec"), namespace)
        return namespace

    def verdict(self, n, values, cases=None):
        """verdict_N(values[, cases]) -> (status, reason); a verdict that fails on odd values is "wrong"."""
        namespace = self.namespace(n)
        try:
            with np.errstate(all="ignore"):
                result = namespace[f"verdict_{n}"](values, *([] if cases is None else [cases]))
            status, reason = result
        except Exception as e:  # values the check could not read: the learner's answer is of an odd kind
            return "wrong", f"the check could not read the values of your answer ({type(e).__name__}: {e})"
        if status not in STATUSES:
            return "wrong", f"the check gave an unknown verdict {status!r}"
        return status, str(reason)


def grader_note(values):
    """The reason collect.py wrote instead of values (a time limit, a failure), or None."""
    return values.get("__grader__") if isinstance(values, dict) else None


def judge(checks, n, entry, hidden):
    """(status, detail) of exercise n from its collected entry and the hidden cases given (with "expected")."""
    return judge_with_notes(checks, n, entry, hidden)[:2]


def hidden_note_words(note):
    """What collect.py said instead of hidden values, in the grader's own words: the time limit, or the type of the
    exception. The note is the kernel's (a forged values file can hold any text), so no other text of it is kept."""
    limit = re.fullmatch(r"its answer ran over the grader's limit of (\d+(?:\.\d+)?) s", str(note))
    if limit:
        return f"your answer ran over the grader's limit of {limit.group(1)} s"
    failed = re.match(r"collecting its values failed with (\w{1,40})\b", str(note))
    if failed:
        return f"your answer failed with {failed.group(1)}"
    return "your answer could not be run"


def kinds_of(cases):
    """The distinct kinds of these hidden cases, in order ("an unnamed case" for a case without one)."""
    return list(dict.fromkeys(str(case.get("kind") or "a case without a description") for case in cases))


def failing_kinds(checks, n, values, hidden):
    """The kinds of the hidden cases the master's verdict finds wrong one by one (values_N's runs, one per case);
    all their kinds when the values are not one run per case, or no single case is wrong on its own."""
    runs = values.get("runs") if isinstance(values, dict) else None
    if isinstance(runs, list) and len(runs) == len(hidden):
        failing = [
            case
            for case, run in zip(hidden, runs)
            if checks.verdict(n, {**values, "runs": [run]}, [case])[0] != "right"
        ]
        if failing:
            return kinds_of(failing)
    return kinds_of(hidden)


def judge_with_notes(checks, n, entry, hidden):
    """(status, detail, teacher's note) of exercise n. The detail goes to the student (grades.csv, feedback): on the
    hidden cases it names the kinds of case that fail, in words, never an input, an expected value or what the
    learner's code said on one. The teacher's note (teacher-notes.csv) may hold the master's verdict on them."""
    if entry is None:
        return "did not run", "the grader's last cell collected nothing for this exercise", ""
    public = entry["public"]
    if grader_note(public):
        return "did not run", grader_note(public), ""
    status, reason = checks.verdict(n, public)
    if status == "not attempted" and not reason:
        name = checks.checks[n].answer_name
        if not entry.get("defined"):
            reason = f"the notebook defines no {name} (its cell is missing, or never ran)"
        elif name.startswith("my_"):  # a function the learner writes
            reason = f"{name} still returns None (or raises NotImplementedError): write your code, ending in a return"
        else:  # a value
            reason = f"{name} is still None: put your answer in place of the None, then run the cell"
    if status != "right" or not hidden:
        return status, reason, ""
    values = entry.get("hidden")
    if values is None:
        return "did not run", "right on the notebook's cases, but its hidden cases were not collected", ""
    if grader_note(values):
        words = hidden_note_words(grader_note(values))
        note = f"on the hidden cases: {grader_note(values)}"
        return "wrong", f"right on the notebook's cases, but on the grader's hidden cases {words}", note
    hidden_status, hidden_reason = checks.verdict(n, values, hidden)
    if hidden_status == "right":
        return "right", f"{reason} (and right on {len(hidden)} hidden case{'s' * (len(hidden) != 1)})", ""
    kinds = failing_kinds(checks, n, values, hidden)
    which = f"this kind: {kinds[0]}" if len(kinds) == 1 else "these kinds: " + "; ".join(kinds)
    detail = f"right on the notebook's cases, but wrong on the grader's hidden cases of {which}"
    return "wrong", detail, f"the master's verdict on the hidden cases: {hidden_status}: {hidden_reason}"

"""The graded student edition's value checks: they confirm an answer's form only, and hold no answer.

An exercise that asks for a value (the shapes of exercise 3, one number, one name, one word per learning rate) has
few possible answers, and the master's check holds a fingerprint of the right one (and of typical slips): a
student who can call that check in a loop finds the answer without working it out. In the graded edition (the
default of teacher/student_edition.py) such a check keeps the master's `values_N` (the grader collects the same
data) and says only whether the answer has the form asked for (a dict of tuples of whole numbers, a number, one of
the names, one of the words): any well-formed answer, right or wrong, gets the same line, "answered: ... graded
after you hand the notebook in". Every fingerprint is left out of the cell. The grader judges the answer outside the
kernel with the master's own verdict_N, as for every exercise. The practice edition (`--practice`) keeps the
master's checks, with their instant verdicts.

Each value exercise's form check is here, keyed by its answer's name (as teacher/hidden_tests.py is); a value
exercise without one (a teacher's own) gets ANY_FORM: any answer in place of None is "answered". Either way, the
build stops if the graded check still holds anything that looks like a fingerprint.
"""

import ast
import json
import re
from textwrap import wrap as text_wrap

FINGERPRINT = re.compile(r"^[0-9a-f]{16}$")  # the master's SHA-256 fingerprints (digest(): 16 hex digits)
ANYWHERE = re.compile(r"[\"']([0-9a-f]{16})[\"']")  # as a string anywhere in the cell

GRADED_LATER = (
    "this graded edition's check looks only at the form of a value answer; whether it is right, the grader says "
    "after you hand the notebook in"
)

# answer name -> (what the form is, in words; the verdict's code after the not-attempted and type checks). FORM_N is
# the list the stub's keys give (the shapes' names, the learning rates), made by form_constants.
FORMS = {
    "predicted_shapes": (
        "a tuple of whole numbers for each of SHAPE_NAMES",
        '''    predicted = values.get("value")
    if values.get("not_attempted") or predicted is None:
        return "not attempted", ""
    if not isinstance(predicted, dict):
        return "wrong", f"give a dict of name -> shape, such as {{'dW2': (5, 784), ...}}, not {predicted!r}"
    if all(shape is None for shape in predicted.values()):
        return "not attempted", "the shapes are None: put your tuples in their places"
    for name in FORM_N:
        shape = predicted.get(name)
        if shape is None:
            return "wrong", f"no prediction for {name} yet: put a tuple such as (5, 784) in its place"
        if isinstance(shape, int) and not isinstance(shape, bool):
            return "wrong", (
                f"the shape of {name} is a tuple, and ({shape}) is just the number {shape} in brackets: a tuple with"
                f" one entry needs a comma, ({shape},)"
            )
        if not isinstance(shape, list):
            return "wrong", f"the shape of {name} is a tuple of whole numbers, such as (5, 784), not {shape!r}"''',
    ),
    "dW1_11": (
        "one number",
        '''    value = values.get("value")
    if values.get("not_attempted") or value is None:
        return "not attempted", ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "wrong", f"enter one number (such as 0.1234), not {value!r}"''',
    ),
    "first_wrong": (
        "the name of one of backward's gradients",
        '''    name = values.get("value")
    if values.get("not_attempted") or name is None:
        return "not attempted", ""
    if not isinstance(name, str):
        return "wrong", f'give the gradient\\'s name as a string, such as "W2", not {name!r}'
    name = name.strip().removeprefix("d")
    if name not in ORDER_N:
        return "wrong", f"{name!r} is not one of backward's gradients: {', '.join(ORDER_N)}"''',
    ),
    "lr_predictions": (
        "one of the allowed words for each learning rate",
        '''    predicted = values.get("value")
    if values.get("not_attempted") or predicted is None:
        return "not attempted", ""
    if not isinstance(predicted, dict):
        return "wrong", f"give a dict of learning rate -> prediction, not {predicted!r}"
    if all(word is None for word in predicted.values()):
        return "not attempted", "the predictions are None: put your words in their places"
    for rate in FORM_N:
        word = predicted.get(rate)
        if word is None or str(word).strip().lower() not in WORDS_N:
            return "wrong", f"the prediction for {rate} is {word!r}: use one of {WORDS_N}"''',
    ),
}


def wrap(text, width):
    """text cut into pieces of about `width` characters at spaces, which put together give text again."""
    return text_wrap(text, width, drop_whitespace=False, break_on_hyphens=False) or [text]


# a value exercise FORMS does not know (a teacher's own): any answer in place of None is "answered"
ANY_FORM = (
    "an answer in place of None",
    '''    value = values.get("value")
    if values.get("not_attempted") or value is None:
        return "not attempted", ""''',
)


def is_value_exercise(ex):
    return not ex.function_name


def holds_fingerprint(node):
    return any(
        isinstance(c, ast.Constant) and isinstance(c.value, str) and FINGERPRINT.match(c.value) for c in ast.walk(node)
    )


def stub_keys(stub_source, name):
    """The keys of the dict the learner's stub assigns to `name` ({"dW2": None, ...}: the names asked for), as
    values_N writes them (learning rates as str(float)); [] when the stub is no such dict."""
    for node in ast.parse(stub_source).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return []
            if isinstance(value, dict):
                return [str(float(k)) if isinstance(k, (int, float)) else str(k) for k in value]
    return []


def graded_check(check_source, ex, stub_source):
    """Exercise ex's check cell for the graded edition (the master's check cell as Python: `check_source`).

    Kept as in the master: every function (values_N and check_...), and the constants that hold no fingerprint
    (the data an exercise is worked from, the allowed names and words). Replaced: the title (it says the check is
    of the form only), cases_N (no answer to hold), verdict_N (the form check). Left out: every assignment that
    holds a fingerprint.
    """
    n, name = ex.number, ex.learner_name
    if not re.search(rf"^def verdict_{n}\(", check_source, re.M):
        return check_without_interface(check_source, ex)
    what, body = FORMS.get(name, ANY_FORM)
    lines = check_source.splitlines()
    tree = ast.parse(check_source)
    keys = stub_keys(stub_source, name)
    described = what.replace("SHAPE_NAMES", ", ".join(keys[:-1]) + " and " + keys[-1] if keys else "")
    code = body.replace("FORM_N", f"FORM_{n}").replace("ORDER_N", f"ORDER_{n}").replace("WORDS_N", f"WORDS_{n}")
    verdict = (
        (f"FORM_{n} = {json.dumps(keys)}  # what the answer is made of (the stub's keys)\n\n\n" if keys else "")
        + f"def verdict_{n}(values, cases=None):\n"
        + f'    """The form of the answer only ({described}):\n    "answered", or why it is not in that form."""\n'
        + f"{code}\n"
        + '    return "answered", (\n'
        + "".join(f"        {json.dumps(part)}\n" for part in wrap(f"{described}, as asked; {GRADED_LATER}", 100))
        + "    )"
    )
    cases = (
        f'def cases_{n}():\n    """A value exercise: no inputs to try; this edition holds no answer."""\n    return []'
    )
    replaced = {f"cases_{n}": cases, f"verdict_{n}": verdict}
    used = {node.id for node in ast.walk(ast.parse(verdict)) if isinstance(node, ast.Name)}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name not in replaced:
            used |= {name.id for name in ast.walk(node) if isinstance(name, ast.Name)}
    out, at = [], 0
    for node in tree.body:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]) - 1
        gap, at = lines[at:start], node.end_lineno
        targets = {t.id for t in ast.walk(node) if isinstance(t, ast.Name) and isinstance(t.ctx, ast.Store)}
        used.add(f"ANSWER_NAME_{n}")  # the check interface: kept
        constant = isinstance(node, (ast.Assign, ast.AnnAssign)) and all(t.isupper() for t in targets if t[0] != "_")
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and (
            holds_fingerprint(node) or (constant and not targets & used)
        ):
            out += [line for line in gap if not out and line.strip()]  # the title, if the first statement goes
            continue  # a fingerprint, or a constant only the master's verdict used (WHY_3: what to say when wrong)
        text = replaced.get(getattr(node, "name", None)) or "\n".join(lines[start : node.end_lineno])
        out += gap + text.splitlines()
    text = re.sub(r"\n{4,}", "\n\n\n", "\n".join(out)).strip("\n")
    title = re.sub(
        rf"^(# ?@title Check for exercise {n}:).*$",
        r"\1 the form of your answer only (it is graded after you hand the notebook in)",
        text,
        count=1,
        flags=re.M,
    )
    title = re.sub(r"\n{4,}", "\n\n\n", title)
    left = ANYWHERE.findall(title)
    if left:
        raise ValueError(f"exercise {n}'s graded check still holds what looks like a fingerprint: {left[0]}")
    return title


def check_without_interface(check_source, ex):
    """A value exercise's check that does not follow the check interface (no verdict_N: a master the grader cannot
    grade either): replaced whole by one that says "answered" for any answer in place of None."""
    n = ex.number
    title = re.match(r"^# ?@title Check for exercise \d+:", check_source)
    title = (title.group(0) if title else f"# @title Check for exercise {n}:") + (
        " the form of your answer only (it is graded after you hand the notebook in)"
    )
    said = f"an answer in place of None, as asked; {GRADED_LATER}"
    return (
        f"{title}\n"
        f"def {ex.check_name}(attempt, *args, **kwargs):\n"
        f'    """Exercise {n}, graded edition: not attempted while None, else answered (graded later)."""\n'
        f"    EXERCISE_RESULTS[{n}] = None\n"
        "    if attempt is None:\n"
        f'        print("Exercise {n}: not attempted yet (the answer is None: put your value in its place)")\n'
        "    else:\n"
        f"        print({json.dumps(f'Exercise {n}: answered: {said}')})"
    )


def task_note(ex):
    """The sentence added to a value exercise's task in the graded edition: what its check does there."""
    return (
        f"\n\n*In this graded edition, the check of exercise {ex.number} looks only at the form of your answer "
        f"({FORMS.get(ex.learner_name, ANY_FORM)[0].replace('SHAPE_NAMES', 'the four arrays')}) and says "
        '"answered"; it does not say whether it is right: the grader judges it after you hand the notebook in, as '
        "described above.*"
    )


def numbers(ns):
    ns = [str(n) for n in ns]
    return ns[0] if len(ns) == 1 else ", ".join(ns[:-1]) + " and " + ns[-1]


def intro_words(exercises, practice):
    """The intro's paragraphs on which edition this is, and on what is graded when an answer is defined again."""
    values = [n for n, ex in exercises.items() if is_value_exercise(ex)]
    names = ", ".join(f"`{ex.learner_name}`" for ex in list(exercises.values())[:2])
    plural = "s" * (len(values) > 1)
    if not values:
        kind = ""
    elif practice:
        kind = (
            f"**This is the practice edition.** Every check says right or wrong at once, also those of exercise"
            f"{plural} {numbers(values)}, which ask for a value. For marks, your teacher hands out the graded edition,"
            " where those checks look only at the form of a value."
        )
    else:
        kind = (
            f"**This is the graded edition.** The checks of the exercises that ask for a function say right or wrong,"
            f" and why, on the cases shown here. The checks of exercise{plural} {numbers(values)}, which ask for a "
            "value (a few shapes, a number, a name, a word), look only at its form and say *answered*: whether it "
            "is right, the grader says after you hand the notebook in, so that no check can be asked again and "
            "again until it says right."
        )
    last = (
        "**What is graded is the last definition.** The grader runs your notebook from the top, as *Run all* does, "
        f"and grades what each answer ({names}, ...) is at the end. If a cell of your own after an exercise's cell "
        "defines that answer again (a `def` or an assignment of the same name), that later one is graded, and your "
        "feedback names the cell. To try things in cells of your own, use other names."
    )
    return [p for p in (kind, last) if p]


def with_intro_words(text, exercises, practice):
    """The intro with intro_words before its paragraph on what to hand in (or at its end)."""
    words = "\n\n".join(intro_words(exercises, practice))
    anchor = text.find("**What to hand in.**")
    if anchor < 0:
        return text.rstrip() + "\n\n" + words
    return text[:anchor] + words + "\n\n" + text[anchor:]

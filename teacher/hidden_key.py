"""What decides each student's hidden cases: the teacher's secret (by default), or a public seed (only when told).

The hidden tests' code is public (teacher/hidden_tests.py is in the repository), so the inputs it draws are only
as secret as the generator's seed. With a public seed (the old default, `--seed 0`) anyone can run the same code
for their own name, precompute their hidden cases and hand in lookup tables. With the teacher's secret, each
student's generator is seeded from HMAC-SHA256(secret, student): without the secret nobody can compute the
inputs, and a re-grade with the same secret draws the same cases (the same verdict).

The secret is a short text file made once (`make_secret`, `grade.py --make-secret`), kept with the teacher's
files: by default in the teacher's own configuration folder, outside this repository and out of the sandbox's
view. It is never in the handout. teacher/gradescope (or any other front end) can reuse `HiddenKey`.
"""

import hashlib
import hmac
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PUBLIC_HIDDEN_TESTS = HERE / "hidden_tests.py"
MIN_SECRET = 16  # characters: a passphrase shorter than this is guessable
MAX_SECRET = 4096  # bytes read at most


def default_secret_path():
    """The teacher's secret when --secret is not given: in their configuration folder, never in this repository."""
    config = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(config) / "neural-network-from-scratch" / "teacher-secret.txt"


class SecretError(Exception):
    """The secret file is missing or unusable; the message names the file and the problem."""


@dataclass(frozen=True)
class HiddenKey:
    """The key of the hidden cases: `secret` (bytes) or, when it is None, the public `seed`."""

    secret: bytes | None = None
    seed: int = 0
    where: str = ""  # where the key came from, for the run's output

    @property
    def public(self):
        return self.secret is None

    def rng(self, student):
        """The generator of this student's hidden cases: the same student and key give the same cases."""
        if self.secret is None:  # the public derivation (the grader's before secrets): anyone can compute it
            digest = hashlib.sha256(f"{self.seed}:{student}".encode()).digest()
            return np.random.default_rng(int.from_bytes(digest[:8], "little"))
        digest = hmac.new(self.secret, f"hidden cases of {student}".encode(), hashlib.sha256).digest()
        return np.random.default_rng(int.from_bytes(digest, "little"))

    def describe(self):
        if self.secret is None:
            return f"the public seed {self.seed} (anyone with the hidden tests' file can compute them)"
        return f"the teacher's secret in {self.where}"


def make_secret(path):
    """Write a new random secret (64 hex digits) to path, readable by its owner only; never overwrite one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:
        raise SecretError(f"{path} already exists: a new secret would change every student's hidden cases") from None
    except OSError as e:
        raise SecretError(f"cannot write the secret {path}: {e.strerror}") from None
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(secrets.token_hex(32) + "\n")
    return path


def read_secret(path):
    """The secret in path, as bytes: a regular file (no link followed) holding at least MIN_SECRET characters."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise SecretError(f"{path} does not exist: make a secret once with --make-secret --secret {path}") from None
    except OSError as e:
        raise SecretError(f"cannot read the secret {path}: {e.strerror} (a link is not followed)") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise SecretError(f"the secret {path} is not a regular file")
        data = f.read(MAX_SECRET + 1)
    text = data.strip()
    if len(data) > MAX_SECRET:
        raise SecretError(f"the secret {path} is larger than {MAX_SECRET} bytes: is it the right file?")
    if len(text) < MIN_SECRET:
        raise SecretError(f"the secret {path} holds {len(text)} characters, fewer than {MIN_SECRET}: too easy to guess")
    return text


def secret_key(path=None, make=True, say=print):
    """The HiddenKey of the secret in path (default: default_secret_path(), made there on first use if `make`)."""
    if path is None:
        path = default_secret_path()
        if make and not path.exists() and not path.is_symlink():
            make_secret(path)
            say(
                f"made a new secret for the hidden cases: {path} (keep it with your course files, out of any "
                "repository and handout: a re-grade needs the same secret to draw the same cases)"
            )
    path = Path(path)
    return HiddenKey(secret=read_secret(path), where=str(path))


def is_public_hidden_tests(path):
    """True when path is this repository's teacher/hidden_tests.py, or a file with the same content."""
    path = Path(path)
    try:
        if path.resolve() == PUBLIC_HIDDEN_TESTS.resolve():
            return True
        return path.read_bytes() == PUBLIC_HIDDEN_TESTS.read_bytes()
    except OSError:
        return False

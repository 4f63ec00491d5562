"""Password hashing (argon2id) and the rules a new password must meet.

The hasher uses at least OWASP's argon2id parameters (19 MiB, 2 passes).
``verify_or_dummy`` always computes one hash, so an unknown account takes
as long to refuse as a known one.
"""

from __future__ import annotations

import gzip
import unicodedata
from functools import lru_cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, hash_len=32, salt_len=16)
_DUMMY_HASH = HASHER.hash("pfcore dummy password for equal timing")


def normalise(password: str) -> str:
    """NFKC, as NIST SP 800-63B asks; never truncated."""
    return unicodedata.normalize("NFKC", password)


COMMON_PASSWORDS_FILE = Path(__file__).resolve().parent.parent / "data" / "common-passwords.txt.gz"


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The shipped list of common and breached passwords (lower-cased), loaded once."""
    with gzip.open(COMMON_PASSWORDS_FILE, "rt", encoding="utf-8") as f:
        return frozenset(line.rstrip("\n") for line in f if line.strip())


def hash_password(password: str) -> str:
    return HASHER.hash(normalise(password))


def verify_or_dummy(password_hash: str | None, password: str) -> bool:
    """Check a password; with no hash, spend the same time and say no."""
    try:
        return HASHER.verify(password_hash or _DUMMY_HASH, normalise(password)) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return HASHER.check_needs_rehash(password_hash)


def password_problems(password: str, *, min_length: int, max_length: int, personal: list[str]) -> list[str]:
    """The reasons a new password is refused (empty list: accepted)."""
    password = normalise(password)
    problems = []
    if len(password) < min_length:
        problems.append(f"Use at least {min_length} characters.")
    if len(password) > max_length:
        problems.append(f"Use at most {max_length} characters.")
    lowered = password.lower()
    if lowered in common_passwords():
        problems.append("This password is on a list of common or breached passwords. Choose another.")
    for word in personal:
        word = (word or "").strip().lower()
        if len(word) >= 3 and word in lowered:
            problems.append("Do not use your name, email or practice name in your password.")
            break
    return problems

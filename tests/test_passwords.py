"""Password rules (NIST SP 800-63B) and hashing."""

from __future__ import annotations

from pfcore.security import passwords
from pfcore.security.passwords import HASHER, hash_password, password_problems, verify_or_dummy


def _problems(password, personal=()):
    return password_problems(password, min_length=12, max_length=128, personal=list(personal))


def test_the_shipped_blocklist_has_at_least_the_top_100000():
    common = passwords.common_passwords()
    assert len(common) >= 100_000
    assert {"password", "123456", "iloveyou", "qwertyuiop"} <= common


def test_common_and_breached_passwords_are_refused_whatever_their_case():
    for password in ("passwordpassword", "PasswordPassword", "1234567890qwerty", "QWERTYUIOPASDFGH", "iloveyouforever"):
        assert any("common or breached" in p for p in _problems(password)), password
    assert not any("common or breached" in p for p in _problems("tulips under the april rain"))


def test_length_limits_and_no_composition_rules():
    assert any("at least 12" in p for p in _problems("short one"))
    assert any("at most 128" in p for p in _problems("x" * 129 + "unique"))
    assert _problems("all lowercase words here") == []
    assert _problems("🙂 unicode emoji are fine too") == []


def test_passwords_with_the_users_name_email_or_practice_are_refused():
    assert any("your name, email or practice" in p for p in _problems("grace is the best admin", ["Grace", "Hopper"]))
    assert any("your name, email or practice" in p for p in _problems("sunriseclinic2026!", ["Sunriseclinic"]))


def test_passwords_are_normalised_not_truncated():
    hashed = hash_password("ﬁre and ice forever")  # the "ﬁ" ligature normalises to "fi"
    assert verify_or_dummy(hashed, "fire and ice forever")
    long_password = "a" * 100 + "b" * 28
    hashed = hash_password(long_password)
    assert not verify_or_dummy(hashed, "a" * 100 + "b" * 27 + "c")


def test_argon2id_with_at_least_owasp_parameters():
    hashed = hash_password("correct horse battery staple")
    assert hashed.startswith("$argon2id$")
    assert HASHER.memory_cost >= 19456 and HASHER.time_cost >= 2


def test_unknown_accounts_are_refused_after_a_dummy_hash():
    assert verify_or_dummy(None, "anything at all") is False

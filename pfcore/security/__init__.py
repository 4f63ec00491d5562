"""Passwords, sessions, sign-in, permissions and HTTP hardening."""

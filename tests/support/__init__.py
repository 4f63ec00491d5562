"""Helpers shared by the tests; the fixtures that use them are in tests/conftest.py
(and tests/browser/conftest.py).

- ``apps``: an app's settings under test, the test client, ``Browserless`` (HTTP like a browser);
- ``journeys``: sign-up, sign-in, second factor, email links, over HTTP;
- ``records``: rows set up or read directly in the database;
- ``database``: fresh SQLite/PostgreSQL databases, the SQL an app sends;
- ``servers``: the SMTP server, the SMS webhook receiver, Redis, free ports;
- ``live_server``: pfcore run in other processes (``pfcore serve``) and an HTTP browser for it;
- ``browser``: Playwright helpers for tests/browser/;
- ``portal``: the patient portal's invitations and registration;
- ``access_rules``, ``access_world``: the declared access rule of every endpoint and the
  practices and callers the sweeps (tests/sweeps/) run in;
- ``webauthn_authenticator``: a software security key.
"""

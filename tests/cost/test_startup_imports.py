"""What a worker imports at start-up (docs/performance.md, P8 and change 23).

Every gunicorn worker imports the app and every plugin. Libraries that only
some requests need are imported by those requests: py_webauthn (0.1 s) by the
security-key pages, not by the plugin module that every sign-in asks whether
the user has a key.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
from pfcore import create_app
app = create_app()
print(json.dumps({"plugins": sorted(app.extensions["pfcore.plugins"].available),
                  "webauthn": "webauthn" in sys.modules}))
"""


def test_create_app_does_not_import_the_webauthn_library(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PFCORE_")}
    env.update(
        PFCORE_ENV="production",
        PFCORE_SECRET_KEY="s" * 64,
        PFCORE_INSTANCE_PATH=str(tmp_path),
        PFCORE_DATABASE_URL=f"sqlite:///{tmp_path / 'pfcore.db'}",
    )
    completed = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    loaded = json.loads(completed.stdout.strip().splitlines()[-1])
    assert "mfa_webauthn" in loaded["plugins"]
    assert loaded["webauthn"] is False

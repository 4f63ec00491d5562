"""Scale-out: two gunicorn instances (``pfcore serve``, two workers each) on
one PostgreSQL database and one Redis, in production mode behind a (played)
TLS-terminating proxy, driven over real HTTP.

They share sessions, half-finished sign-ins, lock-outs, rate limits and
audit chains; /metrics adds up every worker of an instance (prometheus_client
multiprocess mode); the JSON request log has one line per request.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import func, select

from pfcore import audit, create_app
from pfcore.db import session
from pfcore.models import AuditEvent, User

from .support.database import create_postgres_database, drop_postgres_database
from .support.journeys import SIGNUP
from .support.live_server import HttpBrowser, Proxy, ServerProcess, pfcore_command, service_env, sign_in_email
from .support.servers import free_port, require_redis

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SECRET = "scale-out-secret-" + "k" * 48
METRICS_TOKEN = "scale-out-metrics-token"
SIGNIN_LIMIT = 8  # per client address per minute, counted in Redis


@dataclass
class Cluster:
    servers: list[ServerProcess]
    app: object  # an app in the test process on the same database (inspection and setup)
    env: dict
    texts: object
    redis_url: str
    key_prefix: str
    practices: list = field(default_factory=list)

    def browser(self, client: str, server: int = 0) -> HttpBrowser:
        """A browser behind the proxy, from client address ``client``, reaching server ``server``."""
        return HttpBrowser(self.servers[server].base_url, proxy=Proxy(client=client))

    def other(self, browser: HttpBrowser, server: int) -> HttpBrowser:
        return browser.on(self.servers[server].base_url)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, smtp, sms_webhook_server):
    redis_url = require_redis()
    database_url = create_postgres_database()
    folder = tmp_path_factory.mktemp("scale-out")
    key_prefix = f"pfcore-test-{uuid.uuid4().hex}"
    app = create_app({"database_url": database_url, "secret_key": SECRET, "instance_path": str(folder / "local")})
    servers: list[ServerProcess] = []
    try:
        from pfcore.schema import upgrade

        upgrade(app)
        env = service_env(
            PFCORE_ENV="production",
            PFCORE_SECRET_KEY=SECRET,
            PFCORE_DATABASE_URL=database_url,
            PFCORE_RATELIMIT_STORAGE=redis_url,
            PFCORE_RATELIMIT_KEY_PREFIX=key_prefix,
            PFCORE_RATELIMIT_SIGNIN=f"{SIGNIN_LIMIT} per minute",
            PFCORE_TRUSTED_PROXIES="1",
            PFCORE_SMTP_HOST="127.0.0.1",
            PFCORE_SMTP_PORT=str(smtp.port),
            PFCORE_SMS_SENDER="webhook",
            PFCORE_SMS_WEBHOOK_URL=sms_webhook_server.url,
            PFCORE_SMS_WEBHOOK_TOKEN=sms_webhook_server.token,
            PFCORE_BASE_URL="https://pfcore.example.test",
            PFCORE_LOG_FORMAT="json",
            PFCORE_METRICS_TOKEN=METRICS_TOKEN,
        )
        for name in ("a", "b"):
            port = free_port()
            instance = folder / f"instance-{name}"
            instance.mkdir()
            servers.append(
                ServerProcess(
                    [pfcore_command(), "serve", "--bind", f"127.0.0.1:{port}", "--workers", "2"],
                    port=port,
                    env=dict(env, PFCORE_INSTANCE_PATH=str(instance)),
                    cwd=folder,
                    log=folder / f"server-{name}.log",
                ).start()
            )
        for server in servers:
            server.wait_until_up()
        yield Cluster(
            servers=servers, app=app, env=env, texts=sms_webhook_server, redis_url=redis_url, key_prefix=key_prefix
        )
    finally:
        for server in servers:
            server.stop()
        app.extensions["pfcore.engine"].dispose()
        drop_postgres_database(database_url)
        _forget_redis_keys(redis_url, key_prefix)


def _forget_redis_keys(redis_url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"*{prefix}*"))
    if keys:
        client.delete(*keys)


def sign_up(cluster: Cluster, client: str, n: int) -> tuple[HttpBrowser, dict]:
    """A practice signed up over HTTP on server 0; its administrator is signed in there."""
    data = dict(
        SIGNUP,
        practice_name=f"Scale-out Clinic {n}",
        email=f"admin{n}@scale{n}.example.com",
        phone=f"415-555-01{n:02d}",
    )
    browser = cluster.browser(client)
    answer = browser.submit("/signup", data)
    assert answer.status == 302, answer.text[:2000]
    return browser, data


def texted_code(cluster: Cluster, phone: str):
    return cluster.texts.next_code(phone)


def user_by_email(cluster: Cluster, email: str) -> User:
    with cluster.app.app_context():
        return session().scalars(select(User).where(User.email == email)).one()


# --- sessions -----------------------------------------------------------------

SESSION_COOKIE = "__Host-pfcore_session"


def test_a_session_made_on_one_server_works_on_the_other_and_sign_out_on_one_ends_it_on_both(cluster):
    admin, data = sign_up(cluster, "203.0.113.11", 1)
    assert SESSION_COOKIE in admin.cookies  # production cookie names: Secure, __Host-
    on_b = cluster.other(admin, 1)
    page = on_b.get("/dashboard")
    assert page.status == 200 and data["practice_name"] in page.text

    copied = dict(admin.cookies)  # a second copy of the same session (another tab, or a stolen cookie)
    assert on_b.submit("/signout", page="/dashboard").status == 302
    assert SESSION_COOKIE not in admin.cookies
    for server in (0, 1):
        replay = HttpBrowser(cluster.servers[server].base_url, proxy=admin.proxy, cookies=dict(copied))
        answer = replay.get("/dashboard")
        assert answer.status == 302 and "/signin" in answer.location, (server, answer.status, answer.location)

    # A sign-in started on one server finishes on the other: the half-finished
    # sign-in and the texted code live in the database, not in a process.
    phone = "+14155550111"
    first = admin.submit("/login-email/", {"email": data["email"], "password": data["password"]})
    assert first.status == 302 and first.location.endswith("/signin/enroll"), (first.status, first.location)
    on_b = cluster.other(admin, 1)
    assert on_b.submit("/mfa-sms/enrol", {"phone": phone, "channel": "sms"}).status == 302
    done = admin.submit("/mfa-sms/enrol/code", {"code": cluster.texts.last_code(phone)})
    assert done.status == 302 and done.location.endswith("/dashboard"), (done.status, done.location, done.text[:500])
    assert on_b.get("/dashboard").status == 200
    # And the next sign-in, entirely through server B, asks for a code to the now verified phone.
    assert on_b.submit("/signout", page="/dashboard").status == 302
    again = sign_in_email(on_b, data["email"], data["password"], code=texted_code(cluster, phone))
    assert again.status == 302 and again.location.endswith("/dashboard"), (again.status, again.location)
    assert admin.get("/dashboard").status == 200


# --- lock-out ---------------------------------------------------------------------


def test_failed_sign_ins_spread_over_both_servers_lock_the_account(cluster):
    _, data = sign_up(cluster, "203.0.113.21", 2)
    guesser = cluster.browser("203.0.113.22")
    for attempt in range(5):  # alternate: 3 on server A, 2 on server B
        answer = cluster.other(guesser, attempt % 2).submit(
            "/login-email/", {"email": data["email"], "password": f"wrong guess number {attempt}"}
        )
        assert answer.status == 422, (attempt, answer.status)
    user = user_by_email(cluster, data["email"])
    assert user.failed_sign_ins == 5 and user.locked_until is not None
    for server in (0, 1):  # the right password is refused on both until the lock ends
        answer = cluster.other(guesser, server).submit(
            "/login-email/", {"email": data["email"], "password": data["password"]}
        )
        assert answer.status == 422 and "Those sign-in details did not work" in answer.text, server
    with cluster.app.app_context():
        locks = (
            session()
            .scalars(select(AuditEvent).where(AuditEvent.action == "user.locked", AuditEvent.object_id == str(user.id)))
            .all()
        )
    assert [json.loads(event.details)["failures"] for event in locks] == [5]


# --- rate limits ---------------------------------------------------------------------


def test_rate_limits_count_across_both_servers(cluster):
    client = cluster.browser("203.0.113.31")

    def attempt(server: int):
        return cluster.other(client, server).submit(
            "/login-email/", {"email": "nobody@scale.example.com", "password": "not a real account"}
        )

    for number in range(SIGNIN_LIMIT):  # alternating: each server alone saw only half
        answer = attempt(number % 2)
        assert answer.status == 422, (number, answer.status)
    for server in (0, 1):
        limited = attempt(server)
        assert limited.status == 429, (server, limited.status)
    # The limit is per client address: another address is not affected.
    other = cluster.browser("203.0.113.32", server=1).submit(
        "/login-email/", {"email": "nobody@scale.example.com", "password": "not a real account"}
    )
    assert other.status == 422


# --- audit chains under concurrent writes ---------------------------------------------


def test_audit_chains_stay_intact_under_concurrent_writes_to_both_servers(cluster):
    admin, data = sign_up(cluster, "203.0.113.41", 4)
    admin.token("/dashboard")  # the CSRF seed of the new session, before the threads share the cookies
    rounds, per_server = 6, 2
    answers: list[tuple[str, int]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(per_server * 2)

    def writer(server: int, number: int):
        try:
            browser = cluster.other(admin, server)
            start.wait()
            added = browser.submit(
                "/settings/users/new",
                {
                    "first_name": "Writer",
                    "last_name": f"Number{server}{number}",
                    "email": f"writer{server}{number}@scale4.example.com",
                    "access_level": "1",
                },
            )
            answers.append(("user.created", added.status))
            user_id = re.search(r"/settings/users/(\d+)", added.location).group(1)
            detail = f"/settings/users/{user_id}"
            for round_ in range(rounds):
                changed = browser.submit(f"{detail}/access-level", {"access_level": str(2 + round_ % 2)}, page=detail)
                assert "Access level changed." in changed.text
                answers.append(("user.access_level_changed", changed.status))
        except BaseException as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    threads = [
        threading.Thread(target=writer, args=(server, number)) for server in (0, 1) for number in range(per_server)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    expected = Counter({"user.created": per_server * 2, "user.access_level_changed": per_server * 2 * rounds})
    assert Counter(action for action, status in answers if status in (200, 302)) == expected
    with cluster.app.app_context():
        practice_id = user_by_email(cluster, data["email"]).practice_id
        stored = Counter(
            dict(
                session()
                .execute(
                    select(AuditEvent.action, func.count())
                    .where(AuditEvent.practice_id == practice_id, AuditEvent.action.in_(list(expected)))
                    .group_by(AuditEvent.action)
                )
                .all()
            )
        )
        result = audit.verify(session())
    assert stored == expected + Counter({"user.created": 1})  # and the administrator, at sign-up
    assert result.intact, [problem.describe() for problem in result.problems]
    # The operator's check, as cron runs it.
    verify = subprocess.run(
        [pfcore_command(), "audit", "verify"],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(cluster.env, PFCORE_INSTANCE_PATH=str(Path(cluster.servers[0].cwd) / "cli")),
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "Audit log intact" in verify.stdout


# --- /metrics over several workers, and the request log ---------------------------------


def _scrape(server: ServerProcess) -> str:
    answer = HttpBrowser(server.base_url).get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert answer.status == 200, answer.status
    return answer.text


def _sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _log_lines(server: ServerProcess, wanted: set[str] = frozenset()) -> list[dict]:
    """The JSON request-log lines in the server's output, once those with the ``wanted`` ids are there.

    A worker writes the line when the answer is over, just after the client has it.
    """
    deadline = time.monotonic() + 30
    while True:
        lines = [
            json.loads(line) for line in server.output().splitlines() if line.startswith("{") and '"request_id"' in line
        ]
        if wanted <= {line["request_id"] for line in lines} or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_metrics_add_up_the_counts_of_every_gunicorn_worker(cluster):
    server = cluster.servers[1]
    counted = 'pfcore_request_duration_seconds_count{endpoint="core.healthz"}'
    before = _sample(_scrape(server), counted)
    run = uuid.uuid4().hex[:12]
    sent: list[str] = []
    lock = threading.Lock()

    def hit(batch: int, thread: int, count: int):
        browser = HttpBrowser(server.base_url)
        for number in range(count):
            request_id = f"metrics-{run}-{batch}-{thread}-{number}"
            answer = browser.get("/healthz", headers={"X-Request-ID": request_id})
            assert answer.status == 200 and answer.headers["X-Request-ID"] == request_id
            with lock:
                sent.append(request_id)

    # Concurrent requests keep both workers busy; go on until the log shows
    # that both answered some (the kernel picks the worker for each).
    pids: set[int] = set()
    for batch in range(10):
        threads = [threading.Thread(target=hit, args=(batch, thread, 10)) for thread in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        ours = [line for line in _log_lines(server, set(sent)) if line["request_id"].startswith(f"metrics-{run}-")]
        pids = {line["pid"] for line in ours}
        if len(pids) >= 2:
            break
    assert len(pids) >= 2, "one worker answered every request"
    assert sorted(line["request_id"] for line in ours) == sorted(sent)  # one log line per request
    # Without multiprocess mode each scrape would show only the answering worker's count.
    for _ in range(6):
        text = _scrape(server)
        assert _sample(text, counted) == before + len(sent)
    assert text.count("# TYPE pfcore_outbox_pending gauge") == 1
    assert re.search(r"^pfcore_emergency_access_active 0\.0$", text, re.MULTILINE), "the plugin's gauge"


def test_json_request_log_under_gunicorn_one_line_per_request_with_the_proxy_client(cluster):
    admin, data = sign_up(cluster, "203.0.113.51", 5)
    user_id = user_by_email(cluster, data["email"]).id
    on_b = cluster.other(admin, 1)
    request_id = f"proxy-{uuid.uuid4().hex}"
    page = on_b.get("/settings/users?fragment=&secret=hide-me", headers={"X-Request-ID": request_id})
    assert page.status == 200 and page.headers["X-Request-ID"] == request_id
    made_up = on_b.get("/healthz", headers={"X-Request-ID": "no spaces or <markup> please"})
    generated = made_up.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    lines = {line["request_id"]: line for line in _log_lines(cluster.servers[1], {request_id, generated})}
    line = lines[request_id]
    assert set(line) >= {"time", "request_id", "method", "path", "status", "duration_ms", "user_id", "remote_addr"}
    assert (line["method"], line["path"], line["status"], line["user_id"], line["remote_addr"]) == (
        "GET",
        "/settings/users",
        200,
        user_id,
        "203.0.113.51",
    )
    assert lines[generated]["user_id"] is None and lines[generated]["path"] == "/healthz"
    assert "hide-me" not in cluster.servers[1].output()
    assert not any(" /healthz HTTP/1.1" in text for text in cluster.servers[1].output().splitlines()), (
        "the JSON log replaces gunicorn's access log"
    )


def test_serve_runs_gthread_workers_that_take_a_connection_only_when_free(cluster):
    """``pfcore serve`` runs gthread workers (pfcore/gunicorn_config.py): the worker's main
    thread keeps reporting to the master while a long answer streams (a sync worker was
    killed after the 30 s timeout in the middle of a large audit export). A worker takes
    one connection at a time and closes it after the answer: a gthread worker that accepted
    connections while busy kept them waiting behind its one request while the other worker
    idled. Here one worker is held by a request that never finishes arriving; every new
    connection must then go to the other worker and be answered at once."""
    server = cluster.servers[0]
    assert "Using worker: gthread" in server.output()
    stalled = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        stalled.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # the headers never end
        time.sleep(0.3)  # a worker has taken it and its thread now waits for the rest
        for _ in range(12):
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=3)
            try:
                connection.request("GET", "/healthz")
                answer = connection.getresponse()  # times out if the held worker took the connection
                answer.read()
                assert answer.status == 200
                assert answer.getheader("Connection", "").lower() == "close"
            finally:
                connection.close()
    finally:
        stalled.close()

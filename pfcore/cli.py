"""The ``pfcore`` command (Flask's click group).

Each command imports what it uses when it runs (Alembic for ``migrate``, the
jobs, the backup, gunicorn's configuration): ``pfcore --help`` and every other
command start without them, and a test may replace ``jobs.run_all`` & co. on
their module. Those imports dodge no cycle: the CLI is the top layer.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import FlaskGroup, NoAppException, with_appcontext

from . import create_app
from .config import ConfigError
from .plugins import PluginError


def _make_app():
    try:
        return create_app()
    except (ConfigError, PluginError) as error:
        # A plain message (with exit status 2), not a traceback: the operator
        # has a setting to change, and the message says which.
        raise NoAppException(f"cannot start pfcore: {error}") from None


cli = FlaskGroup(
    create_app=_make_app,
    add_default_commands=False,
    add_version_option=False,
    help="pfcore: practice administration and access server.",
)


@cli.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@with_appcontext
def run_command(host: str, port: int):
    """Run the development server (migrates an embedded SQLite database first)."""
    from .schema import upgrade

    app = current_app._get_current_object()
    if app.config["PFCORE"]["database_url"].startswith("sqlite"):
        upgrade(app)
    click.echo(f"pfcore is running at http://{host}:{port}/  (Ctrl+C stops it)")
    if app.config["PFCORE"]["env"] == "development":
        click.echo(f"Outbox (emails and texts in development): http://{host}:{port}/operator/outbox")
    from werkzeug.serving import run_simple

    run_simple(host, port, app, threaded=True)


@cli.command("serve", with_appcontext=False)  # the app is built in each worker, not here
@click.option(
    "--bind", default=None, help="Address to listen on (default: the bind setting, PFCORE_BIND, 127.0.0.1:8000)."
)
@click.option(
    "--workers",
    default=None,
    type=int,
    help="Worker processes (default: the workers setting, PFCORE_WORKERS, else 2 x CPUs + 1).",
)
def serve_command(bind, workers):
    """Run pfcore under gunicorn, the way production runs it (behind nginx with config/nginx/).

    Metrics from every worker add up (prometheus_client's multiprocess mode):
    the files go to PROMETHEUS_MULTIPROC_DIR, emptied at start, or else to a
    temporary folder removed at exit. With log_format = "json" the JSON
    request log replaces gunicorn's access log.
    """
    from .config import finish_settings, load_settings
    from .request_log import FORMATS

    try:  # the configuration errors a worker would meet, said once, before gunicorn starts
        settings = finish_settings(load_settings())
        if settings.get("log_format", "plain") not in FORMATS:
            raise ConfigError(f"log_format must be one of {', '.join(FORMATS)}, not {settings['log_format']!r}")
    except ConfigError as error:
        raise click.ClickException(f"cannot start pfcore: {error}") from None
    argv = [sys.executable, "-m", "gunicorn", "--config", "python:pfcore.gunicorn_config"]
    argv += gunicorn_options(settings, bind=bind, workers=workers)
    env = dict(os.environ)
    env.update(_metrics_folder(env))
    if settings.get("log_format", "plain") != "json":
        argv += ["--access-logfile", "-"]
    argv.append("pfcore.wsgi:app")
    sys.stdout.flush()
    sys.stderr.flush()
    # A fresh interpreter: prometheus_client decides at import whether it runs
    # in multiprocess mode, and this one has imported it already.
    os.execve(sys.executable, argv, env)


def gunicorn_options(settings: dict, *, bind: str | None = None, workers: int | None = None) -> list[str]:
    """``--bind``, ``--workers`` and ``--timeout`` from the command line, else the settings
    (config file, PFCORE_BIND / PFCORE_WORKERS / PFCORE_WORKER_TIMEOUT_SECONDS)."""
    workers = workers or settings["workers"] or (os.cpu_count() or 1) * 2 + 1  # 0: the default
    return [
        "--bind",
        bind or settings["bind"],
        "--workers",
        str(workers),
        "--timeout",
        str(settings["worker_timeout_seconds"]),
    ]


def _metrics_folder(env: dict) -> dict:
    """PROMETHEUS_MULTIPROC_DIR for this run: the operator's folder emptied, or a new one."""
    import glob
    import tempfile

    from .gunicorn_config import CREATED_DIR_ENV

    folder = env.get("PROMETHEUS_MULTIPROC_DIR")
    env.pop(CREATED_DIR_ENV, None)  # only a folder made here is removed at exit
    if folder:
        os.makedirs(folder, exist_ok=True)
        for stale in glob.glob(os.path.join(folder, "*.db")):  # a previous run's counts
            os.unlink(stale)
        return {}
    folder = tempfile.mkdtemp(prefix="pfcore-metrics-")
    return {"PROMETHEUS_MULTIPROC_DIR": folder, CREATED_DIR_ENV: folder}


@cli.group("db")
def db_group():
    """Database schema commands."""


@db_group.command("upgrade")
@with_appcontext
def db_upgrade():
    """Apply every migration of the core and the installed plugins."""
    from .schema import upgrade

    upgrade(current_app._get_current_object())
    click.echo("Database is up to date.")


@cli.command("demo")
@with_appcontext
def demo_command():
    """Create the demo practice (once) and print how to sign in (not in production:
    its accounts share a published password)."""
    from .demo import ensure_demo

    if current_app.config["PFCORE"]["env"] == "production":
        raise click.ClickException("the demo practice has a published password: it is not created in production")

    from .schema import upgrade

    upgrade(current_app._get_current_object())
    details = ensure_demo()
    click.echo(details)


@cli.command("create-practice")
@click.option("--name", required=True)
@click.option("--admin-email", required=True)
@click.option("--admin-first-name", required=True)
@click.option("--admin-last-name", required=True)
@click.option("--specialty", default="Family medicine", show_default=True)
@click.option("--phone", default="", show_default=False)
@with_appcontext
def create_practice_command(name, admin_email, admin_first_name, admin_last_name, specialty, phone):
    """Create a practice; its administrator gets an invitation email."""
    from . import accounts
    from .db import session

    try:
        practice, admin = accounts.create_practice(
            name=name,
            specialty=specialty,
            phone=phone,
            email=admin_email,
            first_name=admin_first_name,
            last_name=admin_last_name,
            password=None,
        )
        accounts.send_invitation(admin, practice)
    except accounts.AccountError as error:
        session().rollback()
        raise click.ClickException(error.message) from None
    session().commit()
    from .messaging import deliver_due

    deliver_due(current_app._get_current_object())
    click.echo(f"Created practice {practice.name} (id {practice.id}).")
    click.echo(f"Practice ID (PAC): {practice.pac}")
    click.echo(f"An invitation was sent to {admin.email}.")


@cli.command("plugins")
@with_appcontext
def plugins_command():
    """List installed plugins: available, enabled by how many practices, and their hooks."""
    from sqlalchemy import func, select
    from sqlalchemy.exc import DBAPIError

    from .db import session
    from .models import Practice, PracticePlugin

    registry = current_app.extensions["pfcore.plugins"]
    try:
        practices = session().scalar(select(func.count()).select_from(Practice)) or 0
        enabled = dict(
            session()
            .execute(select(PracticePlugin.plugin_name, func.count()).group_by(PracticePlugin.plugin_name))
            .all()
        )
    except DBAPIError:  # no schema yet: still list what is installed
        session().rollback()
        practices, enabled = 0, {}
        click.echo("(The database is not set up yet: run `pfcore db upgrade`.)")
    for name in ["core"] + sorted(registry.infos):
        if name == "core":
            click.echo("core (always on)")
        else:
            info = registry.infos[name]
            available = "available" if name in registry.available else "not available"
            default = "on for new practices" if info.enabled_by_default else "off for new practices"
            click.echo(
                f"{name} {info.version}: {info.title} [{available}, {default}, "
                f"enabled by {enabled.get(name, 0)} of {practices} practices]"
            )
            if info.depends:
                click.echo(f"  needs: {', '.join(info.depends)}")
        click.echo(f"  hooks: {', '.join(registry.hook_names_of(name))}")


@cli.group("outbox")
def outbox_group():
    """The message outbox."""


@outbox_group.command("deliver")
@with_appcontext
def outbox_deliver():
    """Deliver every message that is due (retries failed attempts)."""
    from .messaging import deliver_due

    counts = deliver_due(current_app._get_current_object(), limit=10_000)
    click.echo(f"Sent {counts['sent']}, failed {counts['failed']}.")


@cli.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
@with_appcontext
def backup_command(path):
    """Make a consistent online backup of the SQLite database to PATH.

    Uses SQLite's backup API, so pfcore may keep running and writing. For
    PostgreSQL use pg_dump (docs/operations.md).
    """
    from .backup import backup_sqlite

    url = current_app.config["PFCORE"]["database_url"]
    if not url.startswith("sqlite"):
        raise click.ClickException(
            "pfcore backup copies SQLite databases; for PostgreSQL use pg_dump (see docs/operations.md)."
        )
    pages = backup_sqlite(url, path)
    click.echo(f"Backed up {pages} pages to {path}.")


@cli.group("jobs")
def jobs_group():
    """Periodic work (run `pfcore jobs run` from cron, every minute)."""


@jobs_group.command("run")
@with_appcontext
def jobs_run():
    """Deliver the outbox, prune expired half-finished sign-ins, then the plugins' jobs."""
    from .jobs import run_all

    for line in run_all(current_app._get_current_object()):
        click.echo(line)


@cli.command("worker")
@click.option("--once", is_flag=True, help="Run the jobs once and exit.")
@click.option("--iterations", type=int, default=None, help="Run the jobs this many times, then exit.")
@with_appcontext
def worker_command(once, iterations):
    """Run the periodic jobs in a loop, every worker_interval_seconds, until SIGTERM or SIGINT.

    Several workers may run at once (on PostgreSQL they share the outbox
    without delivering a message twice).
    """
    import signal
    import threading

    from .db import close_session, session
    from .jobs import run_all

    app = current_app._get_current_object()
    interval = max(0, int(app.config["PFCORE"]["worker_interval_seconds"]))
    if once:
        iterations = 1
    stop = threading.Event()

    def _stop(signum, _frame):
        click.echo(f"Received signal {signum}; stopping after the current run.")
        stop.set()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, _stop)
    failed = False
    done = 0
    try:
        while not stop.is_set():
            try:
                for line in run_all(app):
                    click.echo(line)
                failed = False
            except Exception:  # a database blip must not end the worker
                failed = True
                app.logger.exception("pfcore worker: the jobs failed; trying again next time")
                try:
                    session().rollback()
                except Exception:
                    pass
            finally:
                close_session()
            done += 1
            if iterations is not None and done >= iterations:
                break
            stop.wait(interval)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    click.echo("Worker stopped.")
    if failed:
        sys.exit(1)


@cli.command("reported-invitations")
@with_appcontext
def reported_invitations_command():
    """Invitations their recipients said they did not expect, newest first."""
    from .invitation_reports import recent_reports_in_all_practices

    reports = recent_reports_in_all_practices()
    if not reports:
        click.echo("No invitation has been reported.")
    for report, practice_name in reports:
        click.echo(
            f"{report.reported_at:%Y-%m-%d %H:%M:%S} UTC  practice {report.practice_id} ({practice_name})  "
            f"{report.email}  from {report.ip or 'unknown'}"
        )


@cli.group("audit")
def audit_group():
    """The audit log."""


@audit_group.command("verify")
@click.option(
    "--checkpoints",
    "checkpoint_folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Compare with the signed checkpoints in this folder (default: audit_checkpoint_dir).",
)
@with_appcontext
def audit_verify(checkpoint_folder):
    """Check every practice's hash chain, and each against its newest signed checkpoint;
    exit 1 on the first break of any chain."""
    from . import audit, audit_checkpoints
    from .db import session

    settings = current_app.config["PFCORE"]
    checkpoints = audit_checkpoints.load(settings, checkpoint_folder)
    # Long chains are checked in pieces, one process per CPU (docs/performance.md, P9).
    result = audit.verify(session(), processes=os.cpu_count() or 1, checkpoints=checkpoints)
    for problem in result.checkpoint_problems:
        click.echo(f"CHECKPOINT: {problem}", err=True)
    for problem in result.problems:
        click.echo(f"ALTERED: {problem.describe()}", err=True)
    if not result.intact:
        sys.exit(1)
    against = (
        f"; {result.chains_with_checkpoint} chains match their signed checkpoint in {checkpoints.folder}"
        if checkpoints and result.chains_with_checkpoint
        else "; no signed checkpoint to compare with"
    )
    click.echo(f"Audit log intact: {result.events_checked} events in {result.chains_checked} chains{against}.")


@audit_group.command("checkpoint")
@with_appcontext
def audit_checkpoint():
    """Sign every chain's head now and write it to audit_checkpoint_dir (and email each
    practice's administrators their chain's, when audit_checkpoint_email is on)."""
    from .jobs import write_audit_checkpoint

    click.echo(write_audit_checkpoint(current_app._get_current_object()))


def main() -> None:
    try:
        _add_plugin_commands()
    except (ConfigError, PluginError) as error:
        click.echo(f"Error: cannot start pfcore: {error}", err=True)
        sys.exit(2)
    cli.main(prog_name="pfcore")


def _add_plugin_commands() -> None:
    from .config import load_settings
    from .plugins import PluginRegistry

    registry = PluginRegistry(load_settings())
    registry.hook_all.register_commands(cli=cli)

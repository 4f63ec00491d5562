"""Adds the command ``pfcore hello-cli``."""

import click
from flask import current_app
from flask.cli import with_appcontext

from pfcore.contrib import PluginInfo
from pfcore.hookspecs import hookimpl

PLUGIN = PluginInfo(name="hello_cli", title="Hello command")


@hookimpl
def register_commands(cli):
    @cli.command("hello-cli")
    @click.option("--name", default="world")
    @with_appcontext
    def hello(name):
        """Greet someone from inside the app."""
        plugins = current_app.extensions["pfcore.plugins"]
        click.echo(f"Hello, {name}, from {plugins.infos['hello_cli'].title}.")


RUNS: list[str] = []


@hookimpl
def run_jobs(app):
    """A periodic job: remembers that it ran and reports it."""
    RUNS.append(app.config["PFCORE"]["base_url"])
    return "Hello command: nothing to tidy."

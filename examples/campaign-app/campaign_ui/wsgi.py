"""The Campaign UI's WSGI app: ``gunicorn campaign_ui.wsgi:app``.

Importing it touches no database, so workers boot in well under a second; ``/`` reads the
``campaigns`` table per request. ``/api/version`` and ``/health`` never touch the database:
staging-ops checks a deploy through them, and a slow database must not fail a hand-over.
"""

from __future__ import annotations

import os

import psycopg2
from flask import Flask, Response, jsonify, render_template_string

from campaign_ui.db import ConfigError, connect

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Campaign UI</title>
<style>
body { font-family: sans-serif; margin: 2rem; }
table { border-collapse: collapse; } td, th { padding: .2rem .8rem; border-bottom: 1px solid #ccc; }
footer { margin-top: 2rem; color: #555; font-size: .9rem; }
</style></head>
<body>
<main>
<h1>Campaigns</h1>
{% if error %}<p class="error">Database unavailable: {{ error }}</p>
{% elif campaigns %}<table><tr><th>Name</th><th>Status</th></tr>
{% for name, status in campaigns %}<tr><td>{{ name }}</td><td>{{ status }}</td></tr>
{% endfor %}</table>
{% else %}<p>No campaigns yet.</p>{% endif %}
<p><a href="/airflow/">Airflow</a></p>
</main>
<footer>{{ version.branch }} · {{ (version.commit or "")[:7] }} · {{ version.slot }}</footer>
</body>
</html>
"""


def version() -> dict[str, str | None]:
    """What staging-ops deployed here (null for a variable it did not set)."""
    return {
        "commit": os.environ.get("DEPLOYED_COMMIT"),
        "branch": os.environ.get("DEPLOYED_BRANCH"),
        "slot": os.environ.get("SLOT_IDENTIFIER"),
    }


def list_campaigns() -> list[tuple[str, str]]:
    """(name, status) of every campaign, newest first."""
    with connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT name, status FROM campaigns ORDER BY created_at DESC, id DESC")
        rows = cur.fetchall()
    conn.close()
    return [(str(name), str(status)) for name, status in rows]


def create_app() -> Flask:
    """The Flask app with its three routes."""
    flask_app = Flask(__name__)

    @flask_app.get("/")
    def index() -> tuple[str, int]:
        try:
            campaigns, error, status = list_campaigns(), None, 200
        except (ConfigError, psycopg2.Error) as err:
            # One line, without the URL: a psycopg2 message never contains the password.
            campaigns, status = [], 503
            error = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        html = render_template_string(PAGE, campaigns=campaigns, error=error, version=version())
        return html, status

    @flask_app.get("/api/version")
    def api_version() -> Response:
        return jsonify(version())

    @flask_app.get("/health")
    def health() -> tuple[str, int, dict[str, str]]:
        return "ok\n", 200, {"Content-Type": "text/plain; charset=utf-8"}

    return flask_app


app = create_app()

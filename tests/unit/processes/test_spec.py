"""The app's process spec from a Procfile and app.json (pure): what runs, how each type is
checked, and every way a malformed file is refused with one line naming the file and where."""

from __future__ import annotations

import json

import pytest

from staging_ops.inventory import load_inventory
from staging_ops.processes import SpecError, default_spec, spec_from_files, spec_from_json
from staging_ops.processes.spec import airflow_isolated, parse_procfile
from tests.conftest import DEFAULT_INVENTORY

APP = load_inventory(DEFAULT_INVENTORY).app
AIRFLOW3 = """\
# Airflow 3: the API server replaces the webserver; the DAG processor runs on its own.
web: gunicorn --bind 127.0.0.1:$PORT campaign_ui.wsgi:app
airflow: airflow api-server --host 127.0.0.1 --port $PORT
release: python -m campaign_ui.migrate

scheduler: airflow scheduler
dag-processor: airflow dag-processor
"""


def test_a_procfile_declares_types_in_order_with_the_release_phase_apart():
    spec = spec_from_files(AIRFLOW3, None, APP)
    assert spec.source == "Procfile"
    assert spec.types == ("web", "airflow", "scheduler", "dag-processor")
    assert spec.port_types == ("web", "airflow")
    assert spec.workers == ("scheduler", "dag-processor")
    assert spec.release_command == "python -m campaign_ui.migrate"
    # Airflow's per-process state is kept apart per instance: no log server on every address.
    assert spec.commands["scheduler"] == "airflow scheduler --skip-serve-logs"
    assert spec.process_table().splitlines()[0] == (
        "web\tgunicorn --bind 127.0.0.1:$PORT campaign_ui.wsgi:app"
    )


def test_without_a_procfile_the_inventorys_commands_run():
    spec = spec_from_files(None, None, APP)
    assert spec == default_spec(APP)
    assert spec.source == "inventory"
    assert spec.types == ("web", "airflow", "scheduler")
    assert "${RELEASE_DIR}/.venv/bin/gunicorn" in spec.commands["web"]
    # gunicorn's default pid file in AIRFLOW_HOME would collide between main and candidate.
    assert '--pid "$TMPDIR/airflow-webserver.pid"' in spec.commands["airflow"]


@pytest.mark.parametrize(
    ("command", "isolated"),
    [
        ("airflow webserver -p 1", 'airflow webserver -p 1 --pid "$TMPDIR/airflow-webserver.pid"'),
        ("airflow webserver --pid /x/y.pid", "airflow webserver --pid /x/y.pid"),
        ("/v/bin/airflow scheduler", "/v/bin/airflow scheduler --skip-serve-logs"),
        ("exec airflow triggerer", "exec airflow triggerer --skip-serve-logs"),
        ("airflow scheduler --skip-serve-logs", "airflow scheduler --skip-serve-logs"),
        ("airflow dag-processor", "airflow dag-processor"),
        ("airflow scheduler; echo done", "airflow scheduler; echo done"),  # not its last command
        ("gunicorn app:airflow", "gunicorn app:airflow"),
    ],
)
def test_airflow_isolation_touches_only_airflows_own_commands(command, isolated):
    assert airflow_isolated(command) == isolated


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("web gunicorn\n", "Procfile line 1: not `type: command`: 'web gunicorn'"),
        ("web: a\nweb: b\n", "Procfile line 2: process type 'web' again (line 1)"),
        ("web: a\nWorker: b\n", "Procfile line 2: process type 'Worker': lowercase letters"),
        ("web: a\nworker: \n", "Procfile line 2: process type 'worker' has no command"),
        ("web: a\nui: b\n", "Procfile line 2: process type 'ui' is reserved"),
        ("web: a\nx-candidate: b\n", "Procfile line 2: process type 'x-candidate' is reserved"),
        ("web: a\x00b\n", "Procfile: contains a NUL byte"),
        ("web: a\x07b\n", "Procfile line 1: the command of 'web' has a control character"),
        ("airflow: a\n", "Procfile: no `web` process"),
        ("", "Procfile: no `web` process"),
        ("web: a\n" + "w" * 31 + ": b\n", "Procfile line 2: process type 'wwwww"),
    ],
)
def test_a_malformed_procfile_is_refused_with_one_line(text, problem):
    with pytest.raises(SpecError) as caught:
        parse_procfile(text)
    assert str(caught.value).startswith(problem)
    assert "\n" not in str(caught.value)


def test_comments_blank_lines_and_crlf_are_read_as_heroku_does():
    assert parse_procfile("# c\r\n\r\nweb:gunicorn x\r\n  worker :  run it  \r\n") == {
        "web": "gunicorn x",
        "worker": "run it",
    }


def test_a_byte_order_mark_an_editor_wrote_is_not_part_of_either_file():
    procfile = "\ufeffweb: gunicorn x\nairflow: airflow api-server\n"
    assert parse_procfile(procfile) == {"web": "gunicorn x", "airflow": "airflow api-server"}
    app_json = '\ufeff{"healthchecks": {"web": [{"path": "/api/version"}]}}'
    spec = spec_from_files(procfile, app_json, APP)
    assert [c.path for c in spec.startup_checks("web")] == ["/api/version"]


def test_app_json_health_checks_in_dokkus_format():
    app_json = {
        "name": "campaign",
        "healthchecks": {
            "web": [{"type": "startup", "path": "/health", "attempts": 3, "wait": 1}],
            "airflow": [
                {
                    "type": "startup",
                    "path": "/airflow/api/v2/monitor/health",
                    "attempts": 90,
                    "timeout": 5,
                    "initialDelay": 2,
                    "content": "healthy",
                    "x-components": ["metadatabase"],
                }
            ],
            "scheduler": [{"type": "startup", "uptime": 5}],
        },
    }
    spec = spec_from_files(AIRFLOW3, json.dumps(app_json), APP)
    airflow = spec.startup_checks("airflow")[0]
    assert airflow.attempts == 90 and airflow.initial_delay == 2.0
    assert airflow.components == ("metadatabase",) and airflow.content == "healthy"
    assert spec.startup_checks("scheduler")[0].uptime == 5.0
    # Written into the release and read back by rollback, status and provision: the same.
    assert spec_from_json(json.dumps(spec.as_json()), APP) == spec


@pytest.mark.parametrize(
    ("app_json", "problem"),
    [
        ('{\n  "healthchecks": {,}\n}', "app.json line 2: malformed JSON"),
        ("[]", "app.json: must be a JSON object"),
        (
            '{"healthcheks": {}}',
            "app.json: unknown key 'healthcheks' (did you mean 'healthchecks'?)",
        ),
        ('{"healthchecks": []}', "app.json: healthchecks: must be an object"),
        ('{"healthchecks": {"db": []}}', "app.json: healthchecks.db: no such process type"),
        ('{"healthchecks": {"web": {}}}', "app.json: healthchecks.web: must be a list"),
        (
            '{"healthchecks": {"web": [{"path": "/x", "attemps": 2}]}}',
            "app.json: healthchecks.web[0]: unknown key 'attemps' (did you mean 'attempts'?)",
        ),
        (
            '{"healthchecks": {"web": [{"path": "/x", "port": 80}]}}',
            "app.json: healthchecks.web[0]: 'port' is not supported by staging-ops",
        ),
        ('{"healthchecks": {"web": [{"path": "x"}]}}', "'path' must be a URL path"),
        ('{"healthchecks": {"web": [{"path": "/a b"}]}}', "'path' must be a URL path"),
        ('{"healthchecks": {"web": [{"path": "/x", "attempts": 0}]}}', "'attempts' must be"),
        ('{"healthchecks": {"web": [{"path": "/x", "attempts": true}]}}', "'attempts' must be"),
        ('{"healthchecks": {"web": [{"path": "/x", "timeout": "5"}]}}', "'timeout' must be"),
        ('{"healthchecks": {"web": [{"path": "/x", "wait": 1e9}]}}', "'wait' must be from"),
        ('{"healthchecks": {"web": [{"path": "/x", "type": "later"}]}}', "type 'later': one of"),
        ('{"healthchecks": {"web": [{"type": "startup"}]}}', "needs a `path`"),
        ('{"healthchecks": {"scheduler": [{"path": "/x"}]}}', "a worker has no port"),
        ('{"healthchecks": {"web": [{"path": "/x", "x-components": []}]}}', "'x-components'"),
    ],
)
def test_a_malformed_app_json_is_refused_with_one_line(app_json, problem):
    with pytest.raises(SpecError) as caught:
        spec_from_files(AIRFLOW3, app_json, APP)
    assert problem in str(caught.value)
    assert "\n" not in str(caught.value)


def test_an_unreadable_spec_in_a_release_falls_back_to_the_inventorys_commands():
    for text in (None, "", "{", '{"processes": 3}', '{"processes": {}, "healthchecks": []}'):
        assert spec_from_json(text, APP) == default_spec(APP)

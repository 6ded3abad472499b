"""slot-airflow-login.sh's answer: one JSON line, whatever the env file's values hold, read
into the AirflowLogin; an answer that is not one is one clear line, never the answer itself
(it holds a password)."""

from __future__ import annotations

import subprocess

import pytest

from staging_ops.deploy.login import AirflowLogin, login_command, parse_login
from staging_ops.errors import StagingError

URL = "https://s1.example/airflow/"


def test_the_scripts_answer_reads_back_as_written(tmp_path):
    env = tmp_path / "env"
    env.write_text('A=1\nAIRFLOW_ADMIN_USER=ad"m\\in\nAIRFLOW_ADMIN_PASSWORD=p w$x\n')
    out = subprocess.run(
        ["sh", "-c", login_command(str(env))], capture_output=True, text=True, check=True
    ).stdout
    assert len(out.splitlines()) == 1
    assert parse_login(out, URL) == AirflowLogin(URL, 'ad"m\\in', "p w$x")


def test_a_slot_without_an_admin_exits_3(tmp_path):
    env = tmp_path / "env"
    env.write_text("A=1\n")
    run = subprocess.run(["sh", "-c", login_command(str(env))], capture_output=True, check=False)
    assert (run.returncode, run.stdout) == (3, b"")


@pytest.mark.parametrize(
    "out", ["", "user a\npassword secret\n", '{"user": "a"}', '{"user": "a", "password": 1}']
)
def test_an_unreadable_answer_is_one_clear_error_without_it(out):
    with pytest.raises(StagingError, match=r"^slot-airflow-login\.sh: unreadable answer$"):
        parse_login(out, URL)

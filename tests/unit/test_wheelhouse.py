"""devtools/wheelhouse.py's key, cache and combine, and devtools.droplet.up's refusals of a bad
repository or bind mount (before anything is touched), without building wheels or booting a
droplet: tests/droplet/test_realapp_droplet.py builds and uses a real wheelhouse."""

from __future__ import annotations

import pytest

import devtools.droplet as droplet_mod
from devtools.wheelhouse import COMPLETE, combine, ensure_wheelhouse, files_read, wheelhouse_key
from staging_ops.errors import BadInput


@pytest.fixture
def app(tmp_path):
    (tmp_path / "req").mkdir()
    (tmp_path / "requirements.txt").write_text("-r req/base.txt\nflask\n")
    (tmp_path / "req" / "base.txt").write_text("-c ../constraints.txt\ngunicorn\n")
    (tmp_path / "constraints.txt").write_text("flask==3.0.0\ngunicorn==23.0.0\n")
    (tmp_path / "unrelated.txt").write_text("x\n")
    return tmp_path


def test_the_key_covers_every_file_pip_reads_and_nothing_else(app):
    requirements = app / "requirements.txt"
    assert [p.name for p in files_read(requirements)] == [
        "requirements.txt",
        "base.txt",
        "constraints.txt",
    ]
    key = wheelhouse_key(requirements)
    (app / "unrelated.txt").write_text("y\n")
    assert wheelhouse_key(requirements) == key
    # A constraints-only change is a new wheelhouse (as it is a new venv on the droplet).
    (app / "constraints.txt").write_text("flask==3.0.1\ngunicorn==23.0.0\n")
    assert wheelhouse_key(requirements) != key


def test_a_complete_wheelhouse_is_reused_without_building(app, tmp_path):
    requirements = app / "requirements.txt"
    cache = tmp_path / "cache"
    house = cache / wheelhouse_key(requirements)
    house.mkdir(parents=True)
    (house / COMPLETE).write_text("")
    assert ensure_wheelhouse(requirements, cache) == (house, False)


def test_a_missing_requirements_file_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError):
        ensure_wheelhouse(tmp_path / "requirements.txt", tmp_path / "cache")


def test_combine_links_every_wheel_once(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    for house, names in ((one, ["a-1-py3-none-any.whl", "b-1-py3-none-any.whl"]),
                         (two, ["b-1-py3-none-any.whl", "c-2-py3-none-any.whl"])):  # fmt: skip
        house.mkdir()
        for name in names:
            (house / name).write_text(name)
        (house / COMPLETE).write_text("")
    assert combine([one, two], tmp_path / "all") == 3
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == [
        "a-1-py3-none-any.whl",
        "b-1-py3-none-any.whl",
        "c-2-py3-none-any.whl",
    ]
    assert (tmp_path / "all" / "a-1-py3-none-any.whl").stat().st_ino == (
        (one / "a-1-py3-none-any.whl").stat().st_ino
    )


@pytest.mark.parametrize(
    ("binds", "says"),
    [
        ({"missing": "/srv/wheelhouse"}, "bind source missing is not a directory"),
        ({".": "/etc/wheelhouse"}, "bind target '/etc/wheelhouse' must be a plain path"),
        ({".": "/srv/../etc"}, "bind target '/srv/../etc' must be a plain path"),
        ({".": "/srv/a:b"}, "bind target '/srv/a:b' must be a plain path"),
    ],
)
def test_up_refuses_a_bad_bind_before_touching_anything(tmp_path, monkeypatch, binds, says):
    monkeypatch.chdir(tmp_path)
    directory = tmp_path / "droplet"
    with pytest.raises(BadInput, match=says):
        droplet_mod.up(directory, binds=binds)
    assert not directory.exists()


def test_up_refuses_a_repository_that_is_not_a_bare_one(tmp_path):
    directory = tmp_path / "droplet"
    with pytest.raises(BadInput, match="is not a bare git repository"):
        droplet_mod.up(directory, repo=tmp_path)
    assert not directory.exists()

"""The connection file is written with mode 0600 whatever the folder already holds."""

import json
import os
import stat

import pytest

from actornet import connfile


def written(path):
    connfile.write(path, "tcp:host=127.0.0.1:port=9", "s3cret", 42)
    return json.loads(path.read_text())


def assert_private_regular_file(path):
    info = os.lstat(path)
    assert stat.S_ISREG(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o600


def test_a_leftover_world_readable_temporary_file_does_not_widen_the_mode(tmp_path):
    """A 0644 ``connection.json.tmp`` left in the folder changes nothing: the file is
    0600, the leftover is as it was, and no other file is left behind."""
    path = tmp_path / "connection.json"
    leftover = tmp_path / "connection.json.tmp"
    leftover.write_text("old")
    leftover.chmod(0o644)
    assert written(path) == {"endpoint": "tcp:host=127.0.0.1:port=9", "token": "s3cret",
                             "pid": 42}
    assert_private_regular_file(path)
    assert leftover.read_text() == "old"
    assert stat.S_IMODE(leftover.stat().st_mode) == 0o644
    assert sorted(os.listdir(tmp_path)) == ["connection.json", "connection.json.tmp"]


@pytest.mark.parametrize("existing", [True, False], ids=["to-a-file", "dangling"])
def test_a_symlink_at_the_temporary_path_is_not_written_through(tmp_path, existing):
    """A symlink planted at ``connection.json.tmp`` leaves its target untouched (or
    uncreated), and the connection file is a private regular file, not the link."""
    path = tmp_path / "connection.json"
    target = tmp_path / "elsewhere" / "target"
    target.parent.mkdir()
    if existing:
        target.write_text("theirs")
        target.chmod(0o644)
    (tmp_path / "connection.json.tmp").symlink_to(target)
    assert written(path)["token"] == "s3cret"
    assert_private_regular_file(path)
    if existing:
        assert target.read_text() == "theirs"
        assert stat.S_IMODE(target.stat().st_mode) == 0o644
    else:
        assert not target.exists()

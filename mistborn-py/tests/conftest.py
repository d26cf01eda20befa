"""Fixtures: every test gets its own data dir (SQLite) and an operator handle on it."""

import pytest

import mistborn


@pytest.fixture
def m(tmp_path):
    handle = mistborn.open(data_dir=tmp_path / "data", endpoint="vpn.example.org")
    yield handle
    handle.close()


@pytest.fixture
def bob(m):
    """A regular user `bob` with one profile, and a handle acting as bob."""
    m.users.create("bob", "bob-password")
    secret = m.tokens.create("bob", "script").secret
    handle = m.as_token(secret)
    handle.peers.create("bob-phone")
    return handle

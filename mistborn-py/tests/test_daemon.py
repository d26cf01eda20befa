"""mistborn.Daemon: the core daemon started from Python, unprivileged (data plane off), with DNS on
a loopback port answering a real query, stopped in order."""

import socket
import struct

import pytest

import mistborn


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def query_a(port: int, name: str) -> bytes:
    """One A query over UDP; returns the raw answer."""
    header = struct.pack(">HHHHHH", 0x4D42, 0x0100, 1, 0, 0, 0)
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(header + qname + struct.pack(">HH", 1, 1), ("127.0.0.1", port))
        return s.recv(512)


@pytest.fixture
def unprivileged(tmp_path):
    port = free_udp_port()
    conf = tmp_path / "mistborn.toml"
    conf.write_text(f'[wireguard]\nbackend = "none"\n[dns]\nlisten = ["127.0.0.1:{port}"]\n')
    handle = mistborn.open(data_dir=tmp_path / "data", config_file=conf)
    yield handle, port
    handle.close()


def test_daemon_runs_says_what_is_off_and_stops(unprivileged):
    m, port = unprivileged
    d = mistborn.Daemon.start(m)
    assert d.running
    s = d.status()
    assert not s.dataplane.on
    assert "wireguard.backend is 'none'" in s.dataplane.detail
    assert not s.firewall.on
    assert s.dns.on, s.dns.detail
    assert s.dns_addrs == [f"127.0.0.1:{port}"]
    assert s.change_watcher.on
    assert "session expiry (1 min)" in s.jobs
    # The resolver answers (the local zone: home.<suffix> is the server's tunnel address).
    answer = query_a(port, "home.mistborn")
    assert answer[:2] == b"\x4d\x42"
    assert answer[3] & 0x0F == 0, "rcode NOERROR"
    assert d.stop() == "was_off"
    assert not d.running
    assert d.stop() == "was_off"
    with pytest.raises(mistborn.InternalError):
        d.status()


def test_a_regular_user_cannot_start_the_daemon(unprivileged):
    m, _ = unprivileged
    m.users.create("bob", "bob-password")
    bob = m.as_token(m.tokens.create("bob", "script").secret)
    with pytest.raises(mistborn.Forbidden):
        mistborn.Daemon.start(bob)



def test_the_context_manager_stops_the_daemon(unprivileged):
    m, port = unprivileged
    with mistborn.Daemon.start(m) as d:
        assert d.running
        assert query_a(port, "home.mistborn")[3] & 0x0F == 0
    assert not d.running
    with pytest.raises(OSError):
        query_a(port, "home.mistborn")

"""The `firewall` API against a real store, on SQLite and on PostgreSQL (when
MISTBORN_TEST_POSTGRES_URL is set; required under CI): Coppercloud list CRUD, downloads and
refreshes from a real local HTTP server, bad input that changes nothing, the desired policy, the
metrics history, and that regular users may do none of it."""

import http.server
import os
import sqlite3
import subprocess
import threading
import time
import uuid

import pytest

import mistborn

LIST = "# known scanners\n192.0.2.0/24\n198.51.100.7 ; one host\n2001:db8::/32\n203.0.113.1-203.0.113.9\n"


class Store:
    """One fresh store: a data dir plus, for PostgreSQL, a database of its own."""

    def __init__(self, engine, data_dir, database_url=None):
        self.engine = engine
        self.data_dir = data_dir
        self.database_url = database_url

    def open(self, **kwargs):
        # The list server below runs on loopback, which list downloads refuse unless configured.
        config = self.data_dir.parent / "mistborn.toml"
        config.write_text("[download]\nallow_local = true\n")
        return mistborn.open(
            config_file=str(config),
            data_dir=self.data_dir,
            database_url=self.database_url,
            endpoint="vpn.example.org",
            **kwargs,
        )

    def sql(self, statement):
        """Runs one statement on the store's database, as the daemon's sampler would write."""
        if self.database_url is None:
            db = sqlite3.connect(self.data_dir / "mistborn.db", timeout=10)
            with db:
                db.execute(statement)
            db.close()
        else:
            psql(self.database_url, statement)


def psql(url, statement):
    subprocess.run(
        ["psql", url, "-v", "ON_ERROR_STOP=1", "-q", "-c", statement],
        check=True,
        capture_output=True,
    )


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    if request.param == "sqlite":
        yield Store("sqlite", tmp_path / "data")
        return
    admin_url = os.environ.get("MISTBORN_TEST_POSTGRES_URL")
    if not admin_url:
        if os.environ.get("CI"):
            pytest.fail("CI must set MISTBORN_TEST_POSTGRES_URL (scripts/test.sh starts PostgreSQL)")
        pytest.skip("PostgreSQL: MISTBORN_TEST_POSTGRES_URL is not set")
    name = "mbpy_%d_%s" % (os.getpid(), uuid.uuid4().hex[:12])
    psql(admin_url, "CREATE DATABASE %s" % name)
    try:
        yield Store("postgres", tmp_path / "data", admin_url.rsplit("/", 1)[0] + "/" + name)
    finally:
        psql(admin_url, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)


@pytest.fixture
def fw(store):
    """An operator handle on a fresh store (SQLite or PostgreSQL)."""
    handle = store.open()
    yield handle
    handle.close()


class ListServer:
    """A real HTTP server on 127.0.0.1 answering every GET with `status` and `body`."""

    def __init__(self):
        self.status, self.body, self.hits = 200, "", 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.hits += 1
                data = server.body.encode()
                self.send_response(server.status)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/list.txt" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def serve(self, body, status=200):
        self.status, self.body = status, body


@pytest.fixture
def server():
    s = ListServer()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


# --- Coppercloud lists ---------------------------------------------------------------------------


def test_list_lifecycle_from_text(fw):
    lists = fw.firewall.lists
    assert lists.list() == []
    before = int(time.time())
    scanners = lists.add("scanners", content=LIST)
    assert (scanners.name, scanners.mode, scanners.enabled) == ("scanners", "block", True)
    assert scanners.entries == 4
    assert scanners.url is None and scanners.last_error is None
    assert scanners.refreshed_at >= before and scanners.created_at >= before
    assert len(scanners.id) == 16 and int(scanners.id, 16) >= 0
    assert lists.get(scanners.id) == scanners
    assert lists.get("scanners") == scanners
    assert "scanners" in repr(scanners)

    friends = lists.add("friends", content="192.0.2.10\n", mode="allow")
    assert friends.mode == "allow" and friends.entries == 1
    assert [x.name for x in lists.list()] == ["friends", "scanners"]

    renamed = lists.update("scanners", name="bad hosts", mode="allow", enabled=False)
    assert (renamed.id, renamed.name, renamed.mode, renamed.enabled) == (
        scanners.id,
        "bad hosts",
        "allow",
        False,
    )
    assert renamed.entries == 4
    assert lists.get(scanners.id) == renamed
    refilled = lists.update(scanners.id, content="10.1.0.0/16\n10.2.0.0/16\n")
    assert refilled.entries == 2 and refilled.name == "bad hosts"
    assert lists.update(scanners.id).entries == 2  # nothing given: nothing changes

    lists.delete("bad hosts")
    with pytest.raises(mistborn.NotFound) as e:
        lists.get(scanners.id)
    assert e.value.code == "not_found"
    with pytest.raises(mistborn.NotFound):
        lists.delete(scanners.id)
    with pytest.raises(mistborn.NotFound):
        lists.update(scanners.id, enabled=True)
    with pytest.raises(mistborn.NotFound):
        lists.refresh(scanners.id)
    assert lists.list() == [friends]


def test_list_from_url_and_refresh(fw, server):
    lists = fw.firewall.lists
    server.serve("192.0.2.0/24\n")
    l = lists.add("feed", url=server.url, mode="allow")
    assert (l.url, l.mode, l.entries) == (server.url, "allow", 1)
    assert server.hits == 1

    server.serve("192.0.2.0/24\n198.51.100.0/24\n2001:db8::1\n")
    r = lists.refresh("feed")
    assert r.updated and r.list.entries == 3 and r.list.last_error is None
    assert lists.get("feed") == r.list

    # A download that is not a list (an HTML error page) keeps the last good copy.
    server.serve("192.0.2.1\n<html>\n10.0.0.0/33\n")
    with pytest.raises(mistborn.InvalidInput) as e:
        lists.refresh("feed")
    assert e.value.code == "invalid_input"
    assert "line 2: '<html>'" in str(e.value) and "line 3: '10.0.0.0/33'" in str(e.value)
    kept = lists.get("feed")
    assert kept.entries == 3 and kept.refreshed_at == r.list.refreshed_at
    assert "line 2" in kept.last_error

    server.serve("gone", status=404)
    with pytest.raises(mistborn.InvalidInput, match="HTTP 404"):
        lists.refresh("feed")
    assert lists.get("feed").entries == 3
    assert "404" in lists.get("feed").last_error

    # A good refresh clears the error.
    server.serve("203.0.113.0/24\n")
    r = lists.refresh("feed")
    assert r.list.entries == 1 and r.list.last_error is None

    # Changing the URL downloads it now; a failed download changes nothing.
    server.serve("nope", status=500)
    before = lists.get("feed")
    with pytest.raises(mistborn.InvalidInput, match="url"):
        lists.update("feed", url=server.url + "?v=2", name="renamed")
    assert lists.get("feed") == before
    server.serve("198.51.100.0/24\n198.51.100.1\n")
    moved = lists.update("feed", url=server.url + "?v=2")
    assert moved.url == server.url + "?v=2" and moved.entries == 2

    # An uploaded list has nothing to refresh from.
    lists.add("upload", content="192.0.2.1\n")
    with pytest.raises(mistborn.InvalidInput, match="no URL"):
        lists.refresh("upload")


def test_download_failure_adds_nothing(fw, server):
    server.serve("not found", status=404)
    with pytest.raises(mistborn.InvalidInput, match="url.*HTTP 404") as e:
        fw.firewall.lists.add("feed", url=server.url)
    assert e.value.code == "invalid_input"
    server.serve("<html><body>error</body></html>\n")
    with pytest.raises(mistborn.InvalidInput, match="line 1"):
        fw.firewall.lists.add("feed", url=server.url)
    assert fw.firewall.lists.list() == []


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (
            {"name": "junk", "content": "192.0.2.1\n10.0.0.0/33\n<html>\n"},
            r"invalid content: .*line 2: '10\.0\.0\.0/33', line 3: '<html>'",
        ),
        ({"name": "empty", "content": "# nothing\n\n"}, "invalid content: .*no address"),
        ({"name": "none"}, "invalid content: give the list's content or a URL"),
        ({"name": "bad/name", "content": "192.0.2.1"}, "invalid name"),
        ({"name": "", "content": "192.0.2.1"}, "invalid name"),
        ({"name": "x" * 65, "content": "192.0.2.1"}, "invalid name"),
        ({"name": "u", "url": "ftp://example.org/x"}, "invalid url: must be http"),
        ({"name": "u", "url": "not a url"}, "invalid url"),
        ({"name": "m", "content": "192.0.2.1", "mode": "deny"}, "invalid mode: 'deny'"),
    ],
)
def test_bad_list_input_is_invalid_and_changes_nothing(fw, kwargs, match):
    fw.firewall.lists.add("kept", content="192.0.2.0/24\n")
    before = fw.firewall.lists.list()
    with pytest.raises(mistborn.InvalidInput, match=match) as e:
        fw.firewall.lists.add(**kwargs)
    assert e.value.code == "invalid_input"
    assert fw.firewall.lists.list() == before


def test_bad_update_changes_nothing(fw):
    lists = fw.firewall.lists
    l = lists.add("kept", content="192.0.2.0/24\n")
    lists.add("other", content="192.0.2.1\n")
    for kwargs, match, exc in [
        ({"content": "192.0.2.1\nfoo\n", "name": "new"}, "line 2: 'foo'", mistborn.InvalidInput),
        ({"content": "", "enabled": False}, "invalid content", mistborn.InvalidInput),
        ({"name": "bad/name"}, "invalid name", mistborn.InvalidInput),
        ({"mode": "deny", "name": "new"}, "invalid mode", mistborn.InvalidInput),
        ({"url": "file:///etc/passwd"}, "invalid url", mistborn.InvalidInput),
        ({"name": "other"}, "named 'other' exists", mistborn.Conflict),
    ]:
        with pytest.raises(exc, match=match):
            lists.update(l.id, **kwargs)
        assert lists.get(l.id) == l, kwargs
    with pytest.raises(mistborn.Conflict) as e:
        lists.add("kept", content="192.0.2.1\n")
    assert e.value.code == "conflict"
    assert [x.name for x in lists.list()] == ["kept", "other"]


# --- the desired policy --------------------------------------------------------------------------


def test_policy_follows_the_store(fw):
    p = fw.firewall.policy()
    assert p.table == "inet mistborn"
    assert p.tunnel_interface == "mistborn0"
    assert p.wireguard_port == 51820
    assert p.lists == [] and p.mfa_pending == [] and p.client_to_client == []
    assert p.redirect_ports == []
    assert p.ssh_port == 22
    assert "inet mistborn" in repr(p)

    mfa = fw.peers.create("phone", user="admin", kind="mfa", listen_port="udp53")
    c2c = fw.peers.create("nas", user="admin", client_to_client=True)
    block = fw.firewall.lists.add("block", content=LIST)
    allow = fw.firewall.lists.add("allow", content="192.0.2.7\n192.0.2.8\n", mode="allow")
    off = fw.firewall.lists.add("off", content="192.0.2.9\n")
    fw.firewall.lists.update(off.id, enabled=False)

    p = fw.firewall.policy()
    assert sorted(p.mfa_pending) == sorted([mfa.address_v4, mfa.address_v6])
    assert sorted(p.client_to_client) == sorted([c2c.address_v4, c2c.address_v6])
    assert p.redirect_ports == [53]
    # Allow lists come first; adjacent addresses merge into one range; disabled lists are out.
    assert [(l.id, l.mode, l.ranges_v4, l.ranges_v6) for l in p.lists] == [
        (allow.id, "allow", 1, 0),
        (block.id, "block", 3, 1),
    ]
    assert fw.firewall.policy() == p


def test_policy_uses_the_configured_external_interface(tmp_path):
    cfg = tmp_path / "mistborn.toml"
    cfg.write_text('[firewall]\nexternal_interface = "uplink0"\nssh_port = 2222\n')
    with mistborn.open(data_dir=tmp_path / "d", config_file=cfg) as m:
        p = m.firewall.policy()
        assert p.external_interface == "uplink0"
        assert p.ssh_port == 2222


# --- metrics history -----------------------------------------------------------------------------


def test_metrics_history(store, fw):
    h = fw.firewall.metrics_history()
    assert (h.total_probes, h.buckets, h.top_ports, h.top_sources, h.lists) == (0, [], [], [], [])
    assert h.bucket_secs == 3600 and abs(h.since - (time.time() - 86_400)) < 60

    # What the daemon's sampler stores each minute: deltas per kind and key.
    now = int(time.time()) // 3600 * 3600
    for at, kind, key, n in [
        (now - 7200 + 60, "total", "", 5),
        (now - 7200 + 60, "port", "tcp/22", 4),
        (now - 7200 + 60, "port", "tcp/23", 1),
        (now - 7200 + 60, "source", "192.0.2.1", 5),
        (now + 60, "total", "", 7),
        (now + 60, "port", "tcp/22", 2),
        (now + 60, "port", "*", 5),
        (now + 60, "source", "198.51.100.9", 7),
        (now + 60, "list", "00aa11bb22cc33dd", 3),
        (now - 40 * 86_400, "total", "", 1000),  # outside the window
    ]:
        store.sql(
            "INSERT INTO firewall_samples (at, kind, key, packets) VALUES (%d, '%s', '%s', %d)"
            % (at, kind, key, n)
        )
    h = fw.firewall.metrics_history(since=now - 86_400)
    assert h.since == now - 86_400
    assert h.total_probes == 12
    assert [(b.start, b.probes, b.list_hits) for b in h.buckets] == [
        (now - 7200, 5, 0),
        (now, 7, 3),
    ]
    assert [(c.key, c.packets) for c in h.top_ports] == [("tcp/22", 6), ("tcp/23", 1)]
    assert [(c.key, c.packets) for c in h.top_sources] == [("198.51.100.9", 7), ("192.0.2.1", 5)]
    assert [(c.key, c.packets) for c in h.lists] == [("00aa11bb22cc33dd", 3)]

    one = fw.firewall.metrics_history(since=now - 86_400, bucket_secs=86_400, top=1)
    assert sum(b.probes for b in one.buckets) == 12 and one.bucket_secs == 86_400
    assert [c.key for c in one.top_ports] == ["tcp/22"]
    assert fw.firewall.metrics_history(since=now - 3600).total_probes == 7


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"bucket_secs": 0}, "invalid bucket: 0 is not 1 second to 366 days"),
        ({"bucket_secs": 367 * 86_400}, "invalid bucket"),
        ({"top": 0}, "invalid top: 0 is not 1 to 1000"),
        ({"top": 1001}, "invalid top"),
        ({"top": -5}, "invalid top: -5"),
    ],
)
def test_bad_history_input_is_invalid(fw, kwargs, match):
    with pytest.raises(mistborn.InvalidInput, match=match) as e:
        fw.firewall.metrics_history(**kwargs)
    assert e.value.code == "invalid_input"


# --- who may ---------------------------------------------------------------------------------------


def test_regular_user_may_not_touch_the_firewall(m, bob):
    kept = m.firewall.lists.add("kept", content="192.0.2.0/24\n")
    fw = bob.firewall
    calls = [
        lambda: fw.lists.list(),
        lambda: fw.lists.get("kept"),
        lambda: fw.lists.add("mine", content="192.0.2.1\n"),
        lambda: fw.lists.update("kept", enabled=False),
        lambda: fw.lists.delete("kept"),
        lambda: fw.lists.refresh("kept"),
        lambda: fw.policy(),
        lambda: fw.metrics_history(),
    ]
    for call in calls:
        with pytest.raises(mistborn.Forbidden) as e:
            call()
        assert e.value.code == "forbidden"
    assert m.firewall.lists.list() == [kept]

    # A superuser's token may.
    m.users.set_role("bob", "superuser")
    boss = m.as_token(m.tokens.create("bob", "firewall-script").secret)
    assert boss.firewall.lists.get("kept") == kept
    assert boss.firewall.policy().lists[0].id == kept.id

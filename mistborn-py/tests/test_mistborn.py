"""The `mistborn` module against a real store: every method, the typed exceptions, what a regular
user sees, and backup/restore."""

import base64
import os
import stat

import pytest

import mistborn

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
UNKNOWN_UUID = "00000000-0000-4000-8000-000000000000"


def is_wg_key(text):
    return len(text) == 44 and len(base64.b64decode(text)) == 32


# --- open, config, first start -------------------------------------------------------------------


def test_first_start_creates_admin_and_reopen_keeps_keys(tmp_path):
    data = tmp_path / "data"
    m = mistborn.open(data_dir=data, endpoint="vpn.example.org")
    assert m.is_system
    assert m.admin_password_file == str(data / "admin-password")
    password = open(m.admin_password_file).read().strip()
    assert len(password) >= 8
    assert oct(os.stat(m.admin_password_file).st_mode & 0o777) == "0o600"
    assert is_wg_key(m.server_public_key)
    assert m.endpoint == "vpn.example.org"
    assert m.data_dir == str(data)
    admin = m.users.check_password("admin", password)
    assert admin.role == "superuser"
    [default] = m.peers.list()
    assert (default.username, default.name) == ("admin", "default")
    key = m.server_public_key
    m.close()

    again = mistborn.open(data_dir=data)
    assert again.admin_password_file is None
    assert again.server_public_key == key
    again.close()


def test_config_file_then_arguments(tmp_path):
    cfg = tmp_path / "mistborn.toml"
    cfg.write_text('endpoint = "from-file.example"\n[wireguard]\nlisten_port = 4000\n')
    with mistborn.open(data_dir=tmp_path / "a", config_file=cfg) as m:
        assert m.endpoint == "from-file.example"
        peer = m.peers.list()[0]
        assert "Endpoint = from-file.example:4000\n" in m.peers.client_config(peer.id)
    with mistborn.open(
        data_dir=tmp_path / "b", config_file=cfg, endpoint="arg.example", listen_port=5000
    ) as m:
        assert m.endpoint == "arg.example"
        assert "Endpoint = arg.example:5000\n" in m.peers.client_config(m.peers.list()[0].id)


def test_use_env_reads_mistborn_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("MISTBORN_ENDPOINT", "env.example")
    with mistborn.open(data_dir=tmp_path / "a") as m:
        assert m.endpoint == "127.0.0.1"
    with mistborn.open(data_dir=tmp_path / "b", use_env=True) as m:
        assert m.endpoint == "env.example"


@pytest.mark.parametrize(
    "kwargs, code",
    [
        ({"subnet_v4": "10.0.0.0/33"}, "invalid_input"),
        ({"subnet_v6": "not-a-net"}, "invalid_input"),
        ({"wg_interface": "much-too-long-interface"}, "config"),
        ({"endpoint": " "}, "config"),
        ({"database_url": "mysql://x"}, "config"),
    ],
)
def test_bad_config_is_invalid_input(tmp_path, kwargs, code):
    with pytest.raises(mistborn.InvalidInput) as e:
        mistborn.open(data_dir=tmp_path / "d", **kwargs)
    assert e.value.code == code
    assert not (tmp_path / "d").exists(), "a refused config must create nothing"


def test_missing_config_file(tmp_path):
    with pytest.raises(mistborn.MistbornError) as e:
        mistborn.open(data_dir=tmp_path / "d", config_file=tmp_path / "nope.toml")
    assert e.value.code == "io"
    assert "nope.toml" in str(e.value)


def test_closed_handle_raises_internal_error(tmp_path):
    with mistborn.open(data_dir=tmp_path / "d") as m:
        pass
    with pytest.raises(mistborn.InternalError):
        m.users.list()


def test_exception_hierarchy():
    for cls in (
        mistborn.InvalidInput,
        mistborn.NotFound,
        mistborn.Unauthenticated,
        mistborn.Forbidden,
        mistborn.Conflict,
        mistborn.RateLimited,
        mistborn.InternalError,
    ):
        assert issubclass(cls, mistborn.MistbornError)
    assert issubclass(mistborn.MistbornError, Exception)


# --- keys ----------------------------------------------------------------------------------------


def test_keys():
    kp = mistborn.generate_key_pair()
    assert is_wg_key(kp.private_key) and is_wg_key(kp.public_key)
    assert mistborn.public_key(kp.private_key) == kp.public_key
    assert kp.private_key not in repr(kp)
    # RFC 7748 test vector.
    assert (
        mistborn.public_key("dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=")
        == "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="
    )
    for bad in ["", "abc", "AAAA", "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LC=="]:
        with pytest.raises(mistborn.InvalidInput) as e:
            mistborn.public_key(bad)
        assert e.value.code == "invalid_input"


# --- users ---------------------------------------------------------------------------------------


def test_users_lifecycle(m):
    carol = m.users.create("carol", "carol-password")
    assert (carol.username, carol.role) == ("carol", "regular")
    assert carol.created_at > 0
    assert m.users.get("carol") == carol
    assert m.users.get(carol.id) == carol
    assert sorted(u.username for u in m.users.list()) == ["admin", "carol"]

    promoted = m.users.set_role("carol", "superuser")
    assert promoted.role == "superuser"
    assert m.users.get("carol").role == "superuser"
    assert m.users.set_role("carol", "regular").role == "regular"

    m.users.set_password("carol", "new-password")
    assert m.users.check_password("carol", "new-password").id == carol.id
    with pytest.raises(mistborn.Unauthenticated) as e:
        m.users.check_password("carol", "carol-password")
    assert e.value.code == "unauthenticated"
    with pytest.raises(mistborn.Unauthenticated):
        m.users.check_password("nobody", "whatever-password")

    m.users.delete("carol")
    with pytest.raises(mistborn.NotFound) as e:
        m.users.get("carol")
    assert e.value.code == "not_found"
    assert [u.username for u in m.users.list()] == ["admin"]


@pytest.mark.parametrize("name", ["", "Bob", "-bob", "a b", "ü", "x" * 33])
def test_bad_username_is_invalid_and_changes_nothing(m, name):
    with pytest.raises(mistborn.InvalidInput) as e:
        m.users.create(name, "long-enough")
    assert "username" in str(e.value)
    assert [u.username for u in m.users.list()] == ["admin"]


def test_user_errors(m):
    with pytest.raises(mistborn.InvalidInput, match="password"):
        m.users.create("dave", "short")
    with pytest.raises(mistborn.InvalidInput, match="role"):
        m.users.create("dave", "long-enough", role="king")
    m.users.create("dave", "long-enough")
    with pytest.raises(mistborn.Conflict) as e:
        m.users.create("dave", "long-enough")
    assert e.value.code == "conflict"
    with pytest.raises(mistborn.NotFound):
        m.users.get("nobody")
    with pytest.raises(mistborn.NotFound):
        m.users.delete(UNKNOWN_UUID)
    with pytest.raises(mistborn.Conflict, match="last superuser"):
        m.users.delete("admin")
    with pytest.raises(mistborn.Conflict, match="last superuser"):
        m.users.set_role("admin", "regular")
    with pytest.raises(mistborn.InvalidInput, match="system actor"):
        m.users.me()


# --- tokens --------------------------------------------------------------------------------------


def test_tokens_lifecycle(m):
    m.users.create("erin", "erin-password")
    new = m.tokens.create("erin", "ansible")
    assert new.secret and new.secret not in repr(new)
    assert new.token.name == "ansible"
    assert new.token.last_used_at is None
    [listed] = m.tokens.list("erin")
    assert listed == new.token

    erin = m.as_token(new.secret)
    assert not erin.is_system
    assert erin.users.me().username == "erin"
    assert m.tokens.list("erin")[0].last_used_at is not None

    with pytest.raises(mistborn.Conflict):
        m.tokens.create("erin", "ansible")
    with pytest.raises(mistborn.InvalidInput):
        m.tokens.create("erin", "")

    m.tokens.revoke(new.token.id)
    assert m.tokens.list("erin") == []
    with pytest.raises(mistborn.Unauthenticated):
        m.as_token(new.secret)
    with pytest.raises(mistborn.NotFound):
        m.tokens.revoke(new.token.id)
    with pytest.raises(mistborn.InvalidInput):
        m.tokens.revoke("not-a-uuid")
    with pytest.raises(mistborn.Unauthenticated) as e:
        m.as_token("mb_not-a-real-token")
    assert e.value.code == "unauthenticated"


# --- profiles ------------------------------------------------------------------------------------


def test_profiles_lifecycle(m):
    p = m.peers.create("laptop", user="admin")
    assert (p.username, p.name, p.kind, p.listen_port) == ("admin", "laptop", "wireguard", "default")
    assert p.server_generated_key and is_wg_key(p.public_key)
    assert p.address_v4.startswith("10.15.91.") and p.address_v6.startswith("fd15:91::")
    assert m.peers.get(p.id) == p
    assert m.peers.find("laptop", user="admin") == p
    assert {x.name for x in m.peers.list()} == {"default", "laptop"}
    assert {x.name for x in m.peers.list(user="admin")} == {"default", "laptop"}

    text = m.peers.client_config(p.id)
    assert "[Interface]\nAddress = %s/32, %s/128\n" % (p.address_v4, p.address_v6) in text
    assert "PublicKey = %s\n" % m.server_public_key in text
    assert "Endpoint = vpn.example.org:51820\n" in text
    private = text.split("PrivateKey = ")[1].split("\n")[0]
    assert mistborn.public_key(private) == p.public_key

    changed = m.peers.update(
        p.id, name="work laptop", kind="mfa", client_to_client=True, listen_port="udp53"
    )
    assert (changed.name, changed.kind, changed.client_to_client, changed.listen_port) == (
        "work laptop",
        "mfa",
        True,
        "udp53",
    )
    assert m.peers.get(p.id) == changed
    assert m.peers.update(p.id).name == "work laptop"  # nothing given: nothing changes
    assert "Endpoint = vpn.example.org:53\n" in m.peers.client_config(p.id)

    png = m.peers.qr_png(p.id)
    assert isinstance(png, bytes) and png.startswith(PNG_SIGNATURE)
    assert len(png) > 500
    term = m.peers.qr_terminal(p.id)
    assert len(term.splitlines()) > 10

    m.peers.delete(p.id)
    with pytest.raises(mistborn.NotFound):
        m.peers.get(p.id)
    with pytest.raises(mistborn.NotFound):
        m.peers.delete(p.id)


def test_profile_with_device_key(m):
    kp = mistborn.generate_key_pair()
    p = m.peers.create("tablet", user="admin", public_key=kp.public_key, listen_port="udp443")
    assert p.public_key == kp.public_key
    assert not p.server_generated_key
    text = m.peers.client_config(p.id)
    assert "PrivateKey = <the private key generated on the device>\n" in text
    assert "Endpoint = vpn.example.org:443\n" in text
    with pytest.raises(mistborn.Conflict, match="public key"):
        m.peers.create("tablet2", user="admin", public_key=kp.public_key)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"name": "x", "public_key": "not-a-key"}, "key"),
        ({"name": "x", "public_key": base64.b64encode(b"short").decode()}, "32 bytes"),
        ({"name": ""}, "profile name"),
        ({"name": "a\nb"}, "profile name"),
        ({"name": "x" * 65}, "profile name"),
        ({"name": "x", "kind": "vpn"}, "kind"),
        ({"name": "x", "listen_port": "8080"}, "listen_port"),
    ],
)
def test_bad_profile_input_is_invalid_and_changes_nothing(m, kwargs, match):
    before = m.peers.list()
    with pytest.raises(mistborn.InvalidInput, match=match) as e:
        m.peers.create(user="admin", **kwargs)
    assert e.value.code == "invalid_input"
    assert m.peers.list() == before


def test_profile_errors(m):
    for bad_id in [UNKNOWN_UUID, "not-a-uuid"]:
        for call in (m.peers.get, m.peers.delete, m.peers.client_config, m.peers.qr_png):
            with pytest.raises(mistborn.NotFound):
                call(bad_id)
        with pytest.raises(mistborn.NotFound):
            m.peers.update(bad_id, name="x")
    with pytest.raises(mistborn.NotFound):
        m.peers.find("nope", user="admin")
    with pytest.raises(mistborn.NotFound):
        m.peers.create("x", user="nobody")
    with pytest.raises(mistborn.InvalidInput, match="user"):
        m.peers.create("x")  # the operator is no user: it must name the owner
    with pytest.raises(mistborn.Conflict, match="already has a profile"):
        m.peers.create("default", user="admin")
    p = m.peers.create("second", user="admin")
    with pytest.raises(mistborn.Conflict):
        m.peers.update(p.id, name="default")
    with pytest.raises(mistborn.InvalidInput):
        m.peers.update(p.id, kind="nope")
    assert m.peers.get(p.id).name == "second"


def test_address_pool_exhaustion_is_a_conflict_with_its_own_code(tmp_path):
    # A /30 holds one client address besides the server's; admin's default profile takes it.
    with mistborn.open(data_dir=tmp_path / "d", subnet_v4="10.99.0.0/30") as m:
        with pytest.raises(mistborn.Conflict) as e:
            m.peers.create("second", user="admin")
        assert e.value.code == "pool_exhausted"
        assert [p.name for p in m.peers.list()] == ["default"]


def test_enroll(m):
    kp = mistborn.generate_key_pair()
    answer = m.peers.enroll("phone", kp.public_key, user="admin", kind="mfa")
    assert (answer.profile_name, answer.kind, answer.public_key) == ("phone", "mfa", kp.public_key)
    assert answer.server_public_key == m.server_public_key
    assert answer.endpoint_host == "vpn.example.org" and answer.endpoint_port == 51820
    assert len(answer.dns) == 2
    peer = m.peers.get(answer.profile_id)
    assert not peer.server_generated_key

    device = answer.client_config(kp.private_key)
    server = m.peers.client_config(answer.profile_id)
    assert device == server.replace(
        "<the private key generated on the device>", kp.private_key
    )
    assert kp.private_key not in answer.to_json() and kp.public_key in answer.to_json()
    with pytest.raises(mistborn.InvalidInput, match="does not belong"):
        answer.client_config(mistborn.generate_key_pair().private_key)
    with pytest.raises(mistborn.InvalidInput):
        answer.client_config("garbage")
    with pytest.raises(mistborn.InvalidInput):
        m.peers.enroll("phone2", "garbage", user="admin")


# --- a regular user's view -----------------------------------------------------------------------


def test_regular_user_sees_only_their_own(m, bob):
    admin_default = m.peers.find("default", user="admin")
    assert [p.name for p in bob.peers.list()] == ["bob-phone"]
    assert {p.name for p in m.peers.list()} == {"default", "bob-phone"}
    own = bob.peers.find("bob-phone")
    assert own.username == "bob"
    assert bob.peers.get(own.id) == own
    assert "PrivateKey = " in bob.peers.client_config(own.id)
    assert bob.peers.qr_png(own.id).startswith(PNG_SIGNATURE)
    assert bob.peers.update(own.id, name="bob-phone-2").name == "bob-phone-2"

    # Others' profiles do not exist for bob.
    for call in (bob.peers.get, bob.peers.client_config, bob.peers.delete, bob.peers.qr_png):
        with pytest.raises(mistborn.NotFound):
            call(admin_default.id)
    with pytest.raises(mistborn.NotFound):
        bob.peers.update(admin_default.id, name="mine now")
    with pytest.raises(mistborn.NotFound):
        bob.peers.list(user="admin")
    with pytest.raises(mistborn.NotFound):
        bob.peers.create("sneaky", user="admin")
    assert m.peers.get(admin_default.id) == admin_default

    # User administration is for superusers.
    with pytest.raises(mistborn.Forbidden) as e:
        bob.users.list()
    assert e.value.code == "forbidden"
    with pytest.raises(mistborn.Forbidden):
        bob.users.create("mallory", "mallory-password")
    with pytest.raises(mistborn.Forbidden):
        bob.users.set_role("bob", "superuser")
    with pytest.raises(mistborn.Forbidden):
        bob.users.delete("admin")
    with pytest.raises(mistborn.NotFound):
        bob.users.get("admin")
    with pytest.raises(mistborn.NotFound):
        bob.tokens.create("admin", "steal")
    with pytest.raises(mistborn.Forbidden):
        bob.backup("/tmp/never-written.json")

    # But bob manages himself.
    assert bob.users.me().username == "bob"
    bob.users.set_password("bob", "bob-new-password")
    assert m.users.check_password("bob", "bob-new-password").username == "bob"
    extra = bob.tokens.create("bob", "second")
    assert {t.name for t in bob.tokens.list("bob")} == {"script", "second"}
    bob.tokens.revoke(extra.token.id)
    created = bob.peers.create("bob-laptop")
    assert created.username == "bob"
    bob.peers.delete(created.id)


def test_promotion_applies_to_new_token_handles(m, bob):
    m.users.set_role("bob", "superuser")
    fresh = m.as_token(m.tokens.create("bob", "admin-script").secret)
    assert {p.name for p in fresh.peers.list()} == {"default", "bob-phone"}


# --- backup and restore --------------------------------------------------------------------------


def test_backup_restore_roundtrip(m, bob, tmp_path):
    own = bob.peers.find("bob-phone")
    config_before = m.peers.client_config(own.id)
    users_before = m.users.list()
    peers_before = m.peers.list()
    path = tmp_path / "backup.json"
    m.backup(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

    target = tmp_path / "restored"
    mistborn.restore(path, data_dir=target)
    with mistborn.open(data_dir=target, endpoint="vpn.example.org") as r:
        assert r.admin_password_file is None
        assert r.server_public_key == m.server_public_key
        assert r.users.list() == users_before
        assert r.peers.list() == peers_before
        # The private keys were sealed with the restored secret key and still open.
        assert r.peers.client_config(own.id) == config_before
        assert r.users.check_password("bob", "bob-password").username == "bob"

    with pytest.raises(mistborn.Conflict):
        mistborn.restore(path, data_dir=target)
    m.peers.create("after-backup", user="admin")
    # An existing file is never written over unless asked.
    with pytest.raises(mistborn.Conflict, match="already exists"):
        m.backup(path)
    m.backup(path, force=True)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    mistborn.restore(path, data_dir=target, replace=True)
    with mistborn.open(data_dir=target) as r:
        assert "after-backup" in {p.name for p in r.peers.list()}


def test_restore_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 99}')
    with pytest.raises(mistborn.InvalidInput, match="backup"):
        mistborn.restore(bad, data_dir=tmp_path / "r")
    bad.write_text("not json")
    with pytest.raises(mistborn.InvalidInput, match="not a Mistborn backup"):
        mistborn.restore(bad, data_dir=tmp_path / "r")
    with pytest.raises(mistborn.MistbornError) as e:
        mistborn.restore(tmp_path / "missing.json", data_dir=tmp_path / "r")
    assert e.value.code == "io"


def test_check_password_needs_rights_and_hides_which_part_was_wrong(m, bob):
    import time

    m.users.create("carol", "carol-password")
    # A regular user's handle checks only its own password: no oracle for other accounts, and the
    # same refusal whether or not the other account exists.
    assert bob.users.check_password("bob", "bob-password").username == "bob"
    with pytest.raises(mistborn.Unauthenticated):
        bob.users.check_password("bob", "wrong-password")
    for other in ["carol", "admin", "nobody"]:
        with pytest.raises(mistborn.Forbidden, match="superuser"):
            bob.users.check_password(other, "carol-password")

    # An unknown user costs what a wrong password costs (a hash is checked either way).
    def median_secs(username):
        times = []
        for _ in range(7):
            start = time.perf_counter()
            with pytest.raises(mistborn.Unauthenticated):
                m.users.check_password(username, "not-the-password")
            times.append(time.perf_counter() - start)
        return sorted(times)[3]

    median_secs("nobody")  # warm-up: the first unknown user makes the dummy hash
    unknown, wrong = median_secs("nobody"), median_secs("carol")
    assert wrong > 0.005, f"a password check takes time ({wrong:.4f} s)"
    assert 0.5 < unknown / wrong < 2, f"unknown user {unknown:.4f} s, wrong password {wrong:.4f} s"

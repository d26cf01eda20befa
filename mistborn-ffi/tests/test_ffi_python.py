"""mistborn-ffi through its generated Python binding, as a companion app would use it.

Run by scripts/test-ffi.sh from a temp dir holding bindings/python/mistborn_ffi.py and the built
libmistborn_ffi.so: key generation, the enrollment request, rendering the config from the server's
answer with the device's own key, QR payloads, and the typed errors for bad input.
"""

import base64
import json

import pytest

import mistborn_ffi as ffi


def is_wg_key(text):
    return len(text) == 44 and len(base64.b64decode(text)) == 32


def server_answer(device_public_key, **overrides):
    """The JSON a Mistborn server answers an enrollment with (EnrollmentAnswer in core)."""
    answer = {
        "profile_id": "7b0e7a36-5d0f-4a57-9b7a-2a5d1c7e0f11",
        "profile_name": "Anna's phone",
        "kind": "mfa",
        "address_v4": "10.15.91.7",
        "address_v6": "fd15:91::7",
        "dns": ["10.15.91.1", "fd15:91::1"],
        "public_key": device_public_key,
        "server_public_key": ffi.generate_key_pair().public_key,
        "preshared_key": ffi.generate_key_pair().public_key,
        "endpoint_host": "vpn.example.org",
        "endpoint_port": 51820,
    }
    answer.update(overrides)
    return json.dumps(answer)


def test_key_generation_on_the_device():
    kp = ffi.generate_key_pair()
    assert is_wg_key(kp.private_key) and is_wg_key(kp.public_key)
    assert kp.private_key != kp.public_key
    assert ffi.public_key_from_private(kp.private_key) == kp.public_key
    assert ffi.generate_key_pair().private_key != kp.private_key
    # RFC 7748 test vector.
    assert (
        ffi.public_key_from_private("dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=")
        == "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="
    )
    assert ffi.validate_key("  " + kp.public_key + "\n") == kp.public_key


def test_enrollment_request_carries_only_the_public_key():
    kp = ffi.generate_key_pair()
    request = ffi.enrollment_request("Anna's phone", kp.public_key, ffi.ProfileKind.MFA)
    assert request.profile_name == "Anna's phone"
    assert request.kind == ffi.ProfileKind.MFA
    assert request.listen_port == ffi.ListenPort.DEFAULT
    assert request.client_to_client is False
    request.listen_port = ffi.ListenPort.UDP443
    body = json.loads(ffi.enrollment_request_json(request))
    assert body == {
        "name": "Anna's phone",
        "public_key": kp.public_key,
        "kind": "mfa",
        "client_to_client": False,
        "listen_port": "udp443",
    }
    assert kp.private_key not in json.dumps(body)


def test_render_config_from_the_answer_with_the_device_key():
    kp = ffi.generate_key_pair()
    answer = ffi.parse_enrollment_answer(server_answer(kp.public_key))
    assert answer.kind == ffi.ProfileKind.MFA
    assert answer.dns == ["10.15.91.1", "fd15:91::1"]
    text = ffi.render_client_config(answer, kp.private_key)
    assert text == (
        "# Mistborn profile: Anna's phone\n"
        "[Interface]\n"
        "Address = 10.15.91.7/32, fd15:91::7/128\n"
        "DNS = 10.15.91.1, fd15:91::1\n"
        f"PrivateKey = {kp.private_key}\n"
        "\n"
        "[Peer]\n"
        f"PublicKey = {answer.server_public_key}\n"
        f"PresharedKey = {answer.preshared_key}\n"
        "AllowedIPs = 0.0.0.0/0, ::/0\n"
        "Endpoint = vpn.example.org:51820\n"
        "PersistentKeepalive = 25\n"
    )
    parsed = ffi.parse_client_config(text)
    assert parsed.private_key == kp.private_key
    assert parsed.address_v4 == "10.15.91.7" and parsed.address_v6 == "fd15:91::7"
    assert parsed.endpoint == "vpn.example.org:51820"
    assert parsed.profile_name == "Anna's phone"

    v6 = ffi.parse_enrollment_answer(server_answer(kp.public_key, endpoint_host="2001:db8::1"))
    assert "Endpoint = [2001:db8::1]:51820\n" in ffi.render_client_config(v6, kp.private_key)


def test_qr_payload_and_png():
    kp = ffi.generate_key_pair()
    answer = ffi.parse_enrollment_answer(server_answer(kp.public_key))
    text = ffi.render_client_config(answer, kp.private_key)
    assert ffi.qr_payload(text) == text
    # Hand-edited (reordered keys, comments, lowercase keys) comes back canonical.
    edited = text.replace("PersistentKeepalive = 25\n", "").replace(
        "[Peer]\n", "[Peer]\n# my server\npersistentkeepalive = 25\n"
    )
    assert ffi.qr_payload(edited) == text
    png = ffi.qr_png(text, 4)
    assert isinstance(png, bytes) and png.startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize("bad", ["", "abc", "AAAA", "not base64 at all!", "A" * 42 + "=="])
def test_malformed_keys_are_invalid_input(bad):
    with pytest.raises(ffi.MistbornError.InvalidInput) as e:
        ffi.validate_key(bad)
    assert e.value.code == "invalid_input"
    assert "key" in e.value.reason
    with pytest.raises(ffi.MistbornError.InvalidInput):
        ffi.enrollment_request("phone", bad, ffi.ProfileKind.WIREGUARD)
    with pytest.raises(ffi.MistbornError.InvalidInput):
        ffi.public_key_from_private(bad)


def test_bad_enrollment_input_is_invalid_input():
    kp = ffi.generate_key_pair()
    for name in ["", "a\nb", "x" * 65]:
        with pytest.raises(ffi.MistbornError.InvalidInput, match="profile name"):
            ffi.enrollment_request(name, kp.public_key, ffi.ProfileKind.WIREGUARD)
    request = ffi.enrollment_request("phone", kp.public_key, ffi.ProfileKind.WIREGUARD)
    request.public_key = "garbage"
    with pytest.raises(ffi.MistbornError.InvalidInput):
        ffi.enrollment_request_json(request)


def test_answer_errors():
    kp = ffi.generate_key_pair()
    answer = ffi.parse_enrollment_answer(server_answer(kp.public_key))
    # Another device's key: refused, so a config never pairs the wrong keys.
    with pytest.raises(ffi.MistbornError.InvalidInput, match="does not belong"):
        ffi.render_client_config(answer, ffi.generate_key_pair().private_key)
    with pytest.raises(ffi.MistbornError.InvalidInput):
        ffi.render_client_config(answer, "garbage")
    answer.address_v4 = "10.15.91"
    with pytest.raises(ffi.MistbornError.InvalidInput, match="address_v4"):
        ffi.render_client_config(answer, kp.private_key)
    for bad_json in ["", "{}", "[1, 2]", server_answer("garbage"), server_answer(kp.public_key, endpoint_port=70000)]:
        with pytest.raises(ffi.MistbornError.InvalidInput, match="enrollment answer"):
            ffi.parse_enrollment_answer(bad_json)


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda t: t.replace("PublicKey = ", "PublicKey = x"), "PublicKey"),
        (lambda t: t.replace("Endpoint = vpn.example.org:51820", "Endpoint = vpn"), "host:port"),
        (lambda t: t.replace("[Peer]", "[Peer]\nMTU = 1280"), "unknown setting"),
        (lambda t: t.split("[Peer]")[0], "missing"),
        (lambda t: "", "missing PrivateKey"),
    ],
)
def test_bad_configs_name_the_problem(edit, expected):
    kp = ffi.generate_key_pair()
    text = ffi.render_client_config(ffi.parse_enrollment_answer(server_answer(kp.public_key)), kp.private_key)
    for call in (ffi.parse_client_config, ffi.qr_payload):
        with pytest.raises(ffi.MistbornError.InvalidInput, match=expected) as e:
            call(edit(text))
        assert e.value.code == "invalid_input"

"""Type stubs of the `mistborn` module (the pyo3 extension built from mistborn-py).

Checked against the built module by `tests/test_stubs.py` (mypy's stubtest).
"""

import os
from types import TracebackType
from typing import Literal, final

__all__ = [
    "__version__",
    "open",
    "restore",
    "generate_key_pair",
    "public_key",
    "Mistborn",
    "Users",
    "Tokens",
    "Peers",
    "User",
    "ApiToken",
    "NewToken",
    "Peer",
    "EnrollmentAnswer",
    "KeyPair",
    "MistbornError",
    "InvalidInput",
    "NotFound",
    "Unauthenticated",
    "Forbidden",
    "Conflict",
    "InternalError",
]

__version__: str

_Role = Literal["superuser", "regular"]
_Kind = Literal["wireguard", "mfa"]
_ListenPort = Literal["default", "udp53", "udp443"]
_StrPath = str | os.PathLike[str]

def open(
    data_dir: _StrPath | None = None,
    config_file: _StrPath | None = None,
    database_url: str | None = None,
    endpoint: str | None = None,
    *,
    listen_port: int | None = None,
    subnet_v4: str | None = None,
    subnet_v6: str | None = None,
    dns_suffix: str | None = None,
    wg_interface: str | None = None,
    use_env: bool = False,
) -> Mistborn:
    """Opens (on first start: initialises) Mistborn; the handle acts as the operator."""

def restore(
    path: _StrPath,
    data_dir: _StrPath | None = None,
    config_file: _StrPath | None = None,
    database_url: str | None = None,
    *,
    replace: bool = False,
    use_env: bool = False,
) -> None:
    """Restores a backup file into an empty store (or over one with `replace=True`)."""

def generate_key_pair() -> KeyPair:
    """A fresh WireGuard key pair."""

def public_key(private_key: str) -> str:
    """The public key of a base64 private key."""

class MistbornError(Exception):
    """Base of every Mistborn error."""

    code: str
    """Stable machine-readable code, e.g. `"pool_exhausted"`."""

class InvalidInput(MistbornError): ...
class NotFound(MistbornError): ...
class Unauthenticated(MistbornError): ...
class Forbidden(MistbornError): ...
class Conflict(MistbornError): ...
class InternalError(MistbornError): ...

@final
class Mistborn:
    """An open Mistborn acting as the operator (`open()`) or as a user (`as_token()`)."""

    @property
    def admin_password_file(self) -> str | None: ...
    @property
    def users(self) -> Users: ...
    @property
    def tokens(self) -> Tokens: ...
    @property
    def peers(self) -> Peers: ...
    @property
    def server_public_key(self) -> str: ...
    @property
    def endpoint(self) -> str: ...
    @property
    def data_dir(self) -> str: ...
    @property
    def is_system(self) -> bool: ...
    def as_token(self, token: str) -> Mistborn: ...
    def backup(self, path: _StrPath) -> None: ...
    def close(self) -> None: ...
    def __enter__(self) -> Mistborn: ...
    def __exit__(
        self,
        *_args: type[BaseException] | BaseException | TracebackType | None,
    ) -> bool: ...

@final
class Users:
    def create(self, username: str, password: str, role: _Role = "regular") -> User: ...
    def list(self) -> list[User]: ...
    def get(self, user: str) -> User: ...
    def me(self) -> User: ...
    def delete(self, user: str) -> None: ...
    def set_role(self, user: str, role: _Role) -> User: ...
    def set_password(self, user: str, password: str) -> None: ...
    def check_password(self, username: str, password: str) -> User: ...

@final
class Tokens:
    def create(self, user: str, name: str) -> NewToken: ...
    def list(self, user: str) -> list[ApiToken]: ...
    def revoke(self, id: str) -> None: ...

@final
class Peers:
    def create(
        self,
        name: str,
        user: str | None = None,
        kind: _Kind = "wireguard",
        client_to_client: bool = False,
        listen_port: _ListenPort = "default",
        public_key: str | None = None,
    ) -> Peer: ...
    def enroll(
        self,
        name: str,
        public_key: str,
        user: str | None = None,
        kind: _Kind = "wireguard",
        client_to_client: bool = False,
        listen_port: _ListenPort = "default",
    ) -> EnrollmentAnswer: ...
    def list(self, user: str | None = None) -> list[Peer]: ...
    def get(self, id: str) -> Peer: ...
    def find(self, name: str, user: str | None = None) -> Peer: ...
    def update(
        self,
        id: str,
        *,
        name: str | None = None,
        kind: _Kind | None = None,
        client_to_client: bool | None = None,
        listen_port: _ListenPort | None = None,
    ) -> Peer: ...
    def delete(self, id: str) -> None: ...
    def client_config(self, id: str) -> str: ...
    def qr_png(self, id: str) -> bytes: ...
    def qr_terminal(self, id: str) -> str: ...

@final
class User:
    @property
    def id(self) -> str: ...
    @property
    def username(self) -> str: ...
    @property
    def role(self) -> _Role: ...
    @property
    def created_at(self) -> int: ...

@final
class ApiToken:
    @property
    def id(self) -> str: ...
    @property
    def user_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def created_at(self) -> int: ...
    @property
    def last_used_at(self) -> int | None: ...

@final
class NewToken:
    @property
    def token(self) -> ApiToken: ...
    @property
    def secret(self) -> str: ...

@final
class Peer:
    @property
    def id(self) -> str: ...
    @property
    def user_id(self) -> str: ...
    @property
    def username(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> _Kind: ...
    @property
    def client_to_client(self) -> bool: ...
    @property
    def listen_port(self) -> _ListenPort: ...
    @property
    def address_v4(self) -> str: ...
    @property
    def address_v6(self) -> str: ...
    @property
    def public_key(self) -> str: ...
    @property
    def server_generated_key(self) -> bool: ...
    @property
    def created_at(self) -> int: ...

@final
class EnrollmentAnswer:
    @property
    def profile_id(self) -> str: ...
    @property
    def profile_name(self) -> str: ...
    @property
    def kind(self) -> _Kind: ...
    @property
    def address_v4(self) -> str: ...
    @property
    def address_v6(self) -> str: ...
    @property
    def dns(self) -> list[str]: ...
    @property
    def public_key(self) -> str: ...
    @property
    def server_public_key(self) -> str: ...
    @property
    def preshared_key(self) -> str: ...
    @property
    def endpoint_host(self) -> str: ...
    @property
    def endpoint_port(self) -> int: ...
    def client_config(self, private_key: str) -> str: ...
    def to_json(self) -> str: ...

@final
class KeyPair:
    @property
    def private_key(self) -> str: ...
    @property
    def public_key(self) -> str: ...

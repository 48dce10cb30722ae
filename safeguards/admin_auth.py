"""Who may administer the safeguards, and proof that a registry record came from them.

Administrators are not users of the data: each has an admin token and a TOTP second
factor (RFC 6238, pyotp), kept in the administrators file (`ALPR_SG_ADMINS_FILE`, JSON,
mode 0600), outside Redis: whoever can reach Redis cannot make an administrator. Only
an scrypt hash of the token is in the file; the TOTP secret is there in clear (a TOTP
verifier needs it), which is why the file is root's and not Redis's.

Every agency and user record in the data Redis carries `sig`, an HMAC-SHA256 over its
kind, id and fields with the record key (`ALPR_SG_RECORD_KEY_FILE`, also outside
Redis). The API and the CLI accept a record only with a valid `sig`: a user hash written
straight into Redis, or an `enabled` flag flipped there, is refused and shows as
UNSIGNED in `alpr user list`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pyotp

__all__ = [
    "ADMIN_TOKEN_PREFIX",
    "AdminAuthError",
    "AdminDirectory",
    "RecordSigner",
    "generate_record_key",
    "hash_secret",
    "secret_matches",
]

ADMIN_TOKEN_PREFIX = "sga1"
_ADMIN_ID = re.compile(r"[a-z0-9][a-z0-9_-]{1,63}")
_KEY_BYTES = 32
SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


class AdminAuthError(Exception):
    """Administration refused: bad or missing admin credentials (the message says which
    part, never whether the admin exists)."""

    def __init__(self, message: str, claimed: str = "") -> None:
        super().__init__(message)
        self.claimed = claimed


def hash_secret(secret: str, n: int = SCRYPT_N) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=n, r=_SCRYPT_R, p=_SCRYPT_P,
                            dklen=32)
    b64 = base64.b64encode
    return f"scrypt${n}${_SCRYPT_R}${_SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def secret_matches(secret: str, stored: str) -> bool:
    """Constant-time check of `secret` against `hash_secret`'s output."""
    try:
        scheme, n, r, p, salt_b64, digest_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        salt, expected = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
        digest = hashlib.scrypt(secret.encode(), salt=salt, n=int(n), r=int(r), p=int(p),
                                dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, expected)


# --- signed registry records -------------------------------------------------------------


def generate_record_key(path: Path) -> None:
    """Write a new random record key to `path` (mode 0600); refuse to overwrite one."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(_KEY_BYTES) + "\n")


@dataclass(frozen=True)
class RecordSigner:
    """HMAC-SHA256 of registry records with a key that never enters Redis."""

    key: bytes

    def __post_init__(self) -> None:
        if len(self.key) < _KEY_BYTES:
            raise ValueError(f"the record key must hold at least {_KEY_BYTES} bytes")

    @classmethod
    def from_file(cls, path: Path) -> RecordSigner:
        try:
            text = path.read_text().strip()
        except OSError as exc:
            raise ValueError(f"cannot read the record key {path}: {exc.strerror}") from exc
        try:
            return cls(bytes.fromhex(text))
        except ValueError as exc:
            raise ValueError(f"the record key {path} is not {_KEY_BYTES}+ bytes of hex "
                             "(`alpr admin keygen` writes one)") from exc

    def _mac(self, kind: str, record_id: str, fields: dict[str, str]) -> str:
        body = json.dumps([kind, record_id, {k: v for k, v in fields.items() if k != "sig"}],
                          sort_keys=True, separators=(",", ":"))
        return hmac.new(self.key, body.encode(), hashlib.sha256).hexdigest()

    def sign(self, kind: str, record_id: str, fields: dict[str, str]) -> dict[str, str]:
        """`fields` with their `sig`."""
        clean = {k: v for k, v in fields.items() if k != "sig"}
        return {**clean, "sig": self._mac(kind, record_id, clean)}

    def valid(self, kind: str, record_id: str, fields: dict[str, str]) -> bool:
        sig = fields.get("sig", "")
        return bool(sig) and hmac.compare_digest(sig, self._mac(kind, record_id, fields))


# --- administrators ----------------------------------------------------------------------


class AdminDirectory:
    """The administrators file: {"admins": {id: {"token_hash", "totp_secret"}}}."""

    def __init__(self, path: Path, *, token_cost: int = SCRYPT_N) -> None:
        self.path = path
        self._token_cost = token_cost
        # A dummy hash to check against for an unknown admin: same cost, same time.
        self._dummy = hash_secret(secrets.token_urlsafe(16), token_cost)

    def _load(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise AdminAuthError(f"cannot read the administrators file {self.path}: "
                                 f"{exc}") from exc
        admins = data.get("admins", {}) if isinstance(data, dict) else {}
        return admins if isinstance(admins, dict) else {}

    def ids(self) -> list[str]:
        return sorted(self._load())

    def add(self, admin_id: str) -> tuple[str, str]:
        """Create an administrator; returns (token, TOTP secret), shown once."""
        if not _ADMIN_ID.fullmatch(admin_id):
            raise ValueError("admin id: 2-64 of a-z 0-9 _ - starting with a letter or digit")
        admins = self._load()
        if admin_id in admins:
            raise ValueError(f"administrator {admin_id!r} exists")
        token = f"{ADMIN_TOKEN_PREFIX}.{admin_id}.{secrets.token_urlsafe(32)}"
        totp_secret = pyotp.random_base32()
        admins[admin_id] = {"token_hash": hash_secret(token, self._token_cost),
                            "totp_secret": totp_secret}
        self._write({"admins": admins})
        return token, totp_secret

    def _write(self, data: dict[str, object]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(data, fh, indent=1)
            os.replace(name, self.path)
        finally:
            if os.path.exists(name):
                os.unlink(name)

    @staticmethod
    def claimed(token: str | None) -> str:
        parts = (token or "").split(".", 2)
        if len(parts) == 3 and parts[0] == ADMIN_TOKEN_PREFIX and _ADMIN_ID.fullmatch(
                parts[1]):
            return parts[1]
        return ""

    def authenticate(self, token: str | None, totp_code: str | None) -> str:
        """The administrator's id, or AdminAuthError. Both factors are always checked."""
        admin_id = self.claimed(token)
        if not token or not admin_id:
            raise AdminAuthError("an admin token is required (--admin-token-file)")
        if not (totp_code or "").strip():
            raise AdminAuthError("a TOTP code is required (--totp)", admin_id)
        entry = self._load().get(admin_id) or {}
        token_ok = secret_matches(token, entry.get("token_hash") or self._dummy)
        secret = entry.get("totp_secret") or pyotp.random_base32()
        # One step either side: a code typed at the end of its 30 s still counts.
        totp_ok = pyotp.TOTP(secret).verify((totp_code or "").strip(), valid_window=1)
        if not (entry and token_ok and totp_ok):
            raise AdminAuthError("admin authentication failed", admin_id)
        return admin_id

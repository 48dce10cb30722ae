"""Who may search: the owning department and the MOU agencies, and their users.

Key layout (prefix `alpr:sg:`):

    agencies               SET   agency ids
    agency:{id}            HASH  name, kind (owner | mou), mou_reference, enabled, added_at
    users                  SET   user ids
    user:{id}              HASH  name, agency_id, employer, roles, enabled, token_hash,
                                 created_at

Tokens are `sg1.{user_id}.{secret}` with 256 random bits; only an scrypt hash is stored
and the token is shown once, at creation. Each request re-reads the user and agency
hashes, so disabling either (one HSET) takes effect on the very next request. Federal
bodies are refused on every request, not only when added: a name edited straight into
Redis still gets no access. A user's employer must be its own agency (an allow-list: the
registry's MOU agency, never a name outside it), checked when added and on every request.

Which agencies have an MOU is the policy's `mou_agencies`, nowhere else: every request
checks the agency against the current policy (re-read from its file when the registry
was built with a policy source), so taking an agency off that list refuses it from the
next request on, with no registry change to forget. The registry's `enabled` flag is
only an extra switch to suspend an agency the policy allows. The policy an admission was
decided under travels with the `Principal`, so the rest of the request (the search
terms) uses that same reading.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum

import redis

from safeguards import KEY_PREFIX
from safeguards.admin_auth import RecordSigner, hash_secret, secret_matches
from safeguards.policy import Policy, PolicyError, agency_id_for
from safeguards.retention import now_ms

__all__ = [
    "AccessDeniedError",
    "AccessRegistry",
    "Agency",
    "AgencyKind",
    "Principal",
    "RegistryError",
    "Role",
    "User",
    "agency_id_for",
]

TOKEN_PREFIX = "sg1"
_USER_ID = re.compile(r"[a-z0-9][a-z0-9_-]{1,63}")
# scrypt cost: ~20-50 ms per check on one core; results are cached per token (below).
# The parameters are stored with each hash, so raising the cost later keeps old tokens.
SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


class Role(StrEnum):
    SEARCH = "search"
    VERIFY = "verify"  # verify or dismiss alerts: owning agency only
    DISPATCH = "dispatch"  # see live alerts in the dispatch console: owning agency only


class AgencyKind(StrEnum):
    OWNER = "owner"
    MOU = "mou"


class RegistryError(ValueError):
    """An administrative change the policy does not allow (federal body, no MOU, ...)."""


class AccessDeniedError(Exception):
    """Authentication or authorisation failed. `code` is for the audit trail; the HTTP
    status and message are what the caller sees."""

    def __init__(self, code: str, status: int, message: str, *, user_id: str = "",
                 agency_id: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.user_id = user_id
        self.agency_id = agency_id


@dataclass(frozen=True, slots=True)
class Agency:
    agency_id: str
    name: str
    kind: str
    mou_reference: str
    enabled: bool
    added_at: int
    signed: bool = False  # carries a valid `sig` (made through `alpr`, not Redis)


@dataclass(frozen=True, slots=True)
class User:
    user_id: str
    name: str
    agency_id: str
    employer: str
    roles: frozenset[str]
    enabled: bool
    created_at: int
    signed: bool = False
    expires_at: int = 0  # the token's; 0 = no expiry (records made before expiry existed)


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated, authorised user for the duration of one request, and the
    policy that request is decided under (read once, at admission)."""

    user_id: str
    agency_id: str
    agency_name: str
    agency_kind: str
    roles: frozenset[str]
    policy: Policy = field(repr=False, compare=False)


_hash_token = hash_secret


def employed_by(employer: str, agency: Agency) -> bool:
    """Whether `employer` names `agency` itself. Compared as the ASCII agency id, so a
    look-alike letter (a Cyrillic o) or another body's name never matches."""
    return employer.isascii() and agency_id_for(employer) == agency.agency_id
_token_matches = secret_matches


def _decode(row: dict) -> dict[str, str]:
    return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes)
            else v) for k, v in row.items()}


class AccessRegistry:
    def __init__(
        self,
        client: redis.Redis,
        policy: Policy | Callable[[], Policy],
        *,
        prefix: str = KEY_PREFIX,
        clock: Callable[[], int] = now_ms,
        token_cost: int = SCRYPT_N,
        signer: RecordSigner,
        token_ttl_s: int = 90 * 86_400,
    ) -> None:
        if token_cost < 2**10 or token_cost & (token_cost - 1):
            raise ValueError("token_cost must be a power of two >= 1024")
        self.client = client
        # A callable is asked on every request (`AuditedPolicy` of the site's file):
        # the terms an administrator edits are the ones in force, in a running API too.
        self._policy_source: Callable[[], Policy] = (
            (lambda: policy) if isinstance(policy, Policy) else policy)
        self._token_cost = token_cost
        # Agency and user records are signed with a key kept outside Redis: a record
        # written straight into Redis is refused (`record_not_signed`).
        self.signer = signer
        self._token_ttl_ms = token_ttl_s * 1000
        # Checked against when the claimed user is unknown: the same scrypt work as a
        # wrong secret, so timing does not tell which user ids exist.
        self._dummy_hash = _hash_token(secrets.token_urlsafe(16), token_cost)
        self.prefix = prefix
        self._clock = clock
        # sha256(token) -> the stored hash it was checked against: skips scrypt on repeat
        # requests. Keyed on the stored hash too, so a rotated token misses the cache.
        self._verified: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def policy(self) -> Policy:
        """The policy in force now (PolicyError if its file cannot be read or its change
        audited): the one place a request gets its policy from."""
        return self._policy_source()

    # --- agencies ----------------------------------------------------------------------

    def _agency_key(self, agency_id: str) -> str:
        return f"{self.prefix}agency:{agency_id}"

    def ensure_defaults(self) -> int:
        """Register the owning agency and the policy's MOU agencies that are missing.

        Existing entries are left alone: a disabled agency stays disabled.
        """
        return self.add_defaults(self.missing_defaults())

    def missing_defaults(self) -> list[tuple[str, dict[str, str]]]:
        """(agency id, registry entry) of the default agencies not registered yet."""
        wanted = [self._validated(self.policy.owning_agency, AgencyKind.OWNER,
                                  "owning agency")] + [
            self._validated(name, AgencyKind.MOU,
                            "default configuration: Denver transparency portal")
            for name in self.policy.mou_agencies
        ]
        pipe = self.client.pipeline(transaction=False)
        for agency_id, _ in wanted:
            pipe.exists(self._agency_key(agency_id))
        return [row for row, exists in zip(wanted, pipe.execute(), strict=True)
                if not exists]

    def add_defaults(self, missing: list[tuple[str, dict[str, str]]]) -> int:
        """Register `missing` (from missing_defaults); returns how many."""
        if missing:
            pipe = self.client.pipeline(transaction=True)
            for agency_id, mapping in missing:
                pipe.hset(self._agency_key(agency_id),
                          mapping=self.signer.sign("agency", agency_id, mapping))
                pipe.sadd(f"{self.prefix}agencies", agency_id)
            pipe.execute()
        return len(missing)

    def _validated(self, name: str, kind: AgencyKind | str,
                   mou_reference: str) -> tuple[str, dict[str, str]]:
        """(agency id, hash fields) of an agency the policy allows; RegistryError if not."""
        name = " ".join(name.split())
        kind = AgencyKind(kind)
        policy = self.policy
        if marker := policy.federal_marker(name):
            raise RegistryError(f"{name!r} is a federal body ({marker!r}): federal agencies "
                                "get no access to Denver's data")
        if kind is AgencyKind.OWNER and name != policy.owning_agency:
            raise RegistryError(f"only {policy.owning_agency!r} owns the data")
        if kind is AgencyKind.MOU and not mou_reference.strip():
            raise RegistryError(f"{name!r}: an agency needs a signed MOU (give its reference)")
        agency_id = agency_id_for(name)
        if not agency_id:
            raise RegistryError("agency name has no letters or digits")
        if kind is AgencyKind.MOU and not policy.has_mou(agency_id):
            # An entry the access check would refuse anyway: say so now.
            raise RegistryError(f"{name!r} is not on the policy's MOU list (mou_agencies): "
                                "add it to the policy file first")
        return agency_id, {"name": name, "kind": kind.value,
                           "mou_reference": mou_reference.strip(), "enabled": "1",
                           "added_at": str(self._clock())}

    def add_agency(self, name: str, kind: AgencyKind | str, mou_reference: str = "") -> Agency:
        agency_id, mapping = self._validated(name, kind, mou_reference)
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(self._agency_key(agency_id))
        pipe.hset(self._agency_key(agency_id),
                  mapping=self.signer.sign("agency", agency_id, mapping))
        pipe.sadd(f"{self.prefix}agencies", agency_id)
        pipe.execute()
        agency = self.agency(agency_id)
        assert agency is not None
        return agency

    def agency(self, agency_id: str) -> Agency | None:
        return self._agency_of(agency_id, self.client.hgetall(self._agency_key(agency_id)))

    def _agency_of(self, agency_id: str, raw: dict) -> Agency | None:
        row = _decode(raw)
        if not row:
            return None
        return Agency(agency_id, row.get("name", ""), row.get("kind", ""),
                      row.get("mou_reference", ""), row.get("enabled") == "1",
                      int(row.get("added_at", "0") or 0),
                      self.signer.valid("agency", agency_id, row))

    def _resign(self, kind: str, key: str, record_id: str, changes: dict[str, str]) -> None:
        """Change fields of a signed record and sign it again (a record that was not
        signed stays refused: its other fields keep no valid signature to carry on)."""
        row = _decode(self.client.hgetall(key))
        if not self.signer.valid(kind, record_id, row):
            raise RegistryError(f"the {kind} record {record_id!r} is not signed with the "
                                "record key (written outside `alpr`): recreate it")
        self.client.hset(key, mapping=self.signer.sign(kind, record_id, {**row, **changes}))

    def agencies(self) -> list[Agency]:
        ids = sorted(m.decode() if isinstance(m, bytes) else m
                     for m in self.client.smembers(f"{self.prefix}agencies"))
        pipe = self.client.pipeline(transaction=False)
        for agency_id in ids:
            pipe.hgetall(self._agency_key(agency_id))
        rows = pipe.execute() if ids else []
        found = (self._agency_of(i, raw) for i, raw in zip(ids, rows, strict=True))
        return [a for a in found if a is not None]

    def set_agency_enabled(self, agency_id: str, enabled: bool) -> Agency:
        agency = self.agency(agency_id)
        if agency is None:
            raise RegistryError(f"no agency {agency_id!r}")
        if enabled:
            # Re-enabling cannot give access the policy refuses (a federal body, an
            # agency off the MOU list or whose MOU reference is gone): a refusal like any
            # registry change.
            try:
                self._check_agency_allowed(replace(agency, enabled=True), self.policy)
            except AccessDeniedError as exc:
                raise RegistryError(f"{agency.name!r} cannot be enabled: {exc.message}"
                                    ) from exc
        self._resign("agency", self._agency_key(agency_id), agency_id,
                     {"enabled": "1" if enabled else "0"})
        agency = self.agency(agency_id)
        assert agency is not None
        return agency

    def allowed(self, agency: Agency, policy: Policy | None = None) -> bool:
        """Whether the agency may use the system now (under `policy`, default: current)."""
        try:
            self._check_agency_allowed(agency, self.policy if policy is None else policy)
        except AccessDeniedError:
            return False
        return True

    @staticmethod
    def _check_agency_allowed(agency: Agency, policy: Policy) -> None:
        """Raise AccessDeniedError unless the agency may use the system under `policy`."""
        aid = agency.agency_id
        if not agency.signed:
            raise AccessDeniedError("agency_record_not_signed", 403, "your agency's record "
                                    "was not made by an administrator", agency_id=aid)
        if marker := policy.federal_marker(agency.name):
            raise AccessDeniedError("federal_agency", 403, f"federal bodies ({marker}) have "
                                    "no access to this data", agency_id=aid)
        if agency.kind == AgencyKind.OWNER and agency.name == policy.owning_agency:
            pass
        elif agency.kind == AgencyKind.MOU and not policy.has_mou(aid):
            raise AccessDeniedError("no_mou", 403, "your agency is not on the policy's list "
                                    "of agencies with a memorandum of understanding with "
                                    "Denver", agency_id=aid)
        elif agency.kind != AgencyKind.MOU or not agency.mou_reference:
            raise AccessDeniedError("agency_without_mou", 403, "your agency has no "
                                    "memorandum of understanding with Denver", agency_id=aid)
        if not agency.enabled:
            raise AccessDeniedError("agency_disabled", 403, "your agency's access is disabled",
                                    agency_id=aid)

    # --- users -------------------------------------------------------------------------

    def _user_key(self, user_id: str) -> str:
        return f"{self.prefix}user:{user_id}"

    def add_user(
        self,
        user_id: str,
        agency_id: str,
        *,
        name: str = "",
        roles: Iterable[Role | str] = (Role.SEARCH,),
        employer: str = "",
    ) -> tuple[User, str]:
        """Create a user; returns (user, token). The token is not stored: show it once."""
        if not _USER_ID.fullmatch(user_id):
            raise RegistryError("user id: 2-64 of a-z 0-9 _ - starting with a letter or digit")
        agency = self.agency(agency_id)
        if agency is None:
            raise RegistryError(f"no agency {agency_id!r}")
        employer = " ".join(employer.split()) or agency.name
        if marker := self.policy.federal_marker(agency.name):
            raise RegistryError(f"{agency.name!r} is a federal body ({marker!r}): no access")
        if not employed_by(employer, agency):
            # An allow-list, not a deny-list: "Fbi", "Secret Service" or a homoglyph
            # spelling is refused because it is not the user's own (MOU) agency.
            raise RegistryError(f"employer {employer!r} is not the user's agency "
                                f"{agency.name!r}: a user must be employed by its own agency")
        role_set = {Role(r) for r in roles}
        if Role.VERIFY in role_set and agency.kind != AgencyKind.OWNER:
            raise RegistryError("only the owning agency's users verify alerts")
        if Role.DISPATCH in role_set and agency.kind != AgencyKind.OWNER:
            raise RegistryError("only the owning agency's users see live alerts")
        token = f"{TOKEN_PREFIX}.{user_id}.{secrets.token_urlsafe(32)}"
        created = self.client.hsetnx(self._user_key(user_id), "agency_id", agency_id)
        if not created:
            raise RegistryError(f"user {user_id!r} exists (use rotate-token)")
        now = self._clock()
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(self._user_key(user_id), mapping=self.signer.sign("user", user_id, {
            "name": name or user_id, "agency_id": agency_id, "employer": employer,
            "roles": ",".join(sorted(r.value for r in role_set)), "enabled": "1",
            "token_hash": _hash_token(token, self._token_cost), "created_at": str(now),
            "token_expires_at": str(now + self._token_ttl_ms),
        }))
        pipe.sadd(f"{self.prefix}users", user_id)
        pipe.execute()
        user = self.user(user_id)
        assert user is not None
        return user, token

    def rotate_token(self, user_id: str) -> str:
        if self.user(user_id) is None:
            raise RegistryError(f"no user {user_id!r}")
        token = f"{TOKEN_PREFIX}.{user_id}.{secrets.token_urlsafe(32)}"
        self._resign("user", self._user_key(user_id), user_id, {
            "token_hash": _hash_token(token, self._token_cost),
            "token_expires_at": str(self._clock() + self._token_ttl_ms)})
        return token

    def user(self, user_id: str) -> User | None:
        row = _decode(self.client.hgetall(self._user_key(user_id)))
        if not row or "token_hash" not in row:
            return None
        return User(user_id, row.get("name", ""), row.get("agency_id", ""),
                    row.get("employer", ""),
                    frozenset(r for r in row.get("roles", "").split(",") if r),
                    row.get("enabled") == "1", int(row.get("created_at", "0") or 0),
                    self.signer.valid("user", user_id, row),
                    int(row.get("token_expires_at", "0") or 0))

    def users(self) -> list[User]:
        ids = sorted(m.decode() if isinstance(m, bytes) else m
                     for m in self.client.smembers(f"{self.prefix}users"))
        return [u for u in (self.user(i) for i in ids) if u is not None]

    def set_user_enabled(self, user_id: str, enabled: bool) -> User:
        if self.user(user_id) is None:
            raise RegistryError(f"no user {user_id!r}")
        self._resign("user", self._user_key(user_id), user_id,
                     {"enabled": "1" if enabled else "0"})
        user = self.user(user_id)
        assert user is not None
        return user

    # --- authentication ----------------------------------------------------------------

    @staticmethod
    def claimed_user(token: str | None) -> str:
        """The user id a token claims (for the audit of a refused request), or ""."""
        if not token:
            return ""
        parts = token.split(".", 2)
        if len(parts) == 3 and parts[0] == TOKEN_PREFIX and _USER_ID.fullmatch(parts[1]):
            return parts[1]
        return ""

    def authenticate(self, token: str | None) -> Principal:
        """The principal behind `token`, or AccessDeniedError (401 bad credentials, 403
        revoked / disabled / not allowed)."""
        if not token:
            raise AccessDeniedError("missing_token", 401, "a bearer token is required")
        user_id = self.claimed_user(token)
        if not user_id:
            raise AccessDeniedError("malformed_token", 401, "invalid credentials")
        row = _decode(self.client.hgetall(self._user_key(user_id)))
        stored = row.get("token_hash", "")
        # An unknown user costs the same scrypt as a wrong secret: same answer, same time.
        if not self._check_token(token, stored or self._dummy_hash) or not stored:
            raise AccessDeniedError("invalid_token", 401, "invalid credentials",
                                    user_id=user_id)
        if not self.signer.valid("user", user_id, row):
            raise AccessDeniedError("user_record_not_signed", 401, "invalid credentials",
                                    user_id=user_id)
        if int(row.get("token_expires_at", "0") or 0) < self._clock():
            raise AccessDeniedError("token_expired", 401, "this token has expired: ask an "
                                    "administrator for a new one (rotate-token)",
                                    user_id=user_id)
        agency_id = row.get("agency_id", "")
        if row.get("enabled") != "1":
            raise AccessDeniedError("user_disabled", 403, "this user's access is revoked",
                                    user_id=user_id, agency_id=agency_id)
        try:
            policy = self.policy  # one reading for the whole decision
        except PolicyError as exc:
            # Fail closed: a broken edit must not leave an older MOU list in force.
            raise AccessDeniedError("policy_unavailable", 503, "the access policy cannot be "
                                    "read, so access is refused", user_id=user_id,
                                    agency_id=agency_id) from exc
        agency = self.agency(agency_id)
        if agency is None:
            raise AccessDeniedError("agency_unknown", 403, "your agency is not registered",
                                    user_id=user_id, agency_id=agency_id)
        if not employed_by(row.get("employer", ""), agency):
            raise AccessDeniedError("employer_not_agency", 403, "users must be employed by "
                                    "their own agency", user_id=user_id, agency_id=agency_id)
        try:
            self._check_agency_allowed(agency, policy)
        except AccessDeniedError as exc:
            exc.user_id = user_id
            raise
        return Principal(user_id, agency.agency_id, agency.name, agency.kind,
                         frozenset(r for r in row.get("roles", "").split(",") if r), policy)

    def _check_token(self, token: str, stored: str) -> bool:
        key = hashlib.sha256(token.encode()).hexdigest()
        with self._lock:
            if self._verified.get(key) == stored:
                self._verified.move_to_end(key)
                return True
        if not _token_matches(token, stored):
            return False
        with self._lock:
            self._verified[key] = stored
            while len(self._verified) > 1024:
                self._verified.popitem(last=False)
        return True

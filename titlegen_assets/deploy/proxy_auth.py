"""The public proxy's authentication service: nginx asks it about every request (``auth_request``) before the request
reaches a Dagster UI, and it answers 200 (with the user and role), 401 (no or wrong credentials) or 403 (refused,
with the reason in ``X-Titlegen-Refused``; nginx answers a locked-out client 429).

Why a service and not nginx's ``auth_basic``: nginx checks the password before any limit applies, so a client being
refused for guessing still got in with the right password; here a client with ``max_failures`` failed logins in the
last ``window_s`` seconds gets nothing, the right password included, and costs no hash check. Passwords are bcrypt
hashes (the cost is in each hash: 10 is 50 to 100 ms of one core); a verified ``Authorization`` header is remembered
for ``cache_s`` (keyed by an HMAC under a key made at start, so the memory holds no password), so the UI's many
requests pay one check, not one each.

It also refuses what a browser can be made to send from another site (the UI's GraphQL endpoint, WebSockets and any
write must come from the UI's own origin) and a GraphQL mutation in a URL (dagster-webserver executes ``?query=`` on
GET and on non-JSON POSTs). Viewers are sent to a ``--read-only`` webserver, which refuses every write itself.

    python -m titlegen_assets.deploy.proxy_auth serve           # the compose service ``proxy_auth``
    python -m titlegen_assets.deploy.proxy_auth hash USER       # a password file line; the password from stdin
"""

from __future__ import annotations

import base64
import binascii
import getpass
import hashlib
import hmac
import http.server
import os
import secrets
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import bcrypt
from graphql import GraphQLError, OperationType, parse
from graphql.language import OperationDefinitionNode

OPERATOR, VIEWER = "operator", "viewer"
BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")
#: the cost ``hash`` writes: 50 to 100 ms a check on one core, paid once per login (the cache) and at most
#: ``max_failures`` times per window by a guessing client
BCRYPT_COST = 10
#: what the browser says of a request made by the UI's own page (``same-origin``) or typed by the user (``none``)
OWN_FETCH_SITES = {"same-origin", "none"}
SAFE_METHODS = {"GET", "HEAD"}
#: the most clients and verified credentials remembered at once (a flood of addresses cannot fill the memory)
MAX_ENTRIES = 100_000


class ProxyFilesError(ValueError):
    """A password or roles file the service cannot use; says which file and line, and what to do."""


@dataclass(frozen=True)
class Users:
    """Who may log in (``user:bcrypt-hash`` lines) and who of them is an operator; everyone else is a viewer."""

    hashes: dict[str, bytes]
    operators: frozenset[str]

    @staticmethod
    def load(password_file: Path, operators_file: Path) -> Users:
        hashes: dict[str, bytes] = {}
        for number, line in enumerate(password_file.read_text().splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            user, sep, hashed = line.partition(":")
            if not sep or not user or not hashed.startswith(BCRYPT_PREFIXES):
                raise ProxyFilesError(f"{password_file}, line {number}: expected 'user:<bcrypt hash>' (a hash starting "
                                      f"with $2b$ or $2y$); make the line with `python -m "
                                      f"titlegen_assets.deploy.proxy_auth hash USER` or `htpasswd -nB USER`")
            hashes[user] = hashed.encode()
        if not hashes:
            raise ProxyFilesError(f"{password_file} holds no user: nobody could log in")
        operators = set()
        for number, line in enumerate(operators_file.read_text().splitlines(), start=1):
            name = line.split("#", 1)[0].strip()
            if name and name not in hashes:
                raise ProxyFilesError(f"{operators_file}, line {number}: operator {name!r} has no line in "
                                      f"{password_file}")
            if name:
                operators.add(name)
        return Users(hashes, frozenset(operators))

    def role(self, user: str) -> str:
        return OPERATOR if user in self.operators else VIEWER


@dataclass
class FailedLogins:
    """Failed logins per client address over a sliding window: a client with ``max_failures`` in the last
    ``window_s`` seconds is locked out until the oldest of them is older than that."""

    max_failures: int
    window_s: float
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, deque] = field(default_factory=dict)

    def _recent(self, client: str) -> deque:
        failures = self._failures.get(client, deque())
        while failures and failures[0] <= self.clock() - self.window_s:
            failures.popleft()
        if not failures:
            self._failures.pop(client, None)
        return failures

    def locked(self, client: str) -> bool:
        return len(self._recent(client)) >= self.max_failures

    def record(self, client: str) -> None:
        if len(self._failures) >= MAX_ENTRIES:
            for known in list(self._failures):
                self._recent(known)
        self._failures.setdefault(client, self._recent(client)).append(self.clock())


@dataclass
class Verifier:
    """Checks ``Authorization: Basic`` headers against the users' bcrypt hashes, remembering the verified ones."""

    users: Users
    cache_s: float
    clock: Callable[[], float] = time.monotonic
    _key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    _verified: dict[bytes, tuple[str, float]] = field(default_factory=dict)
    #: compared against for an unknown user, so that a wrong name costs what a wrong password does
    _dummy: bytes = field(default_factory=lambda: bcrypt.hashpw(b"-", bcrypt.gensalt(BCRYPT_COST)))

    def user(self, authorization: str) -> str | None:
        """The user the header proves, or None."""
        digest = hmac.new(self._key, authorization.encode(), hashlib.sha256).digest()
        cached = self._verified.get(digest)
        if cached and cached[1] > self.clock():
            return cached[0]
        scheme, _, encoded = authorization.partition(" ")
        try:
            user, sep, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        if scheme.lower() != "basic" or not sep:
            return None
        hashed = self.users.hashes.get(user)
        try:
            matches = bcrypt.checkpw(password.encode(), hashed or self._dummy)
        except ValueError:  # bcrypt refuses passwords over 72 bytes: no hash of ours matches one
            return None
        if not matches or hashed is None:
            return None
        if len(self._verified) >= MAX_ENTRIES:
            self._verified.clear()
        self._verified[digest] = (user, self.clock() + self.cache_s)
        return user


def own_origin(host: str, port: int) -> str:
    """The Origin a browser sends from the UI's pages (no port when it is HTTPS's own)."""
    return f"https://{host.lower()}" + ("" if port == 443 else f":{port}")


def carries_mutation(query_string: str) -> bool:
    """Whether a URL's query string holds a GraphQL document with a mutation (or one that cannot be read)."""
    for document in parse_qs(query_string).get("query", []):
        try:
            operations = parse(document).definitions
        except GraphQLError:
            return True
        if any(isinstance(o, OperationDefinitionNode) and o.operation == OperationType.MUTATION for o in operations):
            return True
    return False


def refusal(method: str, path: str, query_string: str, headers: Mapping[str, str], origin: str) -> str | None:
    """Why a request must not reach the UI, whoever sends it, or None."""
    graphql = path.rstrip("/") == "/graphql"
    if graphql or method not in SAFE_METHODS or headers.get("upgrade"):
        fetch_site = headers.get("sec-fetch-site")
        sent_origin = headers.get("origin")
        if (fetch_site and fetch_site not in OWN_FETCH_SITES) or (sent_origin and sent_origin.lower() != origin):
            return "cross-site"
    if graphql and carries_mutation(query_string):
        return "mutation-in-url"
    return None


@dataclass
class Gate:
    """The decision for one request, from what nginx forwards of it."""

    verifier: Verifier
    failed: FailedLogins
    origin: str
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def decide(self, headers: Mapping[str, str]) -> tuple[int, dict[str, str]]:
        client = headers.get("x-real-ip", "")
        method = headers.get("x-original-method", "GET").upper()
        path = headers.get("x-original-path", "/")
        query_string = urlsplit(headers.get("x-original-uri", "/")).query
        with self._lock:
            if self.failed.locked(client):
                return 403, {"X-Titlegen-Refused": "locked"}
        if reason := refusal(method, path, query_string, headers, self.origin):
            return 403, {"X-Titlegen-Refused": reason}
        authorization = headers.get("authorization")
        if not authorization:
            return 401, {"WWW-Authenticate": 'Basic realm="titlegen", charset="UTF-8"'}
        user = self.verifier.user(authorization)
        if user is None:
            with self._lock:
                self.failed.record(client)
            return 401, {"WWW-Authenticate": 'Basic realm="titlegen", charset="UTF-8"'}
        return 200, {"X-Titlegen-User": user, "X-Titlegen-Role": self.verifier.users.role(user)}


def gate_from_environment(environ: Mapping[str, str] = os.environ) -> Gate:
    """The gate compose configures (README, "Reach the UI from other machines")."""
    def number(name: str, default: str) -> float:
        value = environ.get(name) or default
        try:
            parsed = float(value)
        except ValueError:
            parsed = -1
        if parsed <= 0:
            raise ProxyFilesError(f"{name}={value!r}: expected a positive number")
        return parsed

    users = Users.load(Path(environ.get("TITLEGEN_PROXY_USERS", "/etc/titlegen/htpasswd")),
                       Path(environ.get("TITLEGEN_PROXY_OPERATORS", "/etc/titlegen/operators")))
    failed = FailedLogins(int(number("TITLEGEN_LOGIN_MAX_FAILURES", "5")), number("TITLEGEN_LOGIN_WINDOW_S", "300"))
    origin = own_origin(environ.get("TITLEGEN_PUBLIC_HOST") or "localhost",
                        int(number("TITLEGEN_PUBLIC_PORT", "8443")))
    return Gate(Verifier(users, number("TITLEGEN_LOGIN_CACHE_S", "600")), failed, origin)


def serve(gate: Gate, port: int = 9000) -> None:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # nginx's auth subrequests are GETs; the original method is in X-Original-Method
            status, headers = (200, {}) if self.path == "/health" else gate.decide(
                {k.lower(): v for k, v in self.headers.items()})
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):  # nginx's access log is the record, with the user named
            pass

    server = http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler)
    print(f"proxy_auth: {len(gate.verifier.users.hashes)} users ({len(gate.verifier.users.operators)} operators), "
          f"origin {gate.origin}, {gate.failed.max_failures} failed logins per {gate.failed.window_s:g} s",
          flush=True)
    server.serve_forever()


def hash_line(user: str, password: str) -> str:
    """A password file line for ``user``."""
    if not user or ":" in user or not password or len(password.encode()) > 72:
        raise ProxyFilesError("a user name without ':' and a password of 1 to 72 bytes are needed (bcrypt reads "
                              "no more)")
    return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(BCRYPT_COST)).decode()}"


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["serve"]:
            serve(gate_from_environment())
        elif argv[:1] == ["hash"] and len(argv) == 2:
            password = getpass.getpass(f"password for {argv[1]}: ") if sys.stdin.isatty() else sys.stdin.readline()
            print(hash_line(argv[1], password.rstrip("\n")))
        else:
            print(__doc__.rsplit("\n\n", 1)[1], file=sys.stderr)
            return 2
    except ProxyFilesError as error:
        print(f"proxy_auth: {error}", file=sys.stderr)
        return 1
    except OSError as error:   # a file compose did not find is mounted as an empty folder
        print(f"proxy_auth: cannot read {error.filename}: {error.strerror}. Make the password file and the operators "
              "file (README, \"Reach the UI from other machines\") and point TITLEGEN_HTPASSWD and TITLEGEN_OPERATORS "
              "at them", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

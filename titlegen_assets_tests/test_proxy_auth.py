"""The proxy's authentication service decides without nginx: the failed-login lockout (the right password included),
the cache of verified credentials, cross-site and mutation-in-URL refusals, roles, and its files' errors. The Docker
suite (test_docker_stack.py) shows the same through nginx."""

import base64
import io
from pathlib import Path

import bcrypt
import pytest

from titlegen_assets.deploy import proxy_auth
from titlegen_assets.deploy.proxy_auth import FailedLogins, Gate, ProxyFilesError, Users, Verifier

ORIGIN = proxy_auth.own_origin("titlegen.example.org", 8443)
PASSWORDS = {"olga": "operator-secret", "vic": "viewer-secret"}


class Clock:
    """time.monotonic, moved by hand."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def files(tmp_path) -> tuple[Path, Path]:
    users, operators = tmp_path / "htpasswd", tmp_path / "operators"
    users.write_text("".join(proxy_auth.hash_line(u, p) + "\n" for u, p in PASSWORDS.items()))
    operators.write_text("# operators, one a line\nolga\n")
    return users, operators


@pytest.fixture
def gate(files) -> tuple[Gate, Clock]:
    clock = Clock()
    users = Users.load(*files)
    return Gate(Verifier(users, cache_s=600, clock=clock), FailedLogins(3, 60, clock=clock), ORIGIN), clock


@pytest.fixture
def hash_checks(monkeypatch) -> list:
    """Every bcrypt check the service makes (the real one runs)."""
    checks, real = [], bcrypt.checkpw
    monkeypatch.setattr(proxy_auth.bcrypt, "checkpw", lambda *a: checks.append(a) or real(*a))
    return checks


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def request(authorization: str | None = None, method: str = "GET", uri: str = "/", client: str = "10.0.0.7",
            **headers: str) -> dict:
    sent = {"x-real-ip": client, "x-original-method": method, "x-original-path": uri.split("?")[0],
            "x-original-uri": uri, **{k.replace("_", "-"): v for k, v in headers.items()}}
    return sent | ({"authorization": authorization} if authorization else {})


def test_a_client_over_the_limit_gets_nothing_with_the_right_password_until_its_window_passes(gate, hash_checks):
    gate, clock = gate
    for attempt in range(3):
        assert gate.decide(request(basic("olga", f"guess-{attempt}")))[0] == 401
    assert len(hash_checks) == 3
    assert gate.decide(request(basic("olga", PASSWORDS["olga"]))) == (403, {"X-Titlegen-Refused": "locked"})
    assert len(hash_checks) == 3, "a locked-out client must cost no hash check"
    assert gate.decide(request(basic("olga", PASSWORDS["olga"]), client="10.0.0.8"))[0] == 200, "others unaffected"
    clock.now += 61
    assert gate.decide(request(basic("olga", PASSWORDS["olga"])))[0] == 200


def test_a_right_login_between_guesses_does_not_clear_the_count(gate):
    """Else one known viewer password would let a client guess the operators' without limit."""
    gate, _ = gate
    for attempt in range(3):
        assert gate.decide(request(basic("olga", f"guess-{attempt}")))[0] == 401
        if attempt < 2:
            assert gate.decide(request(basic("vic", PASSWORDS["vic"])))[0] == 200
    assert gate.decide(request(basic("vic", PASSWORDS["vic"])))[0] == 403


def test_unknown_users_and_malformed_headers_count_as_failures_and_no_credentials_do_not(gate):
    gate, _ = gate
    for _ in range(5):
        status, headers = gate.decide(request())
        assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
    assert gate.decide(request(basic("mallory", "x")))[0] == 401
    assert gate.decide(request("Basic not-base64!"))[0] == 401
    assert gate.decide(request(basic("olga", "x" * 100)))[0] == 401   # over bcrypt's 72 bytes: no match, no error
    assert gate.decide(request(basic("olga", PASSWORDS["olga"])))[0] == 403


def test_verified_credentials_are_remembered_so_the_uis_requests_pay_one_hash_check(gate, hash_checks):
    gate, clock = gate
    checks = hash_checks
    for _ in range(20):
        assert gate.decide(request(basic("vic", PASSWORDS["vic"])))[0] == 200
    assert len(checks) == 1
    clock.now += 601
    assert gate.decide(request(basic("vic", PASSWORDS["vic"])))[0] == 200
    assert len(checks) == 2, "a remembered login expires"


def test_roles_come_from_the_operators_file_and_everyone_else_is_a_viewer(gate):
    gate, _ = gate
    assert gate.decide(request(basic("olga", PASSWORDS["olga"])))[1] == {"X-Titlegen-User": "olga",
                                                                          "X-Titlegen-Role": "operator"}
    assert gate.decide(request(basic("vic", PASSWORDS["vic"])))[1] == {"X-Titlegen-User": "vic",
                                                                        "X-Titlegen-Role": "viewer"}


@pytest.mark.parametrize("headers", [
    {"origin": "https://evil.example", "sec_fetch_site": "cross-site"},
    {"origin": "https://evil.example"},                           # a browser without Fetch Metadata
    {"sec_fetch_site": "same-site"},                              # a sibling host is another site to the UI
    {"origin": "null"},                                           # a sandboxed frame or a data: page
    {"origin": "https://titlegen.example.org"},                   # the right host on another port
])
def test_graphql_from_another_site_is_refused_before_any_password_check(gate, headers):
    gate, _ = gate
    sent = request(basic("olga", PASSWORDS["olga"]), method="POST", uri="/graphql", **headers)
    assert gate.decide(sent) == (403, {"X-Titlegen-Refused": "cross-site"})


def test_cross_site_writes_and_websockets_are_refused_anywhere_but_links_to_the_ui_are_followed(gate):
    gate, _ = gate
    olga = basic("olga", PASSWORDS["olga"])
    evil = {"origin": "https://evil.example", "sec_fetch_site": "cross-site"}
    assert gate.decide(request(olga, method="POST", uri="/report_asset_materialization/x", **evil))[0] == 403
    assert gate.decide(request(olga, uri="/graphql", upgrade="websocket", **evil))[0] == 403
    assert gate.decide(request(olga, uri="/runs", sec_fetch_site="cross-site"))[0] == 200   # a link, a navigation


@pytest.mark.parametrize("headers", [
    {"origin": ORIGIN, "sec_fetch_site": "same-origin"},         # the UI's own requests
    {"sec_fetch_site": "none"},                                  # typed into the address bar
    {},                                                          # not a browser: curl, the GraphQL client
])
def test_the_uis_own_requests_pass(gate, headers):
    gate, _ = gate
    assert gate.decide(request(basic("olga", PASSWORDS["olga"]), method="POST", uri="/graphql", **headers))[0] == 200


@pytest.mark.parametrize("uri", [
    "/graphql?query=mutation%20%7B%20terminateRun(runId%3A%20%22x%22)%20%7B%20__typename%20%7D%20%7D",
    "/graphql?query=query+Q+%7B+version+%7D+mutation+M+%7B+wipeAssets%28assetPartitionRanges%3A+%5B%5D%29"
    "+%7B+__typename+%7D+%7D",                                   # a query first, then the mutation
    "/graphql?query=%7B+unclosed",                                 # what cannot be read is not run either
])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_graphql_mutation_in_the_url_is_refused(gate, uri, method):
    """dagster-webserver runs ?query= on GET, and on a POST whose body is not JSON or GraphQL."""
    gate, _ = gate
    assert gate.decide(request(basic("olga", PASSWORDS["olga"]), method=method, uri=uri)) == (
        403, {"X-Titlegen-Refused": "mutation-in-url"})


def test_a_graphql_query_in_the_url_passes(gate):
    gate, _ = gate
    assert gate.decide(request(basic("vic", PASSWORDS["vic"]), uri="/graphql?query=%7B+version+%7D"))[0] == 200


def test_a_password_file_line_that_is_not_bcrypt_is_refused_naming_file_and_line(files):
    users, operators = files
    users.write_text(users.read_text() + "legacy:$6$salt$sha512crypt\n")
    with pytest.raises(ProxyFilesError, match=rf"{users}, line 3: expected 'user:<bcrypt hash>'"):
        Users.load(users, operators)


def test_an_operator_without_a_password_line_is_refused(files):
    users, operators = files
    operators.write_text("olga\nolgaa\n")
    with pytest.raises(ProxyFilesError, match=rf"{operators}, line 2: operator 'olgaa' has no line"):
        Users.load(users, operators)


def test_hash_lines_are_bcrypt_at_the_stated_cost_and_htpasswd_2y_lines_are_read(files):
    users, operators = files
    line = proxy_auth.hash_line("ann", "pw")
    assert line.startswith(f"ann:$2b${proxy_auth.BCRYPT_COST:02d}$")
    apache = line.replace("$2b$", "$2y$")   # what `htpasswd -B` writes: the same hash under Apache's prefix
    users.write_text(apache + "\n")
    operators.write_text("")
    verifier = Verifier(Users.load(users, operators), cache_s=1)
    assert verifier.user(basic("ann", "pw")) == "ann"
    with pytest.raises(ProxyFilesError, match="72 bytes"):
        proxy_auth.hash_line("ann", "x" * 73)


def test_the_environment_configures_the_gate_and_bad_numbers_are_named(files):
    users, operators = files
    environ = {"TITLEGEN_PROXY_USERS": str(users), "TITLEGEN_PROXY_OPERATORS": str(operators),
               "TITLEGEN_PUBLIC_HOST": "UI.example.org", "TITLEGEN_PUBLIC_PORT": "443",
               "TITLEGEN_LOGIN_MAX_FAILURES": "4", "TITLEGEN_LOGIN_WINDOW_S": "30"}
    gate = proxy_auth.gate_from_environment(environ)
    assert (gate.origin, gate.failed.max_failures, gate.failed.window_s) == ("https://ui.example.org", 4, 30)
    with pytest.raises(ProxyFilesError, match="TITLEGEN_LOGIN_WINDOW_S='soon'"):
        proxy_auth.gate_from_environment(environ | {"TITLEGEN_LOGIN_WINDOW_S": "soon"})


def test_the_service_stops_at_start_naming_the_file_it_cannot_use(files, tmp_path, monkeypatch, capsys):
    users, operators = files
    monkeypatch.setenv("TITLEGEN_PROXY_USERS", str(users))
    monkeypatch.setenv("TITLEGEN_PROXY_OPERATORS", str(tmp_path))   # what compose mounts for a missing file
    assert proxy_auth.main(["serve"]) == 1
    assert f"cannot read {tmp_path}" in capsys.readouterr().err
    users.write_text("alice:$apr1$md5$hash\n")
    monkeypatch.setenv("TITLEGEN_PROXY_OPERATORS", str(operators))
    assert proxy_auth.main(["serve"]) == 1
    assert f"{users}, line 1: expected 'user:<bcrypt hash>'" in capsys.readouterr().err


def test_hash_prints_a_line_the_service_reads(files, monkeypatch, capsys):
    users, operators = files
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret\n"))   # not a terminal: the password is read from stdin
    assert proxy_auth.main(["hash", "zoe"]) == 0
    users.write_text(capsys.readouterr().out)
    operators.write_text("")
    assert Verifier(Users.load(users, operators), cache_s=1).user(basic("zoe", "s3cret")) == "zoe"

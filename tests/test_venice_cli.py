"""`cascade venice ping|get` through the real CLI against the local stand-in of serenissima.ai."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess

import pytest

from conftest import Sandbox, cascade_command, free_port
from venice_standin import CITIZENS, RESOURCES, TOKEN, StandIn


def one_line_error(stderr: str) -> str:
    """The `error:` line of stderr; asserts there is exactly one and no traceback."""
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    return errors[0]


# ---- ping ------------------------------------------------------------------------------------

def test_ping_ok_reports_status_latency_success_and_items(sandbox: Sandbox, standin: StandIn) -> None:
    result = sandbox.run("venice", "ping", "--base-url", standin.url("ok"), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["base_url"] == standin.url("ok")
    assert report["url"] == standin.url("ok") + "/activities?limit=1"
    assert (report["status"], report["success"], report["items"], report["outcome"]) == (200, True, 1, "ok")
    assert report["latency_ms"] > 0 and report["error"] is None and report["flags"] == []
    assert result.stderr == ""
    assert standin.seen("ok")[-1].query == {"limit": ["1"]}


def test_ping_table_is_readable_and_sends_user_agent(sandbox: Sandbox, standin: StandIn) -> None:
    result = sandbox.run("venice", "ping", "--base-url", standin.url("ok"))
    assert result.returncode == 0
    fields = dict(line.split(None, 1) for line in result.stdout.splitlines()[2:] if " " in line)
    assert fields["status"].strip() == "200" and fields["outcome"].strip() == "ok"
    assert "latency_ms" in fields
    assert standin.seen("ok")[-1].headers["User-Agent"].startswith("cascade/")


def test_ping_count_reports_percentiles_and_progress(sandbox: Sandbox, standin: StandIn) -> None:
    result = sandbox.run("venice", "ping", "--base-url", standin.url("ok"), "--count", "4",
                         "--interval", "0", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["count"], report["answered"], report["ok"]) == (4, 4, 4)
    assert report["min_ms"] <= report["p50_ms"] <= report["p95_ms"] <= report["max_ms"]
    assert [line.split(":")[0] for line in result.stderr.splitlines()] == [f"probe {i}/4" for i in range(1, 5)]
    quiet = sandbox.run("-q", "venice", "ping", "--base-url", standin.url("ok"), "-c", "2", "-i", "0")
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_ping_custom_path_from_flag_and_config(sandbox: Sandbox, standin: StandIn) -> None:
    result = sandbox.run("venice", "ping", "--base-url", standin.url("ok"), "--path", "/economy", "--json")
    assert result.returncode == 0
    assert json.loads(result.stdout)["url"].endswith("/economy")
    (sandbox.cwd / "cascade.toml").write_text(
        f'[venice]\nbase_url = "{standin.url("ok")}"\nping_path = "/citizens?limit=2"\n')
    result = sandbox.run("venice", "ping", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["url"].endswith("/citizens?limit=2") and report["items"] == 2


@pytest.mark.parametrize("mode,status,needle", [
    ("auth", 401, "authentication required (HTTP 401): Authentication required (AUTH_REQUIRED)"),
    ("forbidden", 403, "authentication required (HTTP 403)"),
    ("error500", 500, "HTTP 500: Internal error: Airtable down"),
    ("failure", 200, "success: false"),
])
def test_ping_error_answers_exit_3(sandbox: Sandbox, standin: StandIn, mode: str, status: int,
                                   needle: str) -> None:
    result = sandbox.run("venice", "ping", "--base-url", standin.url(mode), "--json")
    assert result.returncode == 3, result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == status and report["outcome"] == "error"
    assert needle in one_line_error(result.stderr)
    assert "hint: " in result.stderr


def test_ping_429_shows_retry_after_and_is_not_retried(sandbox: Sandbox, standin: StandIn) -> None:
    before = len(standin.seen("ratelimit"))
    result = sandbox.run("venice", "ping", "--base-url", standin.url("ratelimit"), "--json")
    assert result.returncode == 3
    assert json.loads(result.stdout)["retry_after_s"] == 30
    assert "retry after 30 s" in result.stderr and "rate limited" in one_line_error(result.stderr)
    assert len(standin.seen("ratelimit")) == before + 1


def test_ping_with_api_key_passes_auth_and_never_prints_it(sandbox: Sandbox, standin: StandIn) -> None:
    env = {"CASCADE_VENICE_API_KEY": TOKEN}
    result = sandbox.run("-v", "venice", "ping", "--base-url", standin.url("auth"), "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert standin.seen("auth")[-1].headers["Authorization"] == f"Bearer {TOKEN}"
    shown = sandbox.run("config", "show", "--json", env=env)
    for output in (result.stdout, result.stderr, shown.stdout, shown.stderr):
        assert TOKEN not in output
    assert {"key": "venice.api_key", "value": "********", "source": "env CASCADE_VENICE_API_KEY"} \
        in json.loads(shown.stdout)


def test_api_key_from_file_and_legacy_env(sandbox: Sandbox, standin: StandIn) -> None:
    key_file = sandbox.root / "venice.key"
    key_file.write_text(TOKEN + "\n")
    result = sandbox.run("venice", "ping", "--base-url", standin.url("auth"),
                         env={"CASCADE_VENICE_API_KEY_FILE": str(key_file)})
    assert result.returncode == 0, result.stderr
    result = sandbox.run("venice", "ping", env={"VENICE_API_URL": standin.url("auth"), "VENICE_API_KEY": TOKEN})
    assert result.returncode == 0, result.stderr
    missing = sandbox.run("venice", "ping", "--base-url", standin.url("auth"),
                          env={"CASCADE_VENICE_API_KEY_FILE": str(sandbox.root / "nope.key")})
    assert missing.returncode == 2 and "venice.api_key_file" in one_line_error(missing.stderr)


def test_ping_flags_become_warnings(sandbox: Sandbox, standin: StandIn) -> None:
    result = sandbox.run("venice", "ping", "--base-url", standin.url("flagged"), "--json")
    assert result.returncode == 0
    assert json.loads(result.stdout)["flags"] == ["_fallback", "_cached", "_stale"]
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 3 and "fallback sample records" in warnings[0]


def test_ping_non_json_body_is_a_failed_check(sandbox: Sandbox, standin: StandIn) -> None:
    result = sandbox.run("venice", "ping", "--base-url", standin.url("nonjson"))
    assert result.returncode == 3
    assert "not JSON (text/html)" in one_line_error(result.stderr)


@pytest.mark.parametrize("how,needle", [
    ("refused", "connection refused by 127.0.0.1:"),
    ("timeout", "no answer from 127.0.0.1:"),
    ("dropped", "closed the connection"),
    ("tls", "TLS handshake with 127.0.0.1:"),
    ("dns", "cannot resolve host venice.invalid"),
])
def test_ping_unreachable_exits_1(sandbox: Sandbox, standin: StandIn, how: str, needle: str) -> None:
    url = {
        "refused": f"http://127.0.0.1:{free_port()}/api",
        "timeout": standin.url("slow"),
        "dropped": standin.url("drop"),
        "tls": standin.url("ok").replace("http://", "https://"),
        "dns": "http://venice.invalid/api",
    }[how]
    result = sandbox.run("venice", "ping", "--base-url", url, "--timeout", "0.5", "--json")
    assert result.returncode == 1, result.stderr
    assert needle in one_line_error(result.stderr)
    report = json.loads(result.stdout)
    assert report["outcome"] == "unreachable" and report["status"] is None


def test_ping_worst_probe_decides(sandbox: Sandbox, standin: StandIn) -> None:
    result = sandbox.run("venice", "ping", "--base-url", standin.url("flaky.ping"), "-c", "3",
                         "-i", "0", "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 3
    # The report describes the probe that decided the exit code: the last 503.
    assert (report["answered"], report["ok"], report["status"]) == (3, 1, 503)
    assert report["error"] == "HTTP 503: Service unavailable"


# ---- get -------------------------------------------------------------------------------------

def test_get_citizens_table_with_default_columns(sandbox: Sandbox, standin: StandIn) -> None:
    result = sandbox.run("venice", "get", "citizens", "--base-url", standin.url("ok"))
    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[0].split()
    assert header == ["username", "firstName", "lastName", "socialClass", "ducats", "influence", "isAi"]
    assert len(result.stdout.splitlines()) == 2 + len(CITIZENS)
    assert "3 citizens from" in result.stderr


def test_get_json_keeps_whole_records_and_filters_go_to_the_query(sandbox: Sandbox, standin: StandIn) -> None:
    result = sandbox.run("venice", "get", "citizens", "--filter", "SocialClass=Popolani",
                         "--base-url", standin.url("ok"), "--json")
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert [r["username"] for r in records] == ["anna_b"]
    assert records[0] == CITIZENS[2]
    assert standin.seen("ok")[-1].query == {"SocialClass": ["Popolani"]}


def test_get_one_record_by_id_and_404(sandbox: Sandbox, standin: StandIn) -> None:
    result = sandbox.run("venice", "get", "citizens", "NLR", "--base-url", standin.url("ok"), "--json")
    assert result.returncode == 0
    assert json.loads(result.stdout)["workplace"]["buildingId"] == "bld_1"
    missing = sandbox.run("venice", "get", "citizens", "nobody", "--base-url", standin.url("ok"))
    assert missing.returncode == 1 and missing.stdout == ""
    assert "HTTP 404: Citizen not found: nobody" in one_line_error(missing.stderr)


@pytest.mark.parametrize("args,expected", [
    (["resources"], 2),                          # a bare JSON array
    (["buildings"], 5),                          # no success key
    (["messages", "--filter", "type=message"], 1),  # singular `message` holding a list
    (["relevancies", "NLR"], 1),                 # {success, citizen, relevancies, count}
    (["lands"], 1),
    (["contracts"], 1),
    (["activities"], 3),
    (["problems", "prob_1"], None),
    (["buildings", "bld_2"], None),               # {building} without success
    (["economy"], None),                          # one summary object
])
def test_get_normalises_every_documented_shape(sandbox: Sandbox, standin: StandIn, args: list[str],
                                               expected: int | None) -> None:
    result = sandbox.run("venice", "get", *args, "--base-url", standin.url("ok"), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    if expected is None:
        assert isinstance(data, dict) and data
    else:
        assert isinstance(data, list) and len(data) == expected


def test_get_limit_truncates_routes_that_ignore_it(sandbox: Sandbox, standin: StandIn) -> None:
    result = sandbox.run("venice", "get", "buildings", "--limit", "2", "--base-url", standin.url("ok"), "--json")
    assert len(json.loads(result.stdout)) == 2
    assert standin.seen("ok")[-1].query["limit"] == ["2"]


def test_get_fields_csv_and_markdown(sandbox: Sandbox, standin: StandIn) -> None:
    result = sandbox.run("venice", "get", "citizens", "--fields", "username,ducats,position,nope",
                         "--format", "csv", "--base-url", standin.url("ok"))
    assert result.returncode == 0
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["username", "ducats", "position", "nope"]
    assert rows[1] == ["NLR", "125000.5", '{"lat":45.43,"lng":12.33}', ""]
    assert "warning: field 'nope' is in no record" in result.stderr
    md = sandbox.run("venice", "get", "economy", "--format", "markdown", "--base-url", standin.url("ok"))
    assert md.stdout.splitlines()[0].startswith("| field") and "| citizenCount" in md.stdout


def test_get_retries_503_then_succeeds(sandbox: Sandbox, standin: StandIn) -> None:
    result = sandbox.run("-v", "venice", "get", "lands", "--base-url", standin.url("flaky.get"), "--json")
    assert result.returncode == 0, result.stderr
    assert len(standin.seen("flaky.get")) == 3
    assert result.stderr.count("debug: retry") == 2 and "HTTP 503" in result.stderr


def test_get_honours_retry_after(sandbox: Sandbox, standin: StandIn) -> None:
    result = sandbox.run("venice", "get", "lands", "--base-url", standin.url("throttled.get"), "--json")
    assert result.returncode == 0, result.stderr
    first, second = standin.seen("throttled.get")
    assert second.at - first.at >= 0.9  # the server asked for 1 s


def test_get_gives_up_when_retry_after_is_too_long(sandbox: Sandbox, standin: StandIn) -> None:
    before = len(standin.seen("ratelimit"))
    result = sandbox.run("venice", "get", "lands", "--base-url", standin.url("ratelimit"))
    assert result.returncode == 1
    assert "rate limited (HTTP 429)" in one_line_error(result.stderr)
    assert "retry after 30 s" in result.stderr
    assert len(standin.seen("ratelimit")) == before + 1


def test_get_retries_are_bounded_on_a_dead_host(sandbox: Sandbox) -> None:
    result = sandbox.run("-v", "venice", "get", "lands", "--base-url", f"http://127.0.0.1:{free_port()}/api",
                         env={"CASCADE_VENICE_RETRIES": "3"})
    assert result.returncode == 1
    assert result.stderr.count("debug: retry") == 3
    assert "error: connection refused by 127.0.0.1" in result.stderr
    assert "Traceback" in result.stderr  # -v shows where it failed


@pytest.mark.parametrize("mode,needle", [
    ("error500", "HTTP 500: Internal error: Airtable down"),
    ("failure", "success: false"),
    ("nonjson", "not JSON"),
    ("drop", "closed the connection"),
])
def test_get_errors_exit_1(sandbox: Sandbox, standin: StandIn, mode: str, needle: str) -> None:
    result = sandbox.run("venice", "get", "citizens", "--base-url", standin.url(mode),
                         env={"CASCADE_VENICE_RETRIES": "0"})
    assert result.returncode == 1
    assert needle in one_line_error(result.stderr)
    assert result.stdout == ""


def test_get_warns_on_fallback_data(sandbox: Sandbox, standin: StandIn) -> None:
    result = sandbox.run("venice", "get", "citizens", "--base-url", standin.url("flagged"), "--json")
    assert result.returncode == 0
    assert "warning: _fallback:" in result.stderr
    assert len(json.loads(result.stdout)) == 3


@pytest.mark.parametrize("args,needle", [
    (["get", "dragons"], "unknown resource 'dragons'"),
    (["get", "activities", "act_1"], "activities cannot be fetched by id"),
    (["get", "citizens", "--filter", "Owner"], "bad filter 'Owner'"),
    (["get", "citizens", "--limit", "0"], "--limit"),
    (["ping", "--count", "0"], "--count"),
    (["get", "citizens", ".."], "invalid id '..'"),
    (["get", "citizens", "."], "invalid id '.'"),
])
def test_usage_errors_exit_2_without_a_request(sandbox: Sandbox, standin: StandIn, args: list[str],
                                               needle: str) -> None:
    before = len(standin.requests)
    result = sandbox.run("venice", *args, "--base-url", standin.url("ok"))
    assert result.returncode == 2, result.stderr
    assert needle in one_line_error(result.stderr)
    assert len(standin.requests) == before


def test_ctrl_c_ends_a_long_ping_with_what_was_measured(sandbox: Sandbox, standin: StandIn) -> None:
    proc = subprocess.Popen([*cascade_command(), "venice", "ping", "--base-url", standin.url("ok"),
                             "--count", "50", "--interval", "0.2", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=sandbox.env, cwd=sandbox.cwd)
    assert proc.stderr is not None
    progress = [proc.stderr.readline() for _ in range(2)]
    assert progress[1].startswith("probe 2/50: HTTP 200")
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    report = json.loads(stdout)
    assert 2 <= report["count"] < 50 and report["answered"] == report["count"] == report["ok"]
    assert f"warning: interrupted after {report['count']} of 50 probes" in stderr
    assert "Traceback" not in stderr


def test_get_timeout_flag(sandbox: Sandbox, standin: StandIn) -> None:
    result = sandbox.run("venice", "get", "lands", "--base-url", standin.url("slow"), "--timeout", "0.3",
                         env={"CASCADE_VENICE_RETRIES": "0"})
    assert result.returncode == 1
    assert "no answer from 127.0.0.1" in one_line_error(result.stderr)
    assert "within 0.3 s" in result.stderr


def test_closed_stdout_stops_quietly(sandbox: Sandbox, standin: StandIn) -> None:
    read, write = os.pipe()
    os.close(read)
    try:
        result = subprocess.run([*cascade_command(), "venice", "get", "buildings", "--json",
                                 "--base-url", standin.url("ok")], stdout=write, stderr=subprocess.PIPE,
                                text=True, env=sandbox.env, timeout=30)
    finally:
        os.close(write)
    assert result.returncode == 1
    assert result.stderr == ""


def test_bad_base_url_flag_is_a_usage_error(sandbox: Sandbox) -> None:
    for url in ("ftp://example.org", "http://127.0.0.1:abc/api", "http://127.0.0.1:99999/api"):
        result = sandbox.run("venice", "ping", "--base-url", url)
        assert result.returncode == 2, (url, result.stderr)
        assert "flag --base-url: 'venice.base_url' must be a URL" in one_line_error(result.stderr)


def test_empty_results_print_headers_only(sandbox: Sandbox, standin: StandIn) -> None:
    args = ["venice", "get", "citizens", "--filter", "SocialClass=Nobody", "--base-url", standin.url("ok")]
    assert json.loads(sandbox.run(*args, "--json").stdout) == []
    assert sandbox.run(*args, "--format", "csv").stdout.startswith("username,firstName,")
    table = sandbox.run(*args)
    assert table.returncode == 0 and table.stdout.split()[0] == "username"
    assert "0 citizens from" in table.stderr


def test_json_keeps_records_exactly_as_sent(sandbox: Sandbox, standin: StandIn) -> None:
    result = sandbox.run("venice", "get", "resources", "--json", "--base-url", standin.url("ok"))
    assert json.loads(result.stdout) == RESOURCES  # no key added to the record that lacks one
    md = sandbox.run("venice", "get", "resources", "--format", "markdown", "--base-url", standin.url("ok"))
    row = md.stdout.splitlines()[3]
    assert "Flour \\| fine milled" in row and row.count(" | ") == md.stdout.splitlines()[0].count(" | ")


def test_proxies_from_the_environment_are_used(sandbox: Sandbox, standin: StandIn) -> None:
    # The stand-in understands absolute request URIs, so it can play the proxy: the host in the
    # base URL does not exist, and only a proxied request can be answered.
    env = {"HTTP_PROXY": f"http://127.0.0.1:{standin.port}", "NO_PROXY": ""}
    result = sandbox.run("venice", "ping", "--base-url", "http://venice.invalid/ok.proxy/api", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] == 200
    assert len(standin.seen("ok.proxy")) == 1


@pytest.mark.parametrize("key", ["alpha7 omega9", "first7\nsecond9", "tökén9"])
def test_a_key_that_cannot_be_a_header_is_refused_without_showing_it(sandbox: Sandbox, standin: StandIn,
                                                                    key: str) -> None:
    for verbose in ([], ["-v"]):
        result = sandbox.run(*verbose, "venice", "ping", "--base-url", standin.url("auth"),
                             env={"CASCADE_VENICE_API_KEY": key})
        assert result.returncode == 2
        assert "cannot be sent in an HTTP header" in result.stderr
        for part in key.split():
            assert part not in result.stdout + result.stderr


def test_surrounding_whitespace_in_the_key_is_ignored(sandbox: Sandbox, standin: StandIn) -> None:
    result = sandbox.run("-v", "venice", "ping", "--base-url", standin.url("auth"),
                         env={"CASCADE_VENICE_API_KEY": f" {TOKEN}\n"})
    assert result.returncode == 0, result.stderr
    assert TOKEN not in result.stdout + result.stderr


def test_password_in_base_url_is_never_shown(sandbox: Sandbox, standin: StandIn) -> None:
    outputs = []
    for url in (f"http://bob:hunter2@127.0.0.1:{free_port()}/api",
                standin.url("nonjson").replace("http://", "http://bob:hunter2@")):
        for args in (["venice", "ping", "--json"], ["venice", "get", "citizens"], ["-v", "venice", "get", "lands"]):
            result = sandbox.run(*args, env={"CASCADE_VENICE_BASE_URL": url, "CASCADE_VENICE_RETRIES": "0"})
            assert result.returncode in (1, 3)
            outputs.append(result.stdout + result.stderr)
    assert all("hunter2" not in output for output in outputs)
    assert any("bob:********@" in output for output in outputs)

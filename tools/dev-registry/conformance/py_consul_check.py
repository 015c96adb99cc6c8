#!/usr/bin/env python3
"""Third-party client conformance: drive dev-registry with py-consul, unchanged.

Usage:  CONSUL_HTTP_ADDR=127.0.0.1:<port> python3 py_consul_check.py
Needs:  pip install py-consul==1.8.0  (import name `consul`)

The registry should run with a short minimum check interval
(`--min-check-interval 100ms`) so that the HTTP check settles quickly; run.sh does that.
Exits non-zero on the first failed expectation.
"""

from __future__ import annotations

import http.server
import threading
import time

import consul

WAIT_LIMIT = 15.0  # seconds any "eventually" condition may take


def step(message: str) -> None:
    print(f"ok - {message}", flush=True)


def eventually(what: str, probe):
    """Polls probe() until it returns something truthy; fails after WAIT_LIMIT."""
    deadline = time.monotonic() + WAIT_LIMIT
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        time.sleep(0.05)


class Health(http.server.BaseHTTPRequestHandler):
    """Answers every GET with 200 "ok" (the target of the HTTP check)."""

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:  # keep the output readable
        pass


def main() -> None:
    c = consul.Consul()  # address from CONSUL_HTTP_ADDR

    leader = c.status.leader()
    assert leader == "127.0.0.1:8300", leader
    step(f"status.leader() is {leader!r}")

    # --- TTL check -----------------------------------------------------------------
    assert c.agent.service.register(
        "py-ttl",
        service_id="py-ttl-1",
        address="127.0.0.1",
        port=9001,
        tags=["py", "ttl"],
        meta={"lang": "python"},
        check=consul.Check.ttl("30s"),
    )
    checks = c.agent.checks()
    assert checks["service:py-ttl-1"]["Status"] == "critical", checks
    assert checks["service:py-ttl-1"]["Type"] == "ttl", checks
    assert "serfHealth" in checks, checks
    step("agent.service.register with a TTL check; it starts critical")

    index, nodes = c.health.service("py-ttl", passing=True)
    assert nodes == [], nodes
    assert int(index) >= 1, index
    step(f"health.service(passing=True) is empty before the first heartbeat (index {index})")

    result: dict = {}

    def block() -> None:
        result["value"] = c.health.service("py-ttl", passing=True, index=index, wait="20s")

    watcher = threading.Thread(target=block)
    watcher.start()
    time.sleep(0.3)
    assert watcher.is_alive(), "the blocking query returned before any change"
    assert c.agent.check.ttl_pass("service:py-ttl-1", "all good")
    watcher.join(timeout=5)
    assert not watcher.is_alive(), "the blocking query was not woken by the TTL pass"
    new_index, nodes = result["value"]
    assert int(new_index) > int(index), (index, new_index)
    assert [n["Service"]["ID"] for n in nodes] == ["py-ttl-1"], nodes
    ttl_check = [ch for ch in nodes[0]["Checks"] if ch["CheckID"] == "service:py-ttl-1"][0]
    assert ttl_check["Status"] == "passing" and ttl_check["Output"] == "all good", ttl_check
    assert nodes[0]["Node"]["Address"] == "127.0.0.1", nodes[0]["Node"]
    step(f"a blocking health.service(index={index}) wakes on agent.check.ttl_pass (index {new_index})")

    started = time.monotonic()
    stale = int(new_index) + 1000
    returned, nodes = c.health.service("py-ttl", index=stale, wait="500ms")
    assert int(returned) < stale, (returned, stale)
    assert time.monotonic() - started >= 0.4, "a stale index must wait for the whole wait"
    assert len(nodes) == 1, nodes
    step(f"a stale index waits, then returns the current data with a lower index ({returned})")

    # --- HTTP check ----------------------------------------------------------------
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/health"
    assert c.agent.service.register(
        "py-http",
        service_id="py-http-1",
        address="127.0.0.1",
        port=server.server_address[1],
        check=consul.Check.http(url, interval="100ms", timeout="1s"),
    )
    nodes = eventually(
        "the HTTP check to pass",
        lambda: c.health.service("py-http", passing=True)[1],
    )
    http_check = [ch for ch in nodes[0]["Checks"] if ch["CheckID"] == "service:py-http-1"][0]
    assert http_check["Output"] == f"HTTP GET {url}: 200 OK Output: ok", http_check
    assert http_check["Type"] == "http" and http_check["Timeout"] == "1s", http_check
    step("agent.service.register with an HTTP check; the registry probes it to passing")

    server.shutdown()
    server.server_close()
    eventually(
        "the HTTP check to fail once its server is gone",
        lambda: c.agent.checks()["service:py-http-1"]["Status"] == "critical",
    )
    step("the HTTP check goes critical when its server stops")

    try:
        c.agent.check.ttl_pass("service:py-http-1")
        raise AssertionError("ttl_pass on an HTTP check should fail")
    except consul.ConsulException as e:
        assert 'CheckID "service:py-http-1" does not have associated TTL' in str(e), e
    step("agent.check.ttl_pass on a non-TTL check raises the 500 Consul gives")

    # --- reads ---------------------------------------------------------------------
    _, services = c.catalog.services()
    assert services["consul"] == [], services
    assert services["py-ttl"] == ["py", "ttl"], services
    assert "py-http" in services, services
    step("catalog.services() lists consul and both services with their tags")

    agent_services = c.agent.services()
    ttl_service = agent_services["py-ttl-1"]
    assert ttl_service["Service"] == "py-ttl", ttl_service
    assert ttl_service["Port"] == 9001 and ttl_service["Address"] == "127.0.0.1", ttl_service
    assert ttl_service["Meta"] == {"lang": "python"}, ttl_service
    assert ttl_service["Weights"] == {"Passing": 1, "Warning": 1}, ttl_service
    assert ttl_service["TaggedAddresses"]["lan_ipv4"] == {"Address": "127.0.0.1", "Port": 9001}
    step("agent.services() returns AgentService objects")

    definition = c.agent.service_definition("py-ttl-1")
    assert definition["ID"] == "py-ttl-1" and definition["ContentHash"], definition
    assert c.agent.service_definition("nope") is None
    step("agent.service_definition() has a ContentHash; unknown IDs read as None (404)")

    checks = c.agent.checks()
    assert set(checks) == {"serfHealth", "service:py-ttl-1", "service:py-http-1"}, checks
    step("agent.checks() lists node and service checks")

    # --- deregistration and 404s ---------------------------------------------------
    assert c.agent.service.deregister("py-http-1") is True
    assert "py-http-1" not in c.agent.services()
    assert c.agent.service.deregister("py-http-1") is False, "404 on an unknown ID"
    assert c.agent.check.ttl_pass("service:py-http-1") is False, "404 on an unknown check"
    index, nodes = c.health.service("py-http")
    assert nodes == [] and int(index) >= 1, (index, nodes)
    step("agent.service.deregister(); repeating it and TTL updates on its check are 404s")

    assert c.agent.service.deregister("py-ttl-1") is True
    assert c.agent.services() == {}
    step("cleanup")

    print("py-consul conformance: all checks passed", flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Checks docker-compose.yml and the Dockerfile against what the README promises, offline.

`docker-compose config` (a real compose implementation) has already validated the file against
the compose schema; this reads its normalised output and checks the project's own rules: pinned
images, only Consul and the aggregator on host ports (so backends can be scaled), a curl-free
health check and a healthy-Consul dependency on every service, a SIGTERM grace longer than the
services' own, and every SERVICE build argument naming a binary the Dockerfile builds.

Usage: docker-compose -f docker-compose.yml config | check_compose.py Dockerfile
"""
import pathlib
import re
import sys

import yaml

SERVICES = ["user-service", "product-service", "metadata-service", "rating-service", "movie-service"]
PUBLISHING = {"consul", "movie-service"}
SERVICE_GRACE_S = 10.5  # lifecycle: 0.5 s drain delay + 10 s shutdown grace

errors = []


def check(condition, message):
    if not condition:
        errors.append(message)


def seconds(duration):
    match = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", str(duration))
    check(match is not None, f"unreadable duration {duration!r}")
    return int(match.group(1) or 0) * 60 + int(match.group(2) or 0) if match else 0


config = yaml.safe_load(sys.stdin)
dockerfile = pathlib.Path(sys.argv[1]).read_text()
services = config["services"]

check(set(SERVICES) <= set(services), f"missing services: {set(SERVICES) - set(services)}")
check(re.fullmatch(r"hashicorp/consul:\d+\.\d+\.\d+", services["consul"].get("image", "")),
      "consul must be hashicorp/consul pinned to a release (x.y.z)")
check(re.fullmatch(r"postgres:\d+\.\d+(-\w+)?", services.get("postgres", {}).get("image", "")),
      "postgres must be pinned to a release (x.y)")

for name, service in services.items():
    check("container_name" not in service, f"{name}: container_name prevents --scale")
    if service.get("ports"):
        check(name in PUBLISHING, f"{name} publishes a host port; only {sorted(PUBLISHING)} may")
    check("healthcheck" in service, f"{name}: no healthcheck")

for name in SERVICES:
    service = services[name]
    build = service.get("build", {})
    check(build.get("args", {}).get("SERVICE") == name, f"{name}: build arg SERVICE must be {name}")
    check(pathlib.Path(name, "src", "main.rs").exists(), f"{name}: no binary at {name}/src/main.rs")
    check(f"-p {name}" in dockerfile, f"the Dockerfile does not build {name}")
    check(service["healthcheck"]["test"] == ["CMD", "/usr/local/bin/service", "healthcheck"],
          f"{name}: the health check must be the binary's own healthcheck subcommand")
    check(service.get("depends_on", {}).get("consul", {}).get("condition") == "service_healthy",
          f"{name}: must depend on a healthy consul")
    env = service.get("environment", {})
    check(env.get("CONSUL_HTTP_ADDR") == "consul:8500", f"{name}: CONSUL_HTTP_ADDR must be consul:8500")
    check(seconds(service.get("stop_grace_period", "10s")) > SERVICE_GRACE_S,
          f"{name}: stop_grace_period must exceed the service's own {SERVICE_GRACE_S} s")
    check("SERVICE_ADDRESS" not in env,
          f"{name}: a fixed SERVICE_ADDRESS would make every replica advertise the same address")

rating = services["rating-service"]
check(rating["environment"].get("DATABASE_URL", "").startswith("postgres://"),
      "rating-service must use PostgreSQL in compose")
check(rating.get("depends_on", {}).get("postgres", {}).get("condition") == "service_healthy",
      "rating-service must depend on a healthy postgres")

check(re.search(r"^USER\s+(?!root)\S+", dockerfile, re.M), "the runtime image must not run as root")
check(re.search(r'^ENTRYPOINT\s+\["', dockerfile, re.M),
      "ENTRYPOINT must use the exec form so the service is PID 1 and gets SIGTERM")
check(re.search(r"^RUN cargo chef cook", dockerfile, re.M), "no cached dependency layer")

if errors:
    print("docker-compose.yml / Dockerfile:", *errors, sep="\n  - ", file=sys.stderr)
    sys.exit(1)
print(f"compose: {len(services)} services checked")

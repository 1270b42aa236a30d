"""A small HTTP load generator for `python -m bench load` where wrk is not installed:
`python -m bench.loadgen SPEC.json SECONDS CONNECTIONS`, one thread per connection, each
keeping its connection alive while the server allows it. Prints one JSON line:
{"rps", "p50_ms", "p99_ms", "requests", "errors"}. Python's threads share one core, so its
ceiling is lower than wrk's: compare ratios from one generator only.
"""

from __future__ import annotations

import http.client
import json
import statistics
import sys
import threading
import time
from typing import Any
from urllib.parse import urlsplit


def _worker(spec: dict[str, Any], until: float, offset: int, latencies: list[float],
            errors: list[int]) -> None:
    base = urlsplit(spec["base"])
    headers = {"Content-Type": "application/json"}
    if spec.get("token"):
        headers["Authorization"] = f"Bearer {spec['token']}"
    requests = spec["requests"]
    connection: http.client.HTTPConnection | None = None
    i = offset
    while time.perf_counter() < until:
        path, body = requests[i % len(requests)]
        i += 1
        if connection is None:
            connection = http.client.HTTPConnection(base.hostname, base.port, timeout=10)
        started = time.perf_counter()
        try:
            connection.request(spec["method"], path,
                               body=body.encode() if body is not None else None,
                               headers=headers)
            answer = connection.getresponse()
            answer.read()
        except (OSError, http.client.HTTPException):
            errors.append(1)
            connection.close()
            connection = None
            continue
        latencies.append(time.perf_counter() - started)
        if answer.status >= 400:
            errors.append(1)
        if answer.will_close:
            connection.close()
            connection = None


def main(argv: list[str]) -> int:
    spec = json.loads(open(argv[0], encoding="utf-8").read())
    seconds, connections = float(argv[1]), int(argv[2])
    latencies: list[float] = []
    errors: list[int] = []
    started = time.perf_counter()
    until = started + seconds
    threads = [threading.Thread(target=_worker, args=(spec, until, n * 97, latencies, errors))
               for n in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    print(json.dumps({"rps": len(latencies) / elapsed, "p50_ms": cuts[49] * 1000,
                      "p99_ms": cuts[98] * 1000, "requests": len(latencies),
                      "errors": len(errors)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

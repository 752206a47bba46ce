"""Times what a kubectl command waits for before its first request, one run at a time.

  login_timing.py exec --runs N [--forget GLOB] -- COMMAND ARGS...
      runs COMMAND N times as kubectl runs a credential plugin: each from a process of
      its own (kubectl is one process per command), stdout and stderr discarded,
      environment passed through; with --forget, the files matching GLOB are removed
      before each run (outside the timed part). Fails if a run fails.
  login_timing.py post --runs N URL BODY
      POSTs the JSON BODY to URL N times on a new connection each, as a plugin without a
      cache logs in on every kubectl command; every answer must be 2xx.

Prints one line: `runs=N p50_ms=… p90_ms=… p99_ms=… max_ms=…`.
"""

import glob
import http.client
import os
import sys
import time
import urllib.parse


def summary(samples):
    samples = sorted(samples)

    def pct(p):
        return samples[min(len(samples) - 1, int(round(p / 100 * (len(samples) - 1))))]
    return (f"runs={len(samples)} p50_ms={pct(50):.2f} p90_ms={pct(90):.2f} "
            f"p99_ms={pct(99):.2f} max_ms={samples[-1]:.2f}")


def one_exec(command):
    """Milliseconds of one run of COMMAND, timed inside a fresh parent process."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        devnull = os.open(os.devnull, os.O_WRONLY)
        actions = [(os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)]
        start = time.perf_counter_ns()
        child = os.posix_spawn(command[0], command, os.environ, file_actions=actions)
        _, status = os.waitpid(child, 0)
        elapsed = time.perf_counter_ns() - start
        os.write(write, f"{os.waitstatus_to_exitcode(status)} {elapsed}".encode())
        os._exit(0)
    os.close(write)
    answer = os.read(read, 100).decode()
    os.close(read)
    os.waitpid(pid, 0)
    code, elapsed = answer.split()
    if code != "0":
        sys.exit(f"{command[0]} exited with {code}")
    return int(elapsed) / 1e6


def one_post(url, body):
    u = urllib.parse.urlsplit(url)
    start = time.perf_counter_ns()
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    conn.request("POST", u.path, body=body, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    elapsed = time.perf_counter_ns() - start
    if resp.status >= 300:
        sys.exit(f"POST {url} answered {resp.status}")
    return elapsed / 1e6


def main(argv):
    if len(argv) < 3 or argv[0] not in ("exec", "post") or argv[1] != "--runs":
        sys.exit(__doc__)
    mode, runs, rest = argv[0], int(argv[2]), argv[3:]
    samples = []
    if mode == "exec":
        forget = None
        if rest[:1] == ["--forget"]:
            forget, rest = rest[1], rest[2:]
        if rest[:1] != ["--"] or len(rest) < 2:
            sys.exit(__doc__)
        command = rest[1:]
        for _ in range(runs):
            for f in glob.glob(forget) if forget else []:
                os.remove(f)
            samples.append(one_exec(command))
    else:
        url, body = rest
        for _ in range(runs):
            samples.append(one_post(url, body))
    print(summary(samples))


if __name__ == "__main__":
    main(sys.argv[1:])

#!/usr/bin/env python3
"""Fills a freshly bootstrapped identity service (Limen or Keystone) with the benchmark's
data through the public API only, so both sides get exactly the same objects, and prints
the ids and tokens the load scenarios need as shell assignments.

Data: a project "bench"; a user "bench-user" with a password and the member role on it;
filler users (no password: creating them needs no bcrypt, so setup takes seconds, and
listing them is what is measured) until the domain holds --users users, the first
--assigned of them also members of "bench".

Standard library only: it runs before (and independently of) any virtualenv.
"""

import argparse
import json
import shlex
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

BENCH_PASSWORD = "bench-pass-1234"


class Api:
    def __init__(self, base):
        self.base = base.rstrip("/")
        self.token = None

    def call(self, method, path, body=None, token=None, expect=(200, 201, 204)):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        tok = token or self.token
        if tok:
            req.add_header("X-Auth-Token", tok)
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                status, headers, raw = resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as e:
            status, headers, raw = e.code, e.headers, e.read()
        if status not in expect:
            raise SystemExit(f"{method} {path}: HTTP {status}: {raw[:500]!r}")
        return headers, (json.loads(raw) if raw else None)

    def password_token(self, user, password, project_id=None, project_name=None):
        auth = {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": user, "domain": {"id": "default"}, "password": password}
                },
            }
        }
        if project_id:
            auth["scope"] = {"project": {"id": project_id}}
        elif project_name:
            auth["scope"] = {"project": {"name": project_name, "domain": {"id": "default"}}}
        headers, _ = self.call("POST", "/v3/auth/tokens", {"auth": auth}, expect=(201,))
        return headers["X-Subject-Token"]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", required=True, help="http://host:port (without /v3)")
    p.add_argument("--admin-password", required=True)
    p.add_argument("--users", type=int, default=1000, help="users in the domain in total")
    p.add_argument("--assigned", type=int, default=100, help="members of project bench")
    p.add_argument("--parallel", type=int, default=4)
    a = p.parse_args()

    api = Api(a.base)
    api.token = api.password_token("admin", a.admin_password, project_name="admin")
    _, roles = api.call("GET", "/v3/roles?name=member")
    if not roles["roles"]:
        raise SystemExit("no role named member")
    member = roles["roles"][0]["id"]
    _, proj = api.call(
        "POST", "/v3/projects", {"project": {"name": "bench", "domain_id": "default"}}
    )
    project = proj["project"]["id"]
    _, user = api.call(
        "POST",
        "/v3/users",
        {"user": {"name": "bench-user", "domain_id": "default", "password": BENCH_PASSWORD}},
    )
    user_id = user["user"]["id"]
    api.call("PUT", f"/v3/projects/{project}/users/{user_id}/roles/{member}")

    _, existing = api.call("GET", "/v3/users")
    fill = a.users - len(existing["users"])

    def make(i):
        _, u = api.call(
            "POST", "/v3/users", {"user": {"name": f"bench-fill-{i:06d}", "domain_id": "default"}}
        )
        # bench-user is already a member: a.assigned - 1 fillers join it.
        if i < a.assigned - 1:
            uid = u["user"]["id"]
            api.call("PUT", f"/v3/projects/{project}/users/{uid}/roles/{member}")

    with ThreadPoolExecutor(a.parallel) as pool:
        for _ in pool.map(make, range(max(fill, 0))):
            pass

    _, listed = api.call("GET", "/v3/users")
    _, ras = api.call("GET", f"/v3/role_assignments?scope.project.id={project}")
    unscoped = api.password_token("bench-user", BENCH_PASSWORD)
    scoped = api.password_token("bench-user", BENCH_PASSWORD, project_id=project)
    out = {
        "ADMIN_TOKEN": api.token,
        "PROJECT_ID": project,
        "USER_ID": user_id,
        "MEMBER_ROLE_ID": member,
        "BENCH_USER": "bench-user",
        "BENCH_PASSWORD": BENCH_PASSWORD,
        "MEMBER_UNSCOPED_TOKEN": unscoped,
        "MEMBER_PROJECT_TOKEN": scoped,
        "N_USERS": str(len(listed["users"])),
        "N_PROJECT_ASSIGNMENTS": str(len(ras["role_assignments"])),
    }
    for k, v in out.items():
        print(f"{k}={shlex.quote(v)}")
    print(
        f"populate: {out['N_USERS']} users, {out['N_PROJECT_ASSIGNMENTS']} assignments on bench",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()

"""An operator's day against a fresh Limen, driven by the real, unmodified clients:
the `openstack` CLI (subprocess, -f json) and openstacksdk/keystoneauth1 in-process.

Every step asserts what came back. Exit 0 only if all steps pass.
Run with the compat venv: .venv/bin/python compat/openstack_scenario.py
"""

import datetime
import hashlib
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from limen_server import LimenServer  # noqa: E402

import openstack  # noqa: E402
from keystoneauth1 import exceptions as ksa_exc  # noqa: E402
from keystoneauth1 import session as ksa_session  # noqa: E402
from keystoneauth1.identity import v3  # noqa: E402
from keystoneclient.contrib.ec2.utils import Ec2Signer  # noqa: E402

OPENSTACK = os.path.join(os.path.dirname(sys.executable), "openstack")
DOM, PROJ, CHILD, GROUP, ROLE = "compat-dom", "proj-a", "proj-child", "devs", "compat-operator"
ALICE_PW, BOB_PW, BOB_PW2 = "alice-Secret-1", "bob-Secret-1", "bob-Secret-2"


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def eq(actual, expected, what):
    check(actual == expected, f"{what}: expected {expected!r}, got {actual!r}")


class Scenario:
    def __init__(self, srv):
        self.srv = srv
        self.admin_env = self.os_env("admin", srv.admin_password, "Default", project="admin",
                                     project_domain="Default")
        self.admin_sess = self.session("admin", srv.admin_password, "Default",
                                       project_name="admin", project_domain_name="Default")
        self.sdk = openstack.connection.Connection(session=self.admin_sess,
                                                   identity_api_version="3")
        self.ids = {}

    # ---- client helpers -------------------------------------------------------------
    def os_env(self, user, password, user_domain, project=None, project_domain=None):
        # Only our OS_* variables: an OS_CLOUD or OS_TOKEN from the caller must not leak in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env.update(OS_AUTH_URL=self.srv.auth_url, OS_IDENTITY_API_VERSION="3",
                   OS_USERNAME=user, OS_PASSWORD=password, OS_USER_DOMAIN_NAME=user_domain,
                   OS_INTERFACE="public", OS_REGION_NAME="RegionOne")
        if project:
            env.update(OS_PROJECT_NAME=project, OS_PROJECT_DOMAIN_NAME=project_domain)
        return env

    def run_osc(self, args, env):
        return subprocess.run([OPENSTACK, *args], capture_output=True, text=True,
                              env=env or self.admin_env, timeout=120)

    def osc(self, *args, env=None):
        """Run `openstack ARGS`; parse JSON output when there is some."""
        r = self.run_osc(args, env)
        check(r.returncode == 0,
              f"`openstack {' '.join(args)}` failed ({r.returncode}): {r.stderr.strip()}")
        out = r.stdout.strip()
        return json.loads(out) if out[:1] in ("{", "[") else out

    def osc_fails(self, status, *args, env=None):
        """Run `openstack ARGS`, expect it to fail with HTTP STATUS."""
        r = self.run_osc(args, env)
        check(r.returncode != 0, f"`openstack {' '.join(args)}` succeeded, expected {status}")
        # keystoneclient-style "(HTTP 404)" or openstacksdk-style "404: Client Error".
        m = re.search(r"HTTP (\d{3})|(\d{3}): (?:Client|Server) Error", r.stderr)
        eq(m and int(m.group(1) or m.group(2)), status,
           f"HTTP status of `openstack {' '.join(args)}` (stderr: {r.stderr.strip()})")

    def session(self, username, password, user_domain_name, **scope):
        auth = v3.Password(auth_url=self.srv.auth_url, username=username, password=password,
                           user_domain_name=user_domain_name, **scope)
        return ksa_session.Session(auth=auth)

    def validate_status(self, token):
        """GET /v3/auth/tokens as admin, returning (status, body)."""
        r = self.admin_sess.get(self.srv.auth_url + "/auth/tokens", raise_exc=False,
                                headers={"X-Subject-Token": token})
        return r.status_code, (r.json() if r.status_code == 200 else None)

    # ---- the scenario ---------------------------------------------------------------
    def steps(self):
        return [getattr(self, n) for n in sorted(dir(self)) if n.startswith("step_")]

    def step_01_admin_token(self):
        tok = self.osc("token", "issue", "-f", "json")
        admin = self.osc("user", "show", "admin", "-f", "json")
        proj = self.osc("project", "show", "admin", "-f", "json")
        eq(tok["user_id"], admin["id"], "admin token user_id")
        eq(tok["project_id"], proj["id"], "admin token project_id")
        check(self.sdk.identity.check_token(tok["id"]), "sdk check_token(admin token) is False")
        self.ids.update(admin=admin["id"], admin_project=proj["id"])

    def step_02_catalog_and_implied_roles(self):
        eps = self.osc("endpoint", "list", "--service", "identity", "-f", "json")
        eq(sorted(e["Interface"] for e in eps), ["admin", "internal", "public"],
           "identity endpoint interfaces")
        for e in eps:
            eq((e["URL"], e["Region"], e["Enabled"]), (self.srv.auth_url, "RegionOne", True),
               f"{e['Interface']} identity endpoint")
        implied = self.osc("implied", "role", "list", "-f", "json")
        pairs = {(i["Prior Role Name"], i["Implied Role Name"]) for i in implied}
        # Keystone 30's bootstrap: admin > manager > member > reader.
        eq(pairs, {("admin", "manager"), ("manager", "member"), ("member", "reader")},
           "bootstrap role implications")

    def step_03_create_domain_projects(self):
        d = self.osc("domain", "create", "--description", "compat domain", DOM, "-f", "json")
        eq((d["name"], d["description"], d["enabled"]), (DOM, "compat domain", True), "domain")
        p = self.osc("project", "create", "--domain", DOM, PROJ, "-f", "json")
        eq((p["name"], p["domain_id"], p["parent_id"]), (PROJ, d["id"], d["id"]), "project")
        c = self.osc("project", "create", "--domain", DOM, "--parent", PROJ, CHILD,
                     "-f", "json")
        eq((c["name"], c["domain_id"], c["parent_id"]), (CHILD, d["id"], p["id"]),
           "child project")
        self.osc_fails(409, "project", "create", "--domain", DOM, PROJ)
        self.ids.update(dom=d["id"], proj=p["id"], child=c["id"])

    def step_04_create_users_group(self):
        a = self.osc("user", "create", "--domain", DOM, "--password", ALICE_PW,
                     "--project", PROJ, "--project-domain", DOM, "--email", "alice@example.org",
                     "alice", "-f", "json")
        eq((a["name"], a["domain_id"], a["default_project_id"], a["enabled"]),
           ("alice", self.ids["dom"], self.ids["proj"], True), "user alice")
        check("password" not in a, "user create echoed the password")
        b = self.osc("user", "create", "--domain", DOM, "--password", BOB_PW, "bob",
                     "-f", "json")
        g = self.osc("group", "create", "--domain", DOM, GROUP, "-f", "json")
        eq((g["name"], g["domain_id"]), (GROUP, self.ids["dom"]), "group")
        self.osc("group", "add", "user", "--group-domain", DOM, "--user-domain", DOM,
                 GROUP, "bob")
        out = self.osc("group", "contains", "user", "--group-domain", DOM, "--user-domain",
                       DOM, GROUP, "bob")
        check("bob in group devs" in out, f"group contains user: {out!r}")
        # sdk, in-process: bob's groups.
        eq([x.name for x in self.sdk.identity.user_groups(b["id"])], [GROUP], "sdk user_groups")
        self.ids.update(alice=a["id"], bob=b["id"], group=g["id"])

    def step_05_grant_roles(self):
        self.osc("role", "add", "--user", "alice", "--user-domain", DOM,
                 "--project", PROJ, "--project-domain", DOM, "member")
        self.osc("role", "add", "--group", GROUP, "--group-domain", DOM, "--domain", DOM,
                 "reader")
        # Inherited: bob gets member on proj-a's subtree, not on proj-a itself.
        self.osc("role", "add", "--user", "bob", "--user-domain", DOM,
                 "--project", PROJ, "--project-domain", DOM, "--inherited", "member")
        r = self.osc("role", "create", ROLE, "-f", "json")
        self.osc("implied", "role", "create", ROLE, "--implied-role", "member")
        self.osc("role", "add", "--user", "alice", "--user-domain", DOM,
                 "--project", CHILD, "--project-domain", DOM, ROLE)
        self.ids["role"] = r["id"]

    def step_06_alice_login_keystoneauth(self):
        sess = self.session("alice", ALICE_PW, DOM, project_name=PROJ, project_domain_name=DOM)
        ref = sess.auth.get_access(sess)
        eq((ref.user_id, ref.project_id, ref.project_domain_id),
           (self.ids["alice"], self.ids["proj"], self.ids["dom"]), "alice token scope")
        eq(sorted(ref.role_names), ["member", "reader"], "alice roles on proj-a (implied)")
        eq(ref.service_catalog.url_for(service_type="identity", interface="public"),
           self.srv.auth_url, "catalog identity public URL")
        csess = self.session("alice", ALICE_PW, DOM, project_name=CHILD, project_domain_name=DOM)
        child = csess.auth.get_access(csess)
        eq(sorted(child.role_names), [ROLE, "member", "reader"],
           "alice roles on proj-child (compat-operator > member > reader)")
        self.alice_token = ref.auth_token

    def step_07_alice_login_cli(self):
        env = self.os_env("alice", ALICE_PW, DOM, project=PROJ, project_domain=DOM)
        tok = self.osc("token", "issue", "-f", "json", env=env)
        eq((tok["user_id"], tok["project_id"]), (self.ids["alice"], self.ids["proj"]),
           "openstack token issue as alice")
        status, body = self.validate_status(tok["id"])
        eq(status, 200, "validate alice's CLI token")
        eq(body["token"]["expires_at"][:19], tok["expires"][:19], "expires_at vs CLI expires")
        self.osc_fails(401, "token", "issue",
                       env=self.os_env("alice", "wrong", DOM, project=PROJ, project_domain=DOM))

    def step_08_validate_and_revoke(self):
        t = self.sdk.identity.validate_token(self.alice_token)
        eq((t.user["id"], t.project["id"]), (self.ids["alice"], self.ids["proj"]),
           "sdk validate_token user/project")
        eq(sorted(r["name"] for r in t.roles), ["member", "reader"], "sdk validate_token roles")
        status, body = self.validate_status(self.alice_token)
        eq(status, 200, "keystoneauth GET /v3/auth/tokens")
        eq(body["token"]["methods"], ["password"], "token methods")
        check(any(s["type"] == "identity" for s in body["token"]["catalog"]),
              "validated token has no identity service in its catalog")
        self.osc("token", "revoke", self.alice_token)
        eq(self.validate_status(self.alice_token)[0], 404, "validate revoked token")
        check(not self.sdk.identity.check_token(self.alice_token),
              "sdk check_token(revoked) is True")

    def step_09_bob_inherited_and_group_roles(self):
        child = self.session("bob", BOB_PW, DOM, project_name=CHILD, project_domain_name=DOM)
        ref = child.auth.get_access(child)
        eq(sorted(ref.role_names), ["member", "reader"], "bob roles on proj-child (inherited)")
        parent = self.session("bob", BOB_PW, DOM, project_name=PROJ, project_domain_name=DOM)
        try:
            parent.get_token()
            raise Failure("bob got a token on proj-a, where he has only an inherited role")
        except ksa_exc.Unauthorized:
            pass
        dom = self.session("bob", BOB_PW, DOM, domain_name=DOM)
        dref = dom.auth.get_access(dom)
        eq((dref.domain_id, sorted(dref.role_names)), (self.ids["dom"], ["reader"]),
           "bob domain token (role via group)")
        self.bob_token = ref.auth_token

    def step_09b_ec2_credentials(self):
        """EC2 keys from the CLI, requests signed by keystoneclient's Ec2Signer (what EC2
        front ends use), traded for tokens at /v3/ec2tokens by the admin."""
        env = self.os_env("bob", BOB_PW, DOM, project=CHILD, project_domain=DOM)
        # By id: a member may read its project but not list projects to find it by name.
        cred = self.osc("ec2", "credentials", "create", "--project", self.ids["child"],
                        "-f", "json", env=env)
        listed = self.osc("ec2", "credentials", "list", "-f", "json", env=env)
        eq([c["Access"] for c in listed], [cred["access"]], "bob's ec2 credentials")
        now = datetime.datetime.now(datetime.timezone.utc)
        v2 = {"host": "ec2.compat:8773", "verb": "GET", "path": "/",
              "params": {"Action": "DescribeInstances", "AWSAccessKeyId": cred["access"],
                         "SignatureVersion": "2", "SignatureMethod": "HmacSHA256",
                         "Timestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ")}}
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        scope = f"{cred['access']}/{amz_date[:8]}/RegionOne/ec2/aws4_request"
        v4 = {"host": "ec2.compat:8773", "verb": "GET", "path": "/",
              "params": {"Action": "DescribeInstances", "Version": "2016-11-15"},
              "headers": {"Host": "ec2.compat:8773", "X-Amz-Date": amz_date,
                          "Authorization": f"AWS4-HMAC-SHA256 Credential={scope}, "
                                           "SignedHeaders=host;x-amz-date, Signature=x"},
              "body_hash": hashlib.sha256(b"").hexdigest()}
        for name, req in (("v2", v2), ("v4", v4)):
            req = dict(req, access=cred["access"])
            req["signature"] = Ec2Signer(cred["secret"]).generate(json.loads(json.dumps(req)))
            r = self.admin_sess.post(self.srv.auth_url + "/ec2tokens", json={"credentials": req},
                                     raise_exc=False)
            eq(r.status_code, 200, f"ec2tokens ({name}): {r.text}")
            t = r.json()["token"]
            eq((t["methods"], t["user"]["id"], t["project"]["id"]),
               (["ec2credential"], self.ids["bob"], self.ids["child"]), f"ec2 token ({name})")
            eq(self.validate_status(r.headers["X-Subject-Token"])[0], 200,
               f"validate the {name} ec2 token")
            req["params"] = dict(req["params"], Action="TerminateInstances")
            r = self.admin_sess.post(self.srv.auth_url + "/ec2tokens", json={"credentials": req},
                                     raise_exc=False)
            eq(r.status_code, 401, f"ec2tokens with a tampered {name} request")
        self.osc("ec2", "credentials", "delete", cred["access"], env=env)
        eq(self.osc("ec2", "credentials", "list", "-f", "json", env=env), [],
           "ec2 credentials after delete")

    def app_cred_env(self, **auth):
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env.update(OS_AUTH_URL=self.srv.auth_url, OS_IDENTITY_API_VERSION="3",
                   OS_AUTH_TYPE="v3applicationcredential", OS_INTERFACE="public",
                   OS_REGION_NAME="RegionOne", **auth)
        return env

    def step_09c_application_credentials(self):
        """bob makes an application credential with the CLI and logs in with it, by id and
        by name; a restricted credential cannot make more; deleting it ends it."""
        env = self.os_env("bob", BOB_PW, DOM, project=CHILD, project_domain=DOM)
        ac = self.osc("application", "credential", "create", "--role", "reader",
                      "--description", "ci robot", "bob-robot", "-f", "json", env=env)
        eq((ac["Name"], ac["Project ID"], ac["Unrestricted"]),
           ("bob-robot", self.ids["child"], False), "application credential")
        ac = {"id": ac["ID"], "secret": ac["Secret"]}
        by_id = self.app_cred_env(OS_APPLICATION_CREDENTIAL_ID=ac["id"],
                                  OS_APPLICATION_CREDENTIAL_SECRET=ac["secret"])
        tok = self.osc("token", "issue", "-f", "json", env=by_id)
        eq((tok["user_id"], tok["project_id"]), (self.ids["bob"], self.ids["child"]),
           "token from the application credential (by id)")
        status, body = self.validate_status(tok["id"])
        eq((status, body["token"]["methods"], [r["name"] for r in body["token"]["roles"]]),
           (200, ["application_credential"], ["reader"]), "application credential token")
        by_name = self.app_cred_env(OS_APPLICATION_CREDENTIAL_NAME="bob-robot",
                                    OS_APPLICATION_CREDENTIAL_SECRET=ac["secret"],
                                    OS_USERNAME="bob", OS_USER_DOMAIN_NAME=DOM)
        eq(self.osc("token", "issue", "-f", "json", env=by_name)["user_id"], self.ids["bob"],
           "token from the application credential (by name and user)")
        self.osc_fails(403, "application", "credential", "create", "more", env=by_id)
        wrong = self.app_cred_env(OS_APPLICATION_CREDENTIAL_ID=ac["id"],
                                  OS_APPLICATION_CREDENTIAL_SECRET="not-the-secret")
        self.osc_fails(401, "token", "issue", env=wrong)
        listed = self.osc("application", "credential", "list", "-f", "json", env=env)
        eq([a["Name"] for a in listed], ["bob-robot"], "bob's application credentials")
        self.osc("application", "credential", "delete", "bob-robot", env=env)
        eq(self.validate_status(tok["id"])[0], 404, "token of a deleted application credential")
        self.osc_fails(401, "token", "issue", env=by_id)

    def step_09d_trusts(self):
        """bob trusts alice with `member` on proj-child; alice logs in under the trust with
        the CLI; the trust is listed, and deleting it ends her trust tokens."""
        env = self.os_env("bob", BOB_PW, DOM, project=CHILD, project_domain=DOM)
        member = self.sdk.identity.find_role("member").id
        # By id: bob may not look alice, roles or projects up by name, and the CLI then
        # passes what it was given.
        trust = self.osc("trust", "create", "--project", self.ids["child"], "--role", member,
                         self.ids["bob"], self.ids["alice"], "-f", "json", env=env)
        eq((trust["trustor_user_id"], trust["trustee_user_id"], trust["project_id"]),
           (self.ids["bob"], self.ids["alice"], self.ids["child"]), "trust")
        alice = self.os_env("alice", ALICE_PW, DOM)
        alice["OS_TRUST_ID"] = trust["id"]
        tok = self.osc("token", "issue", "-f", "json", env=alice)
        eq((tok["user_id"], tok["project_id"]), (self.ids["alice"], self.ids["child"]),
           "alice's trust-scoped token")
        status, body = self.validate_status(tok["id"])
        eq((status, body["token"]["OS-TRUST:trust"]["id"],
            sorted(r["name"] for r in body["token"]["roles"])),
           (200, trust["id"], ["member", "reader"]), "trust-scoped token body")
        # Listing all trusts is for admins; a user lists the trusts it gave.
        mine = self.osc("trust", "list", "--trustor", self.ids["bob"], "-f", "json", env=env)
        eq([t["ID"] for t in mine], [trust["id"]], "bob's trusts")
        self.osc("trust", "delete", trust["id"], env=env)
        eq(self.validate_status(tok["id"])[0], 404, "token of a deleted trust")
        r = self.run_osc(["token", "issue"], alice)
        check(r.returncode != 0, "alice still got a token under the deleted trust")

    def step_10_list_filters(self):
        users = self.osc("user", "list", "--domain", DOM, "-f", "json")
        eq(sorted(u["Name"] for u in users), ["alice", "bob"], "user list --domain")
        # Domain by id: OSC 10.5 passes --domain verbatim as the group's domain_id filter.
        members = self.osc("user", "list", "--group", GROUP, "--domain", self.ids["dom"],
                           "-f", "json")
        eq([u["Name"] for u in members], ["bob"], "user list --group")
        projects = self.osc("project", "list", "--domain", DOM, "-f", "json")
        eq(sorted(p["Name"] for p in projects), [PROJ, CHILD], "project list --domain")
        eq(sorted(p.name for p in self.sdk.identity.projects(domain_id=self.ids["dom"])),
           [PROJ, CHILD], "sdk projects(domain_id)")
        eff = self.osc("role", "assignment", "list", "--user", "bob", "--user-domain", DOM,
                       "--names", "--effective", "-f", "json")
        got = sorted((a["Role"], a["User"], a["Project"], a["Domain"]) for a in eff)
        child, user = f"{CHILD}@{DOM}", f"bob@{DOM}"
        eq(got, [("member", user, child, ""), ("reader", user, "", DOM),
                 ("reader", user, child, "")], "effective assignments of bob")
        direct = self.osc("role", "assignment", "list", "--project", PROJ,
                          "--project-domain", DOM, "--names", "-f", "json")
        got = sorted((a["Role"], a["User"], a["Inherited"]) for a in direct)
        eq(got, [("member", f"alice@{DOM}", False), ("member", user, True)],
           "assignments on proj-a")

    def step_11_change_own_password(self):
        env = self.os_env("bob", BOB_PW, DOM, project=CHILD, project_domain=DOM)
        self.osc_fails(401, "user", "password", "set", "--original-password", "wrong",
                       "--password", BOB_PW2, env=env)
        self.osc("user", "password", "set", "--original-password", BOB_PW,
                 "--password", BOB_PW2, env=env)
        # Keystone revokes the user's tokens on a password change.
        eq(self.validate_status(self.bob_token)[0], 404, "bob's token after password change")
        time.sleep(1.1)  # revocation is per second: a token from the same second is revoked too
        self.osc_fails(401, "token", "issue", env=env)
        tok = self.osc("token", "issue", "-f", "json",
                       env=self.os_env("bob", BOB_PW2, DOM, project=CHILD, project_domain=DOM))
        eq(tok["user_id"], self.ids["bob"], "token with the new password")

    def step_12_disable_user(self):
        sess = self.session("alice", ALICE_PW, DOM, project_name=PROJ, project_domain_name=DOM)
        token = sess.get_token()
        eq(self.validate_status(token)[0], 200, "alice's fresh token")
        self.osc("user", "set", "--domain", DOM, "--disable", "alice")
        eq(self.osc("user", "show", "--domain", DOM, "alice", "-f", "json")["enabled"], False,
           "alice enabled after --disable")
        eq(self.validate_status(token)[0], 404, "token of a disabled user")
        self.osc_fails(401, "token", "issue",
                       env=self.os_env("alice", ALICE_PW, DOM, project=PROJ, project_domain=DOM))

    def step_13_delete(self):
        self.osc_fails(403, "project", "delete", "--domain", DOM, PROJ)  # not a leaf
        self.osc_fails(403, "domain", "delete", DOM)  # still enabled
        self.osc("user", "delete", "--domain", DOM, "alice")
        self.osc("group", "delete", "--domain", DOM, GROUP)
        self.osc("project", "delete", "--domain", DOM, CHILD)
        self.osc("project", "delete", "--domain", DOM, PROJ)
        self.osc("role", "delete", ROLE)
        eq([u["Name"] for u in self.osc("user", "list", "--domain", DOM, "-f", "json")],
           ["bob"], "users left in the domain")
        self.osc("domain", "set", "--disable", DOM)
        self.osc("domain", "delete", DOM)
        for kind, key in (("domain", "dom"), ("user", "bob"), ("project", "proj")):
            try:
                getattr(self.sdk.identity, "get_" + kind)(self.ids[key])
                raise Failure(f"{kind} {self.ids[key]} still exists after the domain delete")
            except openstack.exceptions.NotFoundException:
                pass
        check(all(r["Name"] != ROLE for r in self.osc("role", "list", "-f", "json")),
              "deleted role still listed")


def main():
    total = time.monotonic()
    with LimenServer() as srv:
        sc = Scenario(srv)
        for step in sc.steps():
            name = step.__name__[len("step_"):]
            t = time.monotonic()
            try:
                step()
            except Exception as e:  # noqa: BLE001 - report any client error as a failure
                print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
                srv.print_log_tail()
                return 1
            print(f"ok   {name} ({time.monotonic() - t:.1f}s)", flush=True)
    print(f"took {time.monotonic() - total:.0f}s\nscenario: {len(sc.steps())} passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

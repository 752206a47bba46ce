"""Byte-level Fernet token interop between Limen and Python Keystone's own TokenFormatter.

Keystone (keystone==30.0.0, in-process) is pointed at the fresh Limen's key repository:
 (a) tokens Limen issues decode in Keystone to exactly what Limen's token body says,
     including the delegated ones (application credential, trust, EC2);
 (b) tokens Keystone mints validate in Limen with the same user, scope and times;
 (c) both still hold across `limen keys fernet rotate`, without restarting Limen.
Run with the compat venv: .venv/bin/python compat/fernet_interop.py
"""

import datetime
import json
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")  # via keystone
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from limen_server import LimenServer  # noqa: E402
from steps import run_steps  # noqa: E402

from cryptography import fernet  # noqa: E402  (a keystone dependency)
import keystone.conf  # noqa: E402
from keystone.token import token_formatters as tf  # noqa: E402
from keystone.token.provider import random_urlsafe_str  # noqa: E402
from keystoneclient.contrib.ec2.utils import Ec2Signer  # noqa: E402

CONF = keystone.conf.CONF


class Failure(Exception):
    pass


def eq(actual, expected, what):
    if actual != expected:
        raise Failure(f"{what}: expected {expected!r}, got {actual!r}")


def configure_keystone(key_repository, tmp):
    """Load a minimal keystone.conf the way keystone's own services do."""
    path = os.path.join(tmp, "keystone.conf")
    with open(path, "w") as f:
        f.write(f"[fernet_tokens]\nkey_repository = {key_repository}\nmax_active_keys = 3\n"
                "[token]\nprovider = fernet\n[identity]\ndefault_domain_id = default\n")
    keystone.conf.configure()
    CONF(args=[], project="keystone", default_config_files=[path])


def keystone_view(fields):
    """The fields a Keystone formatter's validate_token() returns, by name."""
    (user_id, methods, audit_ids, system, domain_id, project_id, trust_id, _groups, _idp,
     _protocol, _access_token_id, app_cred_id, _thumbprint, issued_at, expires_at) = fields
    return dict(user_id=user_id, methods=methods, audit_ids=audit_ids, system=system,
                domain_id=domain_id, project_id=project_id, issued_at=issued_at,
                expires_at=expires_at, trust_id=trust_id, app_cred_id=app_cred_id)


def keystone_decode(token):
    """Keystone's view of a Fernet token."""
    return keystone_view(tf.TokenFormatter().validate_token(token))


def limen_view(body):
    """The same fields from a Limen token body (issue or validate response)."""
    t = body["token"]
    return dict(user_id=t["user"]["id"], methods=t["methods"], audit_ids=t["audit_ids"],
                system="all" if t.get("system", {}).get("all") else None,
                domain_id=t.get("domain", {}).get("id"),
                project_id=t.get("project", {}).get("id"),
                issued_at=t["issued_at"], expires_at=t["expires_at"],
                trust_id=t.get("OS-TRUST:trust", {}).get("id"),
                app_cred_id=t.get("application_credential", {}).get("id"))


class Interop:
    def __init__(self, srv):
        self.srv = srv
        self.admin_token, body = self.password_token({"project": {
            "name": "admin", "domain": {"id": "default"}}})
        self.user_id = body["token"]["user"]["id"]
        self.project_id = body["token"]["project"]["id"]

    def call(self, method, path, body=None, token=None, subject=None):
        headers = {"Content-Type": "application/json"}
        if token:
            headers["X-Auth-Token"] = token
        if subject:
            headers["X-Subject-Token"] = subject
        req = urllib.request.Request(self.srv.auth_url + path, method=method, headers=headers,
                                     data=json.dumps(body).encode() if body else None)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                raw = r.read()
                return r.status, r.headers, json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read().decode()

    def issue(self, identity, scope=None):
        auth = {"identity": identity}
        if scope is not None:
            auth["scope"] = scope
        status, headers, body = self.call("POST", "/auth/tokens", {"auth": auth})
        eq(status, 201, f"POST /v3/auth/tokens {scope!r}: {body}")
        return headers["X-Subject-Token"], body

    def password_token(self, scope=None):
        return self.issue({"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"},
            "password": self.srv.admin_password}}}, scope)

    def validate(self, token):
        return self.call("GET", "/auth/tokens", token=self.admin_token, subject=token)

    # ---- (a) Limen issues, Keystone decodes ------------------------------------------
    def check_limen_token(self, what, token, body):
        ks = keystone_decode(token)
        ours = limen_view(body)
        # Keystone keeps methods as a bitmask: its issue response lists them in request
        # order, its validate response in decoded order. Compare both accordingly.
        eq(sorted(ks["methods"]), sorted(ours["methods"]), f"{what}: methods (issue)")
        eq({**ks, "methods": None}, {**ours, "methods": None}, f"{what}: Keystone decode")
        status, _, vbody = self.validate(token)
        eq(status, 200, f"{what}: Limen validates its own token")
        eq(limen_view(vbody), ks, f"{what}: Limen validate body vs Keystone decode")
        return ks

    def step_a_limen_issues(self):
        # The admin needs a role on the default domain for a domain-scoped token.
        roles = self.call("GET", "/roles?name=admin", token=self.admin_token)[2]["roles"]
        status = self.call("PUT", f"/domains/default/users/{self.user_id}/roles/"
                           f"{roles[0]['id']}", token=self.admin_token)[0]
        eq(status, 204, "grant admin on domain default")
        for what, scope in [
            ("unscoped (no scope, no default project)", None),
            ("unscoped (explicit)", "unscoped"),
            ("project", {"project": {"id": self.project_id}}),
            ("domain", {"domain": {"id": "default"}}),
            ("system", {"system": {"all": True}}),
        ]:
            token, body = self.password_token(scope)
            ks = self.check_limen_token(what, token, body)
            kind = "unscoped" if scope in (None, "unscoped") else what
            eq(bool(ks["project_id"]), kind == "project", f"{what}: project in payload")
            eq(bool(ks["domain_id"]), kind == "domain", f"{what}: domain in payload")
            eq(bool(ks["system"]), kind == "system", f"{what}: system in payload")
            eq(ks["methods"], ["password"], f"{what}: methods")
        # Rescope: token method, keeps the parent's expiry and chains its audit id.
        unscoped, ubody = self.password_token("unscoped")
        time.sleep(1)  # a later issued_at than the parent's, to tell them apart
        token, body = self.issue({"methods": ["token"], "token": {"id": unscoped}},
                                 {"project": {"id": self.project_id}})
        ks = self.check_limen_token("rescoped", token, body)
        eq(ks["project_id"], self.project_id, "rescoped: project")
        eq(sorted(ks["methods"]), ["password", "token"], "rescoped: methods")
        eq(ks["audit_ids"][1:], ubody["token"]["audit_ids"], "rescoped: parent audit id")
        eq(ks["expires_at"], ubody["token"]["expires_at"], "rescoped: parent's expiry")
        return "6 Limen tokens decoded by Keystone"

    def step_a_delegated_tokens(self):
        """Application-credential, trust-scoped and EC2 tokens carry their delegation in
        the payload where Keystone looks for it (payload 9, payload 3, the ec2credential
        method bit)."""
        status, _, body = self.call(
            "POST", f"/users/{self.user_id}/application_credentials",
            {"application_credential": {"name": "interop"}}, token=self.admin_token)
        eq(status, 201, f"create application credential: {body}")
        ac = body["application_credential"]
        token, body = self.issue({"methods": ["application_credential"],
                                  "application_credential": {"id": ac["id"],
                                                             "secret": ac["secret"]}})
        ks = self.check_limen_token("application credential", token, body)
        eq((ks["app_cred_id"], ks["project_id"], ks["methods"]),
           (ac["id"], self.project_id, ["application_credential"]), "app cred payload")

        status, _, body = self.call("POST", "/users", {"user": {
            "name": "interop-trustee", "password": "trustee-pw-1"}}, token=self.admin_token)
        eq(status, 201, f"create trustee: {body}")
        trustee = body["user"]["id"]
        status, _, body = self.call("POST", "/OS-TRUST/trusts", {"trust": {
            "trustor_user_id": self.user_id, "trustee_user_id": trustee,
            "project_id": self.project_id, "impersonation": False,
            "roles": [{"name": "member"}]}}, token=self.admin_token)
        eq(status, 201, f"create trust: {body}")
        trust_id = body["trust"]["id"]
        token, body = self.issue({"methods": ["password"], "password": {"user": {
            "id": trustee, "password": "trustee-pw-1"}}}, {"OS-TRUST:trust": {"id": trust_id}})
        ks = self.check_limen_token("trust-scoped", token, body)
        eq((ks["trust_id"], ks["user_id"]), (trust_id, trustee), "trust payload")

        status, _, body = self.call("POST", f"/users/{self.user_id}/credentials/OS-EC2",
                                    {"tenant_id": self.project_id}, token=self.admin_token)
        eq(status, 201, f"create EC2 credential: {body}")
        cred = body["credential"]
        req = {"access": cred["access"], "host": "ec2.interop", "verb": "GET", "path": "/",
               "params": {"Action": "DescribeRegions", "SignatureVersion": "2",
                          "SignatureMethod": "HmacSHA256",
                          # Limen refuses a request whose signature covers no time.
                          "Timestamp": datetime.datetime.now(datetime.timezone.utc)
                          .strftime("%Y-%m-%dT%H:%M:%SZ")}}
        req["signature"] = Ec2Signer(cred["secret"]).generate(json.loads(json.dumps(req)))
        status, headers, body = self.call("POST", "/ec2tokens", {"credentials": req},
                                          token=self.admin_token)
        eq(status, 200, f"ec2tokens: {body}")
        ks = self.check_limen_token("EC2", headers["X-Subject-Token"], body)
        eq((ks["methods"], ks["project_id"]), (["ec2credential"], self.project_id),
           "EC2 payload")
        return "application credential, trust and EC2 tokens decoded by Keystone"

    # ---- (b) Keystone mints, Limen validates -----------------------------------------
    def mint(self, payload_class, micros=0, **scope):
        # Whole seconds, as keystone.token.provider.default_expire_time() makes them.
        expires = (datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
                   + datetime.timedelta(minutes=30)).replace(microsecond=micros)
        return tf.TokenFormatter().create_token(
            self.user_id, expires.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), [random_urlsafe_str()],
            payload_class, methods=["password"], **scope)

    def check_keystone_token(self, what, token):
        ks = keystone_decode(token)
        status, _, body = self.validate(token)
        eq(status, 200, f"{what}: Limen validates a Keystone-minted token ({body})")
        eq(limen_view(body), ks, f"{what}: Limen validate body vs Keystone decode")

    def step_b_keystone_mints(self):
        for what, cls, scope in [
            ("project", tf.ProjectScopedPayload, {"project_id": self.project_id}),
            ("domain", tf.DomainScopedPayload, {"domain_id": "default"}),
            ("system", tf.SystemScopedPayload, {"system": "all"}),
            ("unscoped", tf.UnscopedPayload, {}),
        ]:
            self.check_keystone_token(f"Keystone {what}", self.mint(cls, **scope))
        # A token under a key outside the repository must not validate.
        foreign = fernet.Fernet(fernet.Fernet.generate_key())
        token = self.mint(tf.UnscopedPayload)
        payload = tf.TokenFormatter().unpack(token)
        eq(self.validate(foreign.encrypt(payload).rstrip(b"=").decode())[0], 404,
           "token under a foreign key")
        return "4 Keystone tokens validated by Limen, a foreign-key one refused"

    def step_b_subsecond_expiry(self):
        # A payload expiry with microseconds (a token capped by a trust's or application
        # credential's expires_at) is rendered to the second, as Keystone renders it.
        token = self.mint(tf.ProjectScopedPayload, micros=123456, project_id=self.project_id)
        self.check_keystone_token("Keystone token with a sub-second expiry", token)
        return "sub-second expiry rendered like Keystone"

    # ---- (c) key rotation ------------------------------------------------------------
    def step_c_rotation(self):
        repo = CONF.fernet_tokens.key_repository
        ks_before = self.mint(tf.ProjectScopedPayload, project_id=self.project_id)
        limen_before, lbody = self.password_token({"project": {"id": self.project_id}})
        keys_before = sorted(int(k) for k in os.listdir(repo))
        self.srv.limen("keys", "fernet", "rotate")
        keys = sorted(int(k) for k in os.listdir(repo))
        eq(keys, sorted(set(keys_before + [max(keys_before) + 1])), "key files after rotate")
        self.check_keystone_token("Keystone token minted before rotation", ks_before)
        self.check_limen_token("Limen token issued before rotation", limen_before, lbody)
        self.check_keystone_token("Keystone token minted after rotation",
                                  self.mint(tf.ProjectScopedPayload,
                                            project_id=self.project_id))
        # Like Keystone, a running Limen encrypts with the new primary (highest) key; it
        # looks at the repository at most once a second.
        time.sleep(1.5)
        token, body = self.password_token({"project": {"id": self.project_id}})
        self.check_limen_token("Limen token issued after rotation", token, body)
        with open(os.path.join(repo, str(max(keys))), "rb") as f:
            primary = fernet.Fernet(f.read().strip())
        try:
            primary.decrypt(tf.TokenFormatter.restore_padding(token).encode())
        except fernet.InvalidToken:
            raise Failure("Limen's token after rotation is not under the new primary key")
        return f"keys {keys_before} -> {keys}"


def main():
    # This part is about Fernet whatever format the rest of the run issues.
    os.environ.pop("LIMEN_TOKEN__PROVIDER", None)
    total = time.monotonic()
    with LimenServer() as srv, tempfile.TemporaryDirectory() as tmp:
        configure_keystone(os.path.join(srv.data_dir, "fernet-keys"), tmp)
        steps = ["step_a_limen_issues", "step_a_delegated_tokens", "step_b_keystone_mints",
                 "step_b_subsecond_expiry", "step_c_rotation"]
        return run_steps("fernet-interop", srv, Interop(srv), steps, total)


if __name__ == "__main__":
    sys.exit(main())

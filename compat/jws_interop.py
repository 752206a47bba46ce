"""JWS token interop between Limen and Python Keystone's own JWSFormatter.

A Limen with `[token] provider = "jws"` and Keystone 30's JWSFormatter (in-process) share
Limen's JWS key repositories (Keystone's layout: <private>/private.pem, <public>/*.pem):
 (a) tokens Limen issues decode in Keystone to what Limen's token body says;
 (b) tokens Keystone signs validate in Limen with the same user, scope and times;
 (c) a token signed by a key outside the public repository is refused by both.
Run with the compat venv: .venv/bin/python compat/jws_interop.py
"""

import datetime
import os
import sys
import tempfile
import time
import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")  # via keystone
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "lib"))
sys.path.insert(0, here)
from limen_server import DEFAULT_CONFIG, LimenServer  # noqa: E402
from steps import run_steps  # noqa: E402
from fernet_interop import Failure, Interop, eq, keystone_view, limen_view  # noqa: E402

from cryptography.hazmat.primitives import serialization  # noqa: E402  (keystone dep)
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
import jwt  # noqa: E402  (PyJWT, which Keystone's JWS provider uses)
import keystone.conf  # noqa: E402
from keystone.token.providers.jws import core as jws  # noqa: E402
from keystone.token.provider import random_urlsafe_str  # noqa: E402

CONF = keystone.conf.CONF
CONFIG = DEFAULT_CONFIG + '\n[token]\nprovider = "jws"\n'


def configure_keystone(private_dir, public_dir, tmp):
    path = os.path.join(tmp, "keystone.conf")
    with open(path, "w") as f:
        f.write(f"[token]\nprovider = jws\n[jwt_tokens]\n"
                f"jws_private_key_repository = {private_dir}\n"
                f"jws_public_key_repository = {public_dir}\n"
                "[identity]\ndefault_domain_id = default\n")
    keystone.conf.configure()
    CONF(args=[], project="keystone", default_config_files=[path])


def keystone_jws_decode(token):
    """Keystone's view of a JWS token."""
    return keystone_view(jws.JWSFormatter().validate_token(token))


class JwsInterop(Interop):
    def check_limen_token(self, what, token, body):
        eq(token.count("."), 2, f"{what}: a JWS token")
        ks = keystone_jws_decode(token)
        ours = limen_view(body)
        # JWS keeps method names as issued, so the issue and validate orders agree.
        eq(ks, ours, f"{what}: Keystone decode vs Limen's issue body")
        status, _, vbody = self.validate(token)
        eq(status, 200, f"{what}: Limen validates its own token")
        eq(limen_view(vbody), ks, f"{what}: Limen validate body vs Keystone decode")
        return ks

    def keystone_token(self, **scope):
        expires = (datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
                   + datetime.timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        token, _ = jws.JWSFormatter().create_token(
            self.user_id, expires, [random_urlsafe_str()], ["password"], **scope)
        return token

    def step_a_limen_issues(self):
        roles = self.call("GET", "/roles?name=admin", token=self.admin_token)[2]["roles"]
        status = self.call("PUT", f"/domains/default/users/{self.user_id}/roles/"
                           f"{roles[0]['id']}", token=self.admin_token)[0]
        eq(status, 204, "grant admin on domain default")
        for what, scope in [
            ("unscoped", "unscoped"),
            ("project", {"project": {"id": self.project_id}}),
            ("domain", {"domain": {"id": "default"}}),
            ("system", {"system": {"all": True}}),
        ]:
            token, body = self.password_token(scope)
            self.check_limen_token(what, token, body)
        unscoped, _ = self.password_token("unscoped")
        token, body = self.issue({"methods": ["token"], "token": {"id": unscoped}},
                                 {"project": {"id": self.project_id}})
        self.check_limen_token("rescoped", token, body)
        return "5 Limen JWS tokens decoded by Keystone"

    def step_b_keystone_signs(self):
        for what, scope in [
            ("project", dict(project_id=self.project_id)),
            ("domain", dict(domain_id="default")),
            ("system", dict(system="all")),
        ]:
            token = self.keystone_token(**scope)
            ks = keystone_jws_decode(token)
            status, _, body = self.validate(token)
            eq(status, 200, f"{what}: Limen validates a Keystone-signed token ({body})")
            eq(limen_view(body), ks, f"{what}: Limen validate body vs Keystone decode")
        return "3 Keystone-signed tokens validated by Limen"

    def step_c_untrusted_key(self):
        # Sign with a key pair whose public half is in no repository.
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
        now = int(time.time())
        token = jwt.encode({"sub": self.user_id, "iat": now, "exp": now + 600,
                            "openstack_methods": ["password"],
                            "openstack_audit_ids": [random_urlsafe_str()],
                            "openstack_system": "all"}, pem, algorithm="ES256")
        eq(self.validate(token)[0], 404, "Limen refuses a token signed by an untrusted key")
        try:
            jws.JWSFormatter().validate_token(token)
            raise Failure("Keystone accepted a token signed by an untrusted key")
        except Exception as e:  # noqa: BLE001 - Keystone raises TokenNotFound
            if isinstance(e, Failure):
                raise
        return "an untrusted signature is refused by both"


def main():
    total = time.monotonic()
    with LimenServer(config=CONFIG) as srv, tempfile.TemporaryDirectory() as tmp:
        keys = os.path.join(srv.data_dir, "jws-keys")
        configure_keystone(os.path.join(keys, "private"), os.path.join(keys, "public"), tmp)
        steps = ["step_a_limen_issues", "step_b_keystone_signs", "step_c_untrusted_key"]
        return run_steps("jws-interop", srv, JwsInterop(srv), steps, total)


if __name__ == "__main__":
    sys.exit(main())

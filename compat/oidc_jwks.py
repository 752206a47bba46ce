"""Limen's OpenID Provider keys, read by an independent JOSE library (PyJWT).

A fresh Limen gets signing keys (`limen keys oidc setup`); PyJWT's PyJWKClient fetches
/oauth2/jwks as a relying party (kube-apiserver, an OIDC client) would:
 (a) every published key loads, with the `kid` PyJWT computes itself (RFC 7638) and the
     algorithm it names;
 (b) tokens signed with the primary slot's private keys (RS256 and ES256), their `kid`
     in the header, verify against the key PyJWKClient picks by that `kid`;
 (c) after `limen keys oidc rotate` the old primary's tokens still verify, and a token
     signed with a key Limen never published is refused.
Run with the compat venv: .venv/bin/python compat/oidc_jwks.py
"""

import base64
import hashlib
import json
import os
import sys
import time
import urllib.request

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "lib"))
from limen_server import LimenServer  # noqa: E402
from steps import run_steps  # noqa: E402

import jwt  # noqa: E402  (PyJWT)
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402


def thumbprint(jwk):
    """RFC 7638, computed here rather than taken from Limen."""
    members = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y")}[jwk["kty"]]
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class OidcJwks:
    def __init__(self, srv):
        self.srv = srv
        self.jwks_url = srv.url + "/oauth2/jwks"
        self.first_tokens = []

    def client(self):
        # A fresh client each time: no cached set between rotations.
        return jwt.PyJWKClient(self.jwks_url, cache_jwk_set=False, cache_keys=False)

    def primary_slot(self):
        repo = os.path.join(self.srv.data_dir, "oidc-keys")
        number = max(int(n) for n in os.listdir(repo) if n.isdigit())
        with open(os.path.join(repo, str(number))) as f:
            return json.load(f)

    def signed(self, slot):
        """Tokens signed with a slot's private keys, kid = the public key's thumbprint."""
        tokens = []
        for alg, member in (("RS256", "rs256"), ("ES256", "es256")):
            private = serialization.load_pem_private_key(slot[member].encode(), None)
            algorithm = jwt.get_algorithm_by_name(alg)
            public_jwk = json.loads(algorithm.to_jwk(private.public_key()))
            kid = thumbprint(public_jwk)
            claims = {"sub": "u1", "exp": int(time.time()) + 600}
            tokens.append((alg, jwt.encode(claims, private, algorithm=alg, headers={"kid": kid})))
        return tokens

    def verify(self, token, alg):
        key = self.client().get_signing_key_from_jwt(token)
        return jwt.decode(token, key.key, algorithms=[alg])

    def wait_for_keys(self, count):
        deadline = time.monotonic() + 5
        while True:
            try:
                keys = self.client().get_jwk_set().keys
                if len(keys) == count:
                    return keys
            except jwt.PyJWKClientError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the JWK set never held {count} keys")
            time.sleep(0.2)

    def step_a_keys_load(self):
        self.srv.limen("keys", "oidc", "setup")
        keys = self.wait_for_keys(4)
        algs = sorted(k.algorithm_name for k in keys)
        assert algs == ["ES256", "ES256", "RS256", "RS256"], algs
        assert all(k.public_key_use == "sig" for k in keys)
        with urllib.request.urlopen(self.jwks_url) as r:
            published = json.load(r)["keys"]
        for k in published:
            assert k["kid"] == thumbprint(k), k
        return "4 keys (RS256, ES256 per slot), kids are RFC 7638 thumbprints"

    def step_b_tokens_verify(self):
        self.first_tokens = self.signed(self.primary_slot())
        for alg, token in self.first_tokens:
            claims = self.verify(token, alg)
            assert claims["sub"] == "u1", claims
        return "RS256 and ES256 tokens verify by kid"

    def step_c_rotation(self):
        self.srv.limen("keys", "oidc", "rotate")
        self.wait_for_keys(6)
        for alg, token in self.first_tokens + self.signed(self.primary_slot()):
            self.verify(token, alg)
        stranger = ec.generate_private_key(ec.SECP256R1())
        alg = jwt.get_algorithm_by_name("ES256")
        kid = thumbprint(json.loads(alg.to_jwk(stranger.public_key())))
        token = jwt.encode({"sub": "u1"}, stranger, algorithm="ES256", headers={"kid": kid})
        try:
            self.client().get_signing_key_from_jwt(token)
        except jwt.PyJWKClientError:
            return "old and new primary verify; an unpublished key is refused"
        raise AssertionError("a key Limen never published was found")


def main():
    total = time.monotonic()
    with LimenServer() as srv:
        steps = ["step_a_keys_load", "step_b_tokens_verify", "step_c_rotation"]
        return run_steps("oidc-jwks", srv, OidcJwks(srv), steps, total)


if __name__ == "__main__":
    sys.exit(main())

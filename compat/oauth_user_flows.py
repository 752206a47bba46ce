"""A person's logins through Limen's OpenID Provider, driven by independent clients.

A fresh Limen with an issuer, signing keys, a person (alice) and clients registered with
`limen oauth-client create`. The client side is Authlib's OAuth2Session throughout; the
person is a second actor that uses the provider's real pages (login, consent, device)
over HTTP, as a browser without scripts would:
 (a) discovery: the OpenID configuration names the issuer and the endpoints used below;
 (b) authorization code + PKCE with a public client: Authlib builds the request, the
     person signs in and allows, Authlib redeems the code; PyJWT verifies the ID token
     against the JWK set (kid, RS256, iss, aud) and Authlib reads userinfo;
 (c) the same with a confidential client authenticating with client_secret_basic;
 (d) a replayed code and a wrong PKCE verifier are invalid_grant;
 (e) refresh rotation: each refresh gives a new refresh token; presenting a used one is
     invalid_grant and revokes the family, so the newest one fails too;
 (f) device flow (RFC 8628): the client polls (authorization_pending, honouring
     interval and slow_down) while the person approves on the device page; then a
     denied request is access_denied;
 (g) RFC 7009: Authlib revokes a refresh token; it no longer refreshes;
 (h) RFC 8693: Authlib exchanges the ID token for a cluster token; verified as
     kube-apiserver would (exact issuer, RS256, kid from the JWK set, the cluster as
     audience, exp with no leeway), it names alice and never outlives the ID token; a
     cluster the client may not ask for is invalid_target;
 (i) a client registered with its own signing algorithm (ES256) and lifetimes: PyJWT
     verifies its ID and cluster tokens with ES256 only, and they live as it says.
Run with the compat venv: .venv/bin/python compat/oauth_user_flows.py
"""

import os
import re
import sys
import threading
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "lib"))
from limen_server import DEFAULT_CONFIG, LimenServer  # noqa: E402
from person import Person  # noqa: E402
from steps import run_steps  # noqa: E402

import jwt  # noqa: E402  (PyJWT)
import requests  # noqa: E402
from authlib.common.security import generate_token  # noqa: E402
from authlib.integrations.base_client.errors import OAuthError  # noqa: E402
from authlib.integrations.requests_client import OAuth2Session  # noqa: E402

# The server listens on plain http on the loopback address.
os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
PASSWORD = "alice-Secret-42"
CALLBACK = "http://127.0.0.1:9/cb"


class UserFlows:
    def __init__(self, srv):
        self.srv = srv
        self.person = Person(srv, "alice", PASSWORD)
        self.meta = None
        self.public_id = self.web_id = self.web_secret = None
        self.jwks = None

    def create_client(self, *args):
        fields = self.srv.limen_fields("oauth-client", "create", *args)
        return fields["client_id"], fields.get("client_secret")

    def verify_id_token(self, token, client_id, nonce=None, alg="RS256"):
        key = self.jwks.get_signing_key_from_jwt(token["id_token"])
        claims = jwt.decode(token["id_token"], key.key, algorithms=[alg],
                            audience=client_id, issuer=self.meta["issuer"],
                            options={"require": ["exp", "iat", "iss", "aud", "sub"]})
        assert claims["azp"] == client_id, claims
        assert claims.get("nonce") == nonce, claims
        return claims

    def step_a_discovery(self):
        self.srv.limen("keys", "oidc", "setup")
        admin = requests.post(self.srv.auth_url + "/auth/tokens", json={"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"id": "default"},
                "password": self.srv.admin_password}}},
            "scope": {"system": {"all": True}}}})
        assert admin.status_code == 201, admin.text
        made = requests.post(self.srv.auth_url + "/users", headers={
            "X-Auth-Token": admin.headers["X-Subject-Token"]}, json={"user": {
                "name": "alice", "password": PASSWORD, "email": "alice@example.test"}})
        assert made.status_code == 201, made.text
        self.alice_id = made.json()["user"]["id"]
        self.public_id, _ = self.create_client(
            "--name", "cli", "--public", "--redirect-uri", CALLBACK,
            "--grant-type", "authorization_code", "--grant-type", "refresh_token",
            "--grant-type", DEVICE_GRANT, "--grant-type", EXCHANGE_GRANT,
            "--audience", "cluster-a")
        self.web_id, self.web_secret = self.create_client(
            "--name", "dashboard", "--redirect-uri", CALLBACK,
            "--grant-type", "authorization_code", "--grant-type", "refresh_token")
        self.meta = requests.get(self.srv.url + "/.well-known/openid-configuration").json()
        assert self.meta["issuer"] == self.srv.url, self.meta
        assert "S256" in self.meta["code_challenge_methods_supported"], self.meta
        self.jwks = jwt.PyJWKClient(self.meta["jwks_uri"], cache_jwk_set=False)
        deadline = time.monotonic() + 5
        while True:
            try:
                self.jwks.get_jwk_set()
                break
            except jwt.PyJWKClientError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        return f"issuer {self.meta['issuer']}"

    def code_flow(self, session, verifier=None):
        verifier = verifier or generate_token(48)
        nonce = generate_token(16)
        url, state = session.create_authorization_url(
            self.meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce)
        back = self.person.authorize(url)
        token = session.fetch_token(self.meta["token_endpoint"], authorization_response=back,
                                    state=state, code_verifier=verifier)
        return token, nonce, back

    def public_session(self, scope="openid profile email"):
        return OAuth2Session(self.public_id, scope=scope, redirect_uri=CALLBACK,
                             code_challenge_method="S256")

    def step_b_code_pkce_public(self):
        session = self.public_session()
        token, nonce, _ = self.code_flow(session)
        claims = self.verify_id_token(token, self.public_id, nonce)
        assert claims["sub"] == self.alice_id, claims
        assert claims["preferred_username"] == "alice", claims
        assert claims["email"] == "alice@example.test" and claims["email_verified"] is False
        info = session.get(self.meta["userinfo_endpoint"])
        assert info.status_code == 200 and info.json()["sub"] == self.alice_id, info.text
        return "ID token verified by PyJWT, userinfo read"

    def step_c_code_confidential(self):
        session = OAuth2Session(self.web_id, self.web_secret, scope="openid profile",
                                redirect_uri=CALLBACK, code_challenge_method="S256")
        token, nonce, _ = self.code_flow(session)
        claims = self.verify_id_token(token, self.web_id, nonce)
        assert claims["sub"] == self.alice_id, claims
        # Without the secret the confidential client is not itself.
        try:
            self.code_flow(OAuth2Session(self.web_id, scope="openid", redirect_uri=CALLBACK,
                                         code_challenge_method="S256"))
            raise AssertionError("a confidential client redeemed a code without its secret")
        except OAuthError as e:
            assert e.error == "invalid_client", e.error
        return "client_secret_basic"

    def step_d_replay_and_wrong_verifier(self):
        session = self.public_session("openid")
        _, _, back = self.code_flow(session)
        try:
            session.fetch_token(self.meta["token_endpoint"], authorization_response=back,
                                code_verifier="x" * 43)
            raise AssertionError("a redeemed code was accepted again")
        except OAuthError as e:
            assert e.error == "invalid_grant", e.error
        verifier = generate_token(48)
        url, state = session.create_authorization_url(
            self.meta["authorization_endpoint"], code_verifier=verifier)
        back = self.person.authorize(url)
        try:
            session.fetch_token(self.meta["token_endpoint"], authorization_response=back,
                                state=state, code_verifier=generate_token(48))
            raise AssertionError("a wrong PKCE verifier was accepted")
        except OAuthError as e:
            assert e.error == "invalid_grant", e.error
        return "both invalid_grant"

    def step_e_refresh_rotation_and_reuse(self):
        session = self.public_session("openid profile")
        first, _, _ = self.code_flow(session)
        second = session.refresh_token(self.meta["token_endpoint"],
                                       refresh_token=first["refresh_token"])
        assert second["refresh_token"] != first["refresh_token"], "not rotated"
        self.verify_id_token(second, self.public_id)
        for stale in (first["refresh_token"], second["refresh_token"]):
            try:
                session.refresh_token(self.meta["token_endpoint"], refresh_token=stale)
                raise AssertionError("a refresh token of a revoked family worked")
            except OAuthError as e:
                assert e.error == "invalid_grant", e.error
        return "rotated; reuse revoked the family"

    def poll(self, session, start):
        interval = start.get("interval", 5)
        deadline = time.monotonic() + start["expires_in"]
        slowed = 0
        while time.monotonic() < deadline:
            time.sleep(interval)
            try:
                return session.fetch_token(self.meta["token_endpoint"], grant_type=DEVICE_GRANT,
                                           device_code=start["device_code"]), slowed
            except OAuthError as e:
                if e.error == "slow_down":
                    interval += 5
                    slowed += 1
                elif e.error != "authorization_pending":
                    raise
        raise AssertionError("the device code expired while polling")

    def start_device(self):
        r = requests.post(self.meta["device_authorization_endpoint"],
                          data={"client_id": self.public_id, "scope": "openid profile"})
        assert r.status_code == 200, r.text
        return r.json()

    def step_f_device_flow(self):
        session = OAuth2Session(self.public_id)
        start = self.start_device()
        assert re.fullmatch(r"[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}",
                            start["user_code"]), start
        approver = threading.Thread(target=lambda: (
            time.sleep(1.5),
            self.person.answer_device(start["verification_uri_complete"], "approve")))
        approver.start()
        token, slowed = self.poll(session, start)
        approver.join()
        claims = self.verify_id_token(token, self.public_id)
        assert claims["preferred_username"] == "alice", claims
        start = self.start_device()
        self.person.answer_device(start["verification_uri_complete"], "deny")
        try:
            self.poll(session, start)
            raise AssertionError("a denied device got tokens")
        except OAuthError as e:
            assert e.error == "access_denied", e.error
        return f"approved by the second actor ({slowed} slow_down), denied"

    def step_g_revoke_refresh_token(self):
        session = self.public_session("openid")
        token, _, _ = self.code_flow(session)
        done = session.revoke_token(self.meta["revocation_endpoint"],
                                    token=token["refresh_token"],
                                    token_type_hint="refresh_token")
        assert done.status_code == 200, done.text
        try:
            session.refresh_token(self.meta["token_endpoint"],
                                  refresh_token=token["refresh_token"])
            raise AssertionError("a revoked refresh token worked")
        except OAuthError as e:
            assert e.error == "invalid_grant", e.error
        return "revoked refresh token refused"

    def step_h_token_exchange(self):
        session = self.public_session("openid profile")
        token, nonce, _ = self.code_flow(session)
        id_claims = self.verify_id_token(token, self.public_id, nonce)
        cluster = session.fetch_token(
            self.meta["token_endpoint"], grant_type=EXCHANGE_GRANT,
            subject_token=token["id_token"],
            subject_token_type="urn:ietf:params:oauth:token-type:id_token",
            audience="cluster-a")
        assert cluster["issued_token_type"] == "urn:ietf:params:oauth:token-type:jwt", cluster
        assert "refresh_token" not in cluster, cluster
        # What kube-apiserver's JWT authenticator checks.
        key = self.jwks.get_signing_key_from_jwt(cluster["access_token"])
        claims = jwt.decode(cluster["access_token"], key.key, algorithms=["RS256"],
                            audience="cluster-a", issuer=self.meta["issuer"], leeway=0)
        assert claims["sub"] == self.alice_id and claims["preferred_username"] == "alice"
        assert claims["exp"] <= id_claims["exp"], (claims, id_claims)
        try:
            jwt.decode(cluster["access_token"], key.key, algorithms=["RS256"],
                       audience="cluster-b", issuer=self.meta["issuer"])
            raise AssertionError("the cluster token verified for another audience")
        except jwt.InvalidAudienceError:
            pass
        try:
            session.fetch_token(
                self.meta["token_endpoint"], grant_type=EXCHANGE_GRANT,
                subject_token=token["id_token"],
                subject_token_type="urn:ietf:params:oauth:token-type:id_token",
                audience="cluster-b")
            raise AssertionError("a token for an unregistered audience was issued")
        except OAuthError as e:
            assert e.error == "invalid_target", e.error
        return "ID token -> cluster-a token; cluster-b refused"

    def step_i_client_signing_alg_and_lifetimes(self):
        client_id, _ = self.create_client(
            "--name", "ci-deployer", "--public", "--redirect-uri", CALLBACK,
            "--grant-type", "authorization_code", "--grant-type", EXCHANGE_GRANT,
            "--audience", "cluster-a", "--token-signing-alg", "ES256",
            "--access-token-lifetime", "300", "--exchanged-token-lifetime", "60")
        session = OAuth2Session(client_id, scope="openid profile", redirect_uri=CALLBACK,
                                code_challenge_method="S256")
        token, nonce, _ = self.code_flow(session)
        assert token["expires_in"] == 300, token
        # Only ES256 is accepted here: an RS256 token would fail to verify.
        claims = self.verify_id_token(token, client_id, nonce, alg="ES256")
        assert claims["exp"] - claims["iat"] == 300, claims
        cluster = session.fetch_token(
            self.meta["token_endpoint"], grant_type=EXCHANGE_GRANT,
            subject_token=token["id_token"],
            subject_token_type="urn:ietf:params:oauth:token-type:id_token",
            audience="cluster-a")
        key = self.jwks.get_signing_key_from_jwt(cluster["access_token"])
        claims = jwt.decode(cluster["access_token"], key.key, algorithms=["ES256"],
                            audience="cluster-a", issuer=self.meta["issuer"], leeway=0)
        assert claims["exp"] - claims["iat"] == 60, claims
        return "ES256 ID and cluster tokens, 300 s and 60 s"


def main():
    total = time.monotonic()
    srv = LimenServer()
    srv.config = DEFAULT_CONFIG + (f'\n[oidc]\nissuer = "{srv.url}"\n'
                                   'device_poll_interval = 1\n')
    with srv:
        steps = ["step_a_discovery", "step_b_code_pkce_public", "step_c_code_confidential",
                 "step_d_replay_and_wrong_verifier", "step_e_refresh_rotation_and_reuse",
                 "step_f_device_flow", "step_g_revoke_refresh_token",
                 "step_h_token_exchange", "step_i_client_signing_alg_and_lifetimes"]
        return run_steps("oauth-user-flows", srv, UserFlows(srv), steps, total)


if __name__ == "__main__":
    sys.exit(main())

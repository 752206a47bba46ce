"""Limen's TokenReview webhook checked against the Kubernetes Python client's models.

A fresh Limen with an issuer and signing keys, a cluster registered with `limen cluster
create` with role mappings (holders of member get the groups developers and team-a), a
kubectl client allowed the token exchange for it, and bob, a member of project team-a
and of group ops:
 (a) bob's Keystone token becomes a cluster token (RFC 8693, with requests);
 (b) a V1TokenReview built with the `kubernetes` client's models (v1, with audiences)
     is sent as the API server sends it, with the cluster's webhook token; the answer
     deserializes into V1TokenReview (the client's strict pydantic models) and names
     bob: username, uid, groups (Keystone group, project roles, mapped groups), extra;
 (c) a v1beta1 review, written as kube-apiserver's default webhook version sends it, is
     answered in v1beta1 with the same user;
 (d) a cluster token whose signature is broken, and a Keystone token the cluster does
     not take, are authenticated:false with an error, still models;
 (e) a caller without the webhook token gets 401 with a V1Status;
 (f) `limen cluster apiserver-config a --part jwt` gives an AuthenticationConfiguration;
     the cluster token, verified as kube-apiserver does with that issuer and audience,
     run through its claim mappings by a CEL runtime (cel-expr-python, Google's cel-cpp,
     with the optional and strings extensions Kubernetes enables) gives the same
     username, uid and groups as the webhook;
 (g) a rule for bob's project role on the cluster: V1SubjectAccessReview requests built
     with the models, with the groups the webhook gave bob, are allowed for pods in dev,
     and have no opinion on pods/exec; a deny rule makes it denied; every answer reads
     into V1SubjectAccessReview; a v1beta1 review (spec.group) is answered alike; the
     printed AuthorizationConfiguration's match condition, run by the CEL runtime, sends
     bob's reviews to Limen and a service account's not.
Run with the compat venv: .venv/bin/python compat/k8s_webhooks.py
"""

import json
import os
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "lib"))
from limen_server import DEFAULT_CONFIG, LimenServer  # noqa: E402
from steps import run_steps  # noqa: E402

import jwt  # noqa: E402  (PyJWT)
import requests  # noqa: E402
import yaml  # noqa: E402
from cel_expr_python import cel  # noqa: E402
from cel_expr_python.ext.ext_optional import ExtOptional  # noqa: E402
from cel_expr_python.ext.ext_strings import ExtStrings  # noqa: E402
from kubernetes import client as k8s  # noqa: E402

EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
PASSWORD = "bob-Secret-42"


def model(body, kind):
    """`body` read into the client's model `kind`, as the client reads API answers."""
    return k8s.ApiClient().deserialize(json.dumps(body), kind, "application/json")


class Webhooks:
    def __init__(self, srv):
        self.srv = srv
        self.hook = self.cluster_token = self.keystone_token = None
        self.admin = self.cluster_id = None
        self.bob_id = self.project_id = None
        self.webhook_user = None

    def review(self, body, hook="use-mine"):
        headers = {}
        if hook:
            headers["Authorization"] = f"Bearer {self.hook if hook == 'use-mine' else hook}"
        return requests.post(self.srv.url + "/kubernetes/tokenreview", json=body,
                             headers=headers)

    def step_a_cluster_token(self):
        self.srv.limen("keys", "oidc", "setup")
        fields = self.srv.limen_fields("cluster", "create", "--name", "a", "--api-server",
                                       "https://a.example.com", "--audience", "cluster-a")
        self.hook = fields["webhook_token"]
        self.cluster_id = fields["cluster_id"]
        client_id = self.srv.limen_fields(
            "oauth-client", "create", "--name", "kubectl", "--public",
            "--grant-type", EXCHANGE_GRANT, "--audience", "cluster-a")["client_id"]
        admin = self.admin = self.srv.admin_token()
        # k8s-keystone-auth's role-mappings, as Limen keeps them per cluster.
        self.srv.api("PATCH", f"/limen/clusters/{self.cluster_id}", admin, {"cluster": {
            "role_mappings": [{"role": "member", "groups": ["developers", "team-a"]},
                              {"role": "admin", "groups": ["admins"]}]}})
        self.project_id = self.srv.api("POST", "/projects", admin, {"project": {
            "name": "team-a", "domain_id": "default"}})["project"]["id"]
        self.bob_id = self.srv.api("POST", "/users", admin, {"user": {
            "name": "bob", "password": PASSWORD}})["user"]["id"]
        roles = self.srv.api("GET", "/roles?name=member", admin)["roles"]
        self.srv.api("PUT", f"/projects/{self.project_id}/users/{self.bob_id}/roles/"
                 f"{roles[0]['id']}", admin)
        group = self.srv.api("POST", "/groups", admin, {"group": {"name": "ops"}})["group"]
        self.srv.api("PUT", f"/groups/{group['id']}/users/{self.bob_id}", admin)
        self.keystone_token = self.srv.password_token(
            {"id": self.bob_id}, PASSWORD, {"project": {"id": self.project_id}})
        self.cluster_token = self.srv.cluster_token(client_id, self.keystone_token,
                                                    "cluster-a")
        return "cluster token for cluster-a"

    def check_bob(self, user):
        assert user.username == "limen:Default/bob", user
        assert user.uid == self.bob_id, user
        want = {"limen:group:Default/ops", f"limen:project:{self.project_id}",
                f"limen:project:{self.project_id}:member", "developers", "team-a"}
        assert want <= set(user.groups), user.groups
        assert "admins" not in user.groups, user.groups
        assert user.extra["alpha.kubernetes.io/identity/project/id"] == [self.project_id]
        assert "member" in user.extra["alpha.kubernetes.io/identity/roles"], user.extra

    def step_b_v1_review_as_models(self):
        request = k8s.V1TokenReview(
            api_version="authentication.k8s.io/v1", kind="TokenReview",
            spec=k8s.V1TokenReviewSpec(token=self.cluster_token,
                                       audiences=["cluster-a", "https://kubernetes.default.svc"]))
        resp = self.review(k8s.ApiClient().sanitize_for_serialization(request))
        assert resp.status_code == 200, resp.text
        answer = model(resp.json(), "V1TokenReview")
        assert answer.api_version == "authentication.k8s.io/v1" and answer.kind == "TokenReview"
        assert answer.status.authenticated is True, answer.status
        assert answer.status.audiences == ["cluster-a"], answer.status
        self.check_bob(answer.status.user)
        self.webhook_user = answer.status.user
        return f"{answer.status.user.username}, {len(answer.status.user.groups)} groups"

    def step_c_v1beta1_review(self):
        body = {"apiVersion": "authentication.k8s.io/v1beta1", "kind": "TokenReview",
                "metadata": {"creationTimestamp": None},
                "spec": {"token": self.cluster_token}, "status": {"user": {}}}
        resp = self.review(body)
        assert resp.status_code == 200, resp.text
        raw = resp.json()
        assert raw["apiVersion"] == "authentication.k8s.io/v1beta1", raw
        assert "audiences" not in raw["status"], raw
        answer = model(raw, "V1TokenReview")  # v1beta1 has the same schema
        assert answer.status.authenticated is True, answer.status
        self.check_bob(answer.status.user)
        return "answered in v1beta1"

    def step_d_refusals_are_reviews(self):
        head, payload, signature = self.cluster_token.split(".")
        forged = ".".join([head, payload, signature[::-1]])
        cases = [(forged, ["https://kubernetes.default.svc"], "not a valid cluster token"),
                 (self.keystone_token, [], "not a valid Limen token")]
        for token, audiences, why in cases:
            body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                    "spec": {"token": token, "audiences": audiences}}
            resp = self.review(body)
            assert resp.status_code == 200, resp.text
            answer = model(resp.json(), "V1TokenReview")
            assert answer.status.authenticated is False, answer.status
            assert why in answer.status.error, answer.status.error
            assert answer.status.user is None, answer.status
        return "forged cluster token, Keystone token: authenticated false"

    def step_e_unknown_caller(self):
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                "spec": {"token": self.cluster_token}}
        for hook in (None, "not-a-cluster.secret"):
            resp = self.review(body, hook=hook)
            assert resp.status_code == 401, resp.text
            status = model(resp.json(), "V1Status")
            assert status.code == 401 and status.status == "Failure", status
        return "401 V1Status"

    def step_f_direct_jwt_trust_names_alike(self):
        out = self.srv.limen("cluster", "apiserver-config", "a", "--part", "jwt")
        conf = yaml.safe_load(out)
        assert conf["kind"] == "AuthenticationConfiguration", conf
        entry = conf["jwt"][0]
        issuer = entry["issuer"]
        assert issuer["url"] == self.srv.url and issuer["audiences"] == ["cluster-a"], issuer
        keys = jwt.PyJWKClient(issuer["url"] + "/oauth2/jwks", cache_jwk_set=False)
        key = keys.get_signing_key_from_jwt(self.cluster_token)
        claims = jwt.decode(self.cluster_token, key.key, algorithms=["RS256", "ES256"],
                            audience=issuer["audiences"], issuer=issuer["url"], leeway=0)
        env = cel.NewEnv(variables={"claims": cel.Type.DYN},
                         extensions=[ExtOptional(), ExtStrings()])

        def run(expression):
            return env.compile(expression).eval(data={"claims": claims}).value()

        mappings = entry["claimMappings"]
        username = run(mappings["username"]["expression"])
        groups = [g.plain_value() for g in run(mappings["groups"]["expression"])]
        uid = claims[mappings["uid"]["claim"]]
        assert username == self.webhook_user.username, (username, self.webhook_user)
        assert uid == self.webhook_user.uid, (uid, self.webhook_user)
        assert sorted(groups) == sorted(self.webhook_user.groups), (groups, self.webhook_user)
        for rule in entry["userValidationRules"]:
            user = {"username": username, "groups": groups}
            env_user = cel.NewEnv(variables={"user": cel.Type.DYN},
                                  extensions=[ExtOptional(), ExtStrings()])
            assert env_user.compile(rule["expression"]).eval(data={"user": user}).value()
        return f"{username}, {len(groups)} groups, as the webhook says"

    def access(self, verb, subresource=""):
        attrs = k8s.V1ResourceAttributes(namespace="dev", verb=verb, group="", version="v1",
                                         resource="pods", subresource=subresource, name="web")
        request = k8s.V1SubjectAccessReview(
            api_version="authorization.k8s.io/v1", kind="SubjectAccessReview",
            spec=k8s.V1SubjectAccessReviewSpec(
                user=self.webhook_user.username, uid=self.webhook_user.uid,
                groups=self.webhook_user.groups, resource_attributes=attrs))
        resp = requests.post(self.srv.url + "/kubernetes/subjectaccessreview",
                             json=k8s.ApiClient().sanitize_for_serialization(request),
                             headers={"Authorization": f"Bearer {self.hook}"})
        assert resp.status_code == 200, resp.text
        answer = model(resp.json(), "V1SubjectAccessReview")
        assert answer.kind == "SubjectAccessReview", answer
        return answer.status

    def step_g_access_reviews_as_models(self):
        rules = f"/limen/clusters/{self.cluster_id}/rules"
        self.srv.api("POST", rules, self.admin, {"rule": {
            "subjects": [{"project_id": self.project_id, "role": "member"}],
            "verbs": ["get", "create"], "namespaces": ["dev"], "api_groups": [""],
            "resources": ["pods"]}})
        status = self.access("get")
        assert status.allowed is True and not status.denied, status
        status = self.access("create", "exec")
        assert status.allowed is False and not status.denied, status
        self.srv.api("POST", rules, self.admin, {"rule": {
            "subjects": [{"group": "limen:group:Default/ops"}], "effect": "deny",
            "verbs": ["*"], "namespaces": ["*"], "api_groups": [""], "resources": ["pods/*"]}})
        status = self.access("create", "exec")
        assert status.allowed is False and status.denied is True, status
        beta = {"apiVersion": "authorization.k8s.io/v1beta1", "kind": "SubjectAccessReview",
                "spec": {"user": self.webhook_user.username, "group": self.webhook_user.groups,
                         "resourceAttributes": {"namespace": "dev", "verb": "get",
                                                "resource": "pods"}}}
        resp = requests.post(self.srv.url + "/kubernetes/subjectaccessreview", json=beta,
                             headers={"Authorization": f"Bearer {self.hook}"})
        assert resp.status_code == 200 and resp.json()["status"]["allowed"] is True, resp.text
        assert resp.json()["apiVersion"] == "authorization.k8s.io/v1beta1", resp.text
        conf = yaml.safe_load(self.srv.limen("cluster", "apiserver-config", "a",
                                             "--part", "authz"))
        webhook = [a for a in conf["authorizers"] if a["type"] == "Webhook"][0]["webhook"]
        env = cel.NewEnv(variables={"request": cel.Type.DYN},
                         extensions=[ExtOptional(), ExtStrings()])
        sent = {}
        for user in (self.webhook_user.username, "system:serviceaccount:dev:default"):
            request = {"user": user, "groups": [], "uid": "", "extra": {}}
            sent[user] = all(env.compile(c["expression"]).eval(data={"request": request})
                             .value() for c in webhook["matchConditions"])
        assert sent == {self.webhook_user.username: True,
                        "system:serviceaccount:dev:default": False}, sent
        return "allowed, no opinion, denied; v1beta1 alike; only Limen's people asked"


def main():
    total = time.monotonic()
    srv = LimenServer()
    srv.config = DEFAULT_CONFIG + f'\n[oidc]\nissuer = "{srv.url}"\n'
    with srv:
        steps = ["step_a_cluster_token", "step_b_v1_review_as_models",
                 "step_c_v1beta1_review", "step_d_refusals_are_reviews",
                 "step_e_unknown_caller", "step_f_direct_jwt_trust_names_alike",
                 "step_g_access_reviews_as_models"]
        return run_steps("k8s-webhooks", srv, Webhooks(srv), steps, total)


if __name__ == "__main__":
    sys.exit(main())

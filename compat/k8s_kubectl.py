"""Real, unmodified kubectl logging in through `limen login`, against a cluster whose API
server asks Limen.

A fresh Limen with an issuer and signing keys; a TLS endpoint playing kube-apiserver
(compat/lib/fake_apiserver.py: TokenReview and SubjectAccessReview to Limen with the
cluster's webhook token, 401/403 as the API server answers) registered as cluster `a`
with a public `kubectl` OAuth client as its login client; two people in two projects:
alice (team-a) logs in with the device flow, bob (team-b) is a CI job with an
application credential. Their kubeconfigs are written by `limen kubeconfig` and used
as written. Rules: team-a may read pods and their logs in `dev`, team-b may read pods
in `prod`. With kubectl 1.33 (google-cloud-sdk; exec API v1 and v1beta1) and 1.20
(Debian's kubernetes-client, unpacked into target/; v1beta1):
 (a) setup; `limen kubeconfig` output is what kubectl reads (`config view`);
 (b) three kubectl runs at once with nobody logged in: one device login (the link on
     kubectl's stderr, approved by alice on the device page), all three succeed with
     one cluster token;
 (c) each person reads their own namespace's pods and is Forbidden in the other's;
 (d) alice reads a pod's log (subresource `log`, named by the rule) but may not exec
     into it (`pods/exec` is not `pods`): Forbidden; and asks as `kubectl auth can-i`
     does (a SelfSubjectAccessReview, posted as JSON: kubectl 1.33's `auth can-i` posts
     protobuf, which the test endpoint does not speak): yes for list pods in dev, no for
     create pods/exec and for list pods in prod;
 (e) an expired cached token is replaced without a new login; a cached token the
     cluster refuses (401) is replaced when kubectl asks again, so the next command
     works;
 (f) a token that is not Limen's is Unauthorized; `limen logout` ends alice's login.
Run with the compat venv: .venv/bin/python compat/k8s_kubectl.py
"""

import base64
import glob
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(here)
sys.path.insert(0, os.path.join(here, "lib"))
from fake_apiserver import FakeApiServer  # noqa: E402
from limen_server import DEFAULT_CONFIG, LimenServer, limen_bin  # noqa: E402
from person import Person  # noqa: E402
from steps import run_steps  # noqa: E402


DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
PASSWORD = "k8s-Secret-42"
KUBECTL_133 = "/usr/lib/google-cloud-sdk/bin/kubectl.1.33"


def kubectl_120():
    """Debian's kubectl 1.20, unpacked from its package into target/ (it cannot be
    installed beside the google-cloud-sdk kubectl: both own /usr/bin/kubectl)."""
    root = os.path.join(repo, "target", "kubectl-1.20")
    binary = os.path.join(root, "usr", "bin", "kubectl")
    if os.path.exists(binary):
        return binary
    os.makedirs(root, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        fetched = subprocess.run(["apt-get", "download", "kubernetes-client"], cwd=d,
                                 capture_output=True, text=True)
        if fetched.returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True)
            subprocess.run(["apt-get", "download", "kubernetes-client"], cwd=d, check=True,
                           capture_output=True)
        deb = glob.glob(os.path.join(d, "kubernetes-client_*.deb"))[0]
        subprocess.run(["dpkg-deb", "-x", deb, root], check=True)
    return binary


class Kubectl:
    def __init__(self, srv):
        self.srv = srv
        self.fake = None
        self.kubeconfigs = {}
        self.binaries = {}
        self.dir = tempfile.mkdtemp(prefix="limen-kubectl-")
        self.cache = os.path.join(self.dir, "cache")
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("LIMEN_APPLICATION_CREDENTIAL")}
        self.env.update(LIMEN_CACHE_DIR=self.cache, LIMEN_DEVICE_LOGIN="never")
        self.bob_env = {}

    def limen_kubeconfig(self, name, *args):
        path = os.path.join(self.dir, f"{name}.kubeconfig")
        out = subprocess.run([limen_bin(), "kubeconfig", "--issuer", self.srv.url,
                              self.cluster_id, "--kubeconfig", path, *args],
                             capture_output=True, text=True, env=self.env)
        assert out.returncode == 0, out.stderr
        return path

    def static_kubeconfig(self, name, token):
        ca = base64.b64encode(self.fake.ca_pem.encode()).decode()
        path = os.path.join(self.dir, f"{name}.kubeconfig")
        with open(path, "w") as f:
            f.write(f"""apiVersion: v1
kind: Config
clusters:
- name: a
  cluster: {{server: "{self.fake.url}", certificate-authority-data: {ca}}}
users:
- name: {name}
  user: {{token: {token}}}
contexts:
- name: {name}@a
  context: {{cluster: a, user: {name}}}
current-context: {name}@a
""")
        os.chmod(path, 0o600)
        return path

    def command(self, version, config, *args):
        return [self.binaries[version], "--kubeconfig", self.kubeconfigs[config], *args]

    def env_of(self, config, **extra):
        env = dict(self.env, **extra)
        if config.startswith("bob"):
            env.update(self.bob_env)
        return env

    def run(self, version, config, *args, **env):
        out = subprocess.run(self.command(version, config, *args), capture_output=True,
                             text=True, timeout=60, env=self.env_of(config, **env))
        return out.returncode, out.stdout, out.stderr

    def configs_for(self, version, who):
        """The kubeconfigs of `who` that kubectl `version` can use."""
        names = [f"{who}-v1beta1"]
        if version == "1.33":
            names.append(f"{who}-v1")
        return names

    def cluster_entry(self):
        """alice's cached cluster token file (the one cluster entry of her account)."""
        found = [p for p in glob.glob(os.path.join(self.cache, "account-*", "cluster-*.json"))
                 if json.load(open(p)).get("project") == self.team_a]
        assert len(found) == 1, found
        return found[0]

    def tokens_seen(self):
        return {b["spec"]["token"] for kind, b, _ in self.fake.reviews if kind == "TokenReview"}

    def step_a_setup(self):
        self.srv.limen("keys", "oidc", "setup")
        self.fake = FakeApiServer(self.srv.url, None).__enter__()
        ca_file = os.path.join(self.dir, "apiserver-ca.pem")
        with open(ca_file, "w") as f:
            f.write(self.fake.ca_pem)
        self.client_id = self.srv.limen_fields(
            "oauth-client", "create", "--name", "kubectl", "--public",
            "--grant-type", DEVICE_GRANT, "--grant-type", "refresh_token",
            "--grant-type", EXCHANGE_GRANT)["client_id"]
        fields = self.srv.limen_fields("cluster", "create", "--name", "a", "--api-server",
                                       self.fake.url, "--audience", "cluster-a",
                                       "--ca-file", ca_file, "--login-client", self.client_id)
        self.fake.webhook_token = fields["webhook_token"]
        self.cluster_id = fields["cluster_id"]
        admin = self.srv.admin_token()
        member = self.srv.api("GET", "/roles?name=member", admin)["roles"][0]["id"]
        rules = f"/limen/clusters/{self.cluster_id}/rules"
        projects = {}
        for person, project_name, namespace, resources in (
                ("alice", "team-a", "dev", ["pods", "pods/log"]),
                ("bob", "team-b", "prod", ["pods"])):
            project = self.srv.api("POST", "/projects", admin, {"project": {
                "name": project_name, "domain_id": "default"}})["project"]["id"]
            user = self.srv.api("POST", "/users", admin, {"user": {
                "name": person, "password": PASSWORD}})["user"]["id"]
            self.srv.api("PUT", f"/projects/{project}/users/{user}/roles/{member}", admin)
            self.srv.api("POST", rules, admin, {"rule": {
                "subjects": [{"project_id": project, "role": "member"}],
                "verbs": ["get", "list"], "namespaces": [namespace], "api_groups": [""],
                "resources": resources}})
            projects[person] = (project, user)
        self.team_a = projects["alice"][0]
        # bob is a CI job: an application credential of his, in team-b.
        project, user = projects["bob"]
        keystone = self.srv.password_token({"id": user}, PASSWORD, {"project": {"id": project}})
        cred = self.srv.api("POST", f"/users/{user}/application_credentials", keystone,
                            {"application_credential": {"name": "ci"}})["application_credential"]
        self.bob_env = {"LIMEN_APPLICATION_CREDENTIAL_ID": cred["id"],
                        "LIMEN_APPLICATION_CREDENTIAL_SECRET": cred["secret"]}
        for version in ("v1beta1", "v1"):
            self.kubeconfigs[f"alice-{version}"] = self.limen_kubeconfig(
                f"alice-{version}", "--account", "alice", "--project", self.team_a,
                "--exec-api-version", version)
            self.kubeconfigs[f"bob-{version}"] = self.limen_kubeconfig(
                f"bob-{version}", "--account", "ci", "--exec-api-version", version)
        self.kubeconfigs["stranger"] = self.static_kubeconfig("stranger", "not-a-limen-token")
        self.binaries = {"1.33": KUBECTL_133, "1.20": kubectl_120()}
        for version, binary in self.binaries.items():
            out = subprocess.run([binary, "version", "--client"], capture_output=True,
                                 text=True)
            assert f"v{version}" in out.stdout, out.stdout + out.stderr
            for config in self.configs_for(version, "alice"):
                rc, out, err = self.run(version, config, "config", "view", "--minify",
                                        "-o", "jsonpath={.users[0].user.exec.args}")
                assert rc == 0 and "login" in out and self.team_a in out, (version, out, err)
        return f"fake API server at {self.fake.url}; kubectl {', '.join(self.binaries)}"

    def step_b_parallel_runs_share_one_device_login(self):
        runs = []
        for version in self.binaries:
            for config in self.configs_for(version, "alice"):
                proc = subprocess.Popen(
                    self.command(version, config, "get", "--raw", "/api/v1/namespaces/dev/pods"),
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                    env=self.env_of(config, LIMEN_DEVICE_LOGIN="always"))
                runs.append((version, config, proc))
        links, lines = [], []

        def read(proc):
            for line in proc.stderr:
                lines.append(line)
                if line.strip().startswith("http"):
                    links.append(line.strip())
        readers = [threading.Thread(target=read, args=(p,), daemon=True) for _, _, p in runs]
        for r in readers:
            r.start()
        deadline = time.monotonic() + 30
        while not links and time.monotonic() < deadline:
            time.sleep(0.1)
        assert links, "no device link on kubectl's stderr: " + "".join(lines)
        time.sleep(1.5)  # a second login would have shown its link by now
        assert len(links) == 1, links
        done = Person(self.srv, "alice", PASSWORD).answer_device(links[0], "approve")
        assert "approved" in done, done
        for version, config, proc in runs:
            out = proc.stdout.read()
            assert proc.wait(timeout=60) == 0, (version, config, out, "".join(lines))
            assert "limen:Default/alice" in out, (version, config, out)
        for r in readers:
            r.join(timeout=5)
        assert len(self.tokens_seen()) == 1, "one cluster token for all four runs"
        return f"{len(runs)} kubectl runs, one login, one token"

    def step_c_own_namespace_allowed_other_forbidden(self):
        checks = 0
        for version in self.binaries:
            for who, mine, theirs in (("alice", "dev", "prod"), ("bob", "prod", "dev")):
                for config in self.configs_for(version, who):
                    rc, out, err = self.run(version, config, "get", "--raw",
                                            f"/api/v1/namespaces/{mine}/pods")
                    assert rc == 0 and f"limen:Default/{who}" in out, (version, config, out, err)
                    rc, out, err = self.run(version, config, "get", "--raw",
                                            f"/api/v1/namespaces/{theirs}/pods")
                    assert rc != 0 and "Forbidden" in err, (version, config, out, err)
                    checks += 2
        assert len(self.tokens_seen()) == 2, "alice's and bob's, each cached"
        return f"{checks} checks: 2 people, 2 kubectl versions, exec API v1 and v1beta1"

    def step_d_subresources(self):
        body = os.path.join(self.dir, "exec.json")
        with open(body, "w") as f:
            f.write("{}")
        for version in self.binaries:
            rc, out, err = self.run(version, "alice-v1beta1", "get", "--raw",
                                    "/api/v1/namespaces/dev/pods/web/log")
            assert rc == 0, (version, out, err)
            rc, out, err = self.run(version, "alice-v1beta1", "create", "--raw",
                                    "/api/v1/namespaces/dev/pods/web/exec", "-f", body)
            assert rc != 0 and "Forbidden" in err, (version, out, err)
        seen = {(b["spec"]["resourceAttributes"]["subresource"],
                 b["spec"]["resourceAttributes"]["verb"])
                for kind, b, _ in self.fake.reviews
                if kind == "SubjectAccessReview" and "resourceAttributes" in b["spec"]}
        assert {("log", "get"), ("exec", "create")} <= seen, seen
        for version in self.binaries:
            for attributes, allowed in (
                    ({"namespace": "dev", "verb": "list", "resource": "pods"}, True),
                    ({"namespace": "dev", "verb": "create", "resource": "pods",
                      "subresource": "exec"}, False),
                    ({"namespace": "prod", "verb": "list", "resource": "pods"}, False)):
                with open(body, "w") as f:
                    json.dump({"apiVersion": "authorization.k8s.io/v1",
                               "kind": "SelfSubjectAccessReview",
                               "spec": {"resourceAttributes": attributes}}, f)
                rc, out, err = self.run(
                    version, "alice-v1beta1", "create", "--raw",
                    "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", "-f", body)
                assert rc == 0, (version, attributes, out, err)
                assert json.loads(out)["status"]["allowed"] is allowed, (version, attributes, out)
        return "pods/log allowed, pods/exec forbidden; can-i: yes, no, no"

    def step_e_expired_and_refused_tokens_are_replaced(self):
        path = self.cluster_entry()
        login_file = os.path.join(os.path.dirname(path), "login.json")
        login = json.load(open(login_file))
        notes = []
        for version in self.binaries:
            # Expired: a new cluster token from the same login (no device login may run).
            entry = json.load(open(path))
            entry["expires_at"] = entry["issued_at"] = int(time.time()) - 10
            with open(path, "w") as f:
                json.dump(entry, f)
            before = self.tokens_seen()
            rc, out, err = self.run(version, "alice-v1beta1", "get", "--raw",
                                    "/api/v1/namespaces/dev/pods")
            assert rc == 0, (version, out, err)
            fresh = json.load(open(path))
            assert fresh["token"] != entry["token"] and fresh["token"] in self.tokens_seen() - before
            assert json.load(open(login_file))["access_token"] == login["access_token"]
            # Refused: the API server answers 401; kubectl runs the plugin again, which
            # gets a new token; kubectl does not retry, so only the next command works.
            fresh["token"] = "refused-" + fresh["token"][-12:]
            with open(path, "w") as f:
                json.dump(fresh, f)
            rc, out, err = self.run(version, "alice-v1beta1", "get", "--raw",
                                    "/api/v1/namespaces/dev/pods")
            assert rc != 0 and "Unauthorized" in err, (version, out, err)
            replaced = json.load(open(path))["token"]
            assert replaced != fresh["token"], "kubectl's second run replaced the token"
            rc, out, err = self.run(version, "alice-v1beta1", "get", "--raw",
                                    "/api/v1/namespaces/dev/pods")
            assert rc == 0, (version, out, err)
            notes.append(version)
        return f"expired and refused tokens replaced with kubectl {', '.join(notes)}"

    def step_f_unauthorized_and_logout(self):
        for version in self.binaries:
            rc, out, err = self.run(version, "stranger", "get", "--raw",
                                    "/api/v1/namespaces/dev/pods")
            assert rc != 0 and "Unauthorized" in err, (version, out, err)
        out = subprocess.run([limen_bin(), "logout", "--issuer", self.srv.url,
                              "--account", "alice"], capture_output=True, text=True,
                             env=self.env)
        assert out.returncode == 0 and "ended the login" in out.stdout, out.stdout + out.stderr
        rc, out, err = self.run("1.33", "alice-v1", "get", "--raw", "/api/v1/namespaces/dev/pods")
        assert rc != 0 and "not logged in" in err, (out, err)
        self.fake.__exit__(None, None, None)
        return "Unauthorized on both; logged out"


def main():
    total = time.monotonic()
    srv = LimenServer()
    srv.config = DEFAULT_CONFIG + f'\n[oidc]\nissuer = "{srv.url}"\ndevice_poll_interval = 1\n'
    with srv:
        steps = ["step_a_setup", "step_b_parallel_runs_share_one_device_login",
                 "step_c_own_namespace_allowed_other_forbidden", "step_d_subresources",
                 "step_e_expired_and_refused_tokens_are_replaced",
                 "step_f_unauthorized_and_logout"]
        return run_steps("k8s-kubectl", srv, Kubectl(srv), steps, total)


if __name__ == "__main__":
    sys.exit(main())

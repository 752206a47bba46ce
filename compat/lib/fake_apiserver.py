"""A TLS endpoint that plays kube-apiserver's part towards Limen's webhooks.

It does what kube-apiserver does with a bearer token: sends a TokenReview (v1, with the
API server's own audiences) to Limen with the cluster's webhook token, applies the
answer's audiences as the API server's webhook authenticator does (no status.audiences:
its own; otherwise they must meet its own), and answers 401 if no one is authenticated.
For a resource request it sends a SubjectAccessReview (v1) with the person's username,
uid, groups and extra, and the request's attributes parsed from the path as the API
server's request-info resolver does; Limen allowed: 200 with a small JSON object; denied
or no opinion (there is no RBAC here): 403. A SelfSubjectAccessReview (what `kubectl
auth can-i` asks; JSON here) is answered as the API server answers it: the person's own
attributes sent to Limen as a SubjectAccessReview, `status.allowed` back. Only JSON; only
what the tests ask.
"""

import datetime
import ipaddress
import json
import os
import ssl
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

API_AUDIENCES = ["https://kubernetes.default.svc"]
VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch",
         "DELETE": "delete"}


def self_signed(directory):
    """A P-256 certificate for 127.0.0.1: (cert file, key file, PEM text)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-apiserver")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    cert_file, key_file = os.path.join(directory, "tls.crt"), os.path.join(directory, "tls.key")
    with open(cert_file, "w") as f:
        f.write(pem)
    with open(key_file, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return cert_file, key_file, pem


def request_attributes(method, path, query):
    """What the API server's request-info resolver makes of a request: a resource
    request's attributes, or None for a non-resource path."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 2:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, rest = parts[1], parts[3:]
    else:
        return None
    if not rest:
        return None
    namespace = ""
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    resource, name, subresource = rest[0], "", ""
    if len(rest) >= 2:
        name = rest[1]
    if len(rest) >= 3:
        subresource = rest[2]
    verb = VERBS.get(method, method.lower())
    if verb == "get" and not name:
        verb = "watch" if "watch=true" in query else "list"
    return {"namespace": namespace, "verb": verb, "group": group, "version": "v1",
            "resource": resource, "subresource": subresource, "name": name}


class FakeApiServer:
    """Runs on 127.0.0.1 on a free port; `url`, `ca_pem`; a context manager."""

    def __init__(self, limen_url, webhook_token):
        self.limen_url = limen_url
        self.webhook_token = webhook_token
        self.dir = tempfile.mkdtemp(prefix="fake-apiserver-")
        cert_file, key_file, self.ca_pem = self_signed(self.dir)
        self.reviews = []  # (kind, body sent, answer) of every webhook call
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.handle(self)

            do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()

    def webhook(self, path, body):
        resp = requests.post(self.limen_url + path, json=body, timeout=30,
                             headers={"Authorization": f"Bearer {self.webhook_token}"})
        if resp.status_code != 200:
            raise RuntimeError(f"webhook {path} answered {resp.status_code}: {resp.text}")
        answer = resp.json()
        self.reviews.append((body["kind"], body, answer))
        return answer

    @staticmethod
    def status(handler, code, reason, message):
        FakeApiServer.send_json(handler, code, {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code})

    def authenticate(self, handler):
        header = handler.headers.get("Authorization", "")
        if not header.lower().startswith("bearer "):
            return None
        answer = self.webhook("/kubernetes/tokenreview", {
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
            "spec": {"token": header[7:], "audiences": API_AUDIENCES}})
        status = answer.get("status", {})
        if not status.get("authenticated"):
            return None
        granted = status.get("audiences") or API_AUDIENCES
        if not set(granted) & set(API_AUDIENCES):
            return None
        return status["user"]

    @staticmethod
    def send_json(handler, code, body):
        raw = json.dumps(body).encode()
        handler.send_response(code)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(raw)))
        handler.end_headers()
        handler.wfile.write(raw)

    @staticmethod
    def read_body(handler):
        """The request body, sent with a length or chunked (kubectl create --raw)."""
        if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
                chunk = handler.rfile.read(size + 2)[:size]
                if size == 0:
                    return body
                body += chunk
        length = int(handler.headers.get("Content-Length") or 0)
        return handler.rfile.read(length) if length else b""

    def handle(self, handler):
        body = self.read_body(handler)
        path, _, query = handler.path.partition("?")
        user = self.authenticate(handler)
        if user is None:
            return self.status(handler, 401, "Unauthorized", "Unauthorized")
        spec = {"user": user.get("username", ""), "uid": user.get("uid", ""),
                "groups": user.get("groups", []) + ["system:authenticated"],
                "extra": user.get("extra", {})}
        if (handler.command == "POST"
                and path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"):
            return self.self_review(handler, spec, json.loads(body or b"{}"))
        attributes = request_attributes(handler.command, path, query)
        if attributes is None:
            spec["nonResourceAttributes"] = {"path": path,
                                             "verb": handler.command.lower()}
        else:
            spec["resourceAttributes"] = attributes
        answer = self.webhook("/kubernetes/subjectaccessreview", {
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": spec})
        if not answer.get("status", {}).get("allowed"):
            what = attributes or {"resource": path, "verb": handler.command.lower(),
                                  "group": "", "namespace": ""}
            return self.status(handler, 403, "Forbidden",
                               f'{what["resource"]} is forbidden: User "{spec["user"]}" '
                               f'cannot {what["verb"]} resource "{what["resource"]}" in API '
                               f'group "{what["group"]}" in the namespace '
                               f'"{what["namespace"]}": {answer["status"].get("reason", "")}')
        self.send_json(handler, 200, {"kind": "Fake", "apiVersion": "v1", "path": path,
                                      "user": spec["user"]})

    def self_review(self, handler, spec, review):
        """Whether the caller may do what the review names: every authenticated person may
        ask this about themselves; the answer is Limen's (no RBAC here)."""
        asked = review.get("spec", {})
        for key in ("resourceAttributes", "nonResourceAttributes"):
            if key in asked:
                spec[key] = asked[key]
        answer = self.webhook("/kubernetes/subjectaccessreview", {
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": spec})
        status = answer.get("status", {})
        self.send_json(handler, 201, {
            "kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
            "metadata": {}, "spec": asked,
            "status": {"allowed": bool(status.get("allowed")),
                       "denied": bool(status.get("denied")),
                       "reason": status.get("reason", "")}})

"""A person in a browser without scripts, using Limen's real sign-in pages over HTTP:
follows redirects herself, fills in the login form when asked, answers the consent and
device pages. The second actor of the device and code flows."""

import html
import re

import requests


def hidden_fields(page):
    """The hidden fields of a page's forms, unescaped as a browser would."""
    found = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page)
    return {html.unescape(k): html.unescape(v) for k, v in found}


class Person:
    def __init__(self, srv, username, password, domain="Default"):
        self.srv = srv
        self.username, self.password, self.domain = username, password, domain
        self.http = requests.Session()

    def sign_in_if_asked(self, resp):
        if resp.status_code == 303 and "/login?" in resp.headers["Location"]:
            form = self.http.get(resp.headers["Location"])
            fields = hidden_fields(form.text)
            fields.update(username=self.username, password=self.password, domain=self.domain)
            resp = self.http.post(self.srv.url + "/login", data=fields, allow_redirects=False)
            assert resp.status_code == 303, resp.text
            resp = self.http.get(resp.headers["Location"], allow_redirects=False)
        return resp

    def authorize(self, url, decision="allow"):
        """Opens the client's authorization URL; answers the consent page if shown.
        Returns where the provider sends the browser back to."""
        resp = self.sign_in_if_asked(self.http.get(url, allow_redirects=False))
        if resp.status_code == 200:
            assert "Allow access?" in resp.text, resp.text
            fields = hidden_fields(resp.text)
            fields["decision"] = decision
            resp = self.http.post(self.srv.url + "/oauth2/authorize", data=fields,
                                  allow_redirects=False)
        assert resp.status_code == 302, (resp.status_code, resp.text)
        return resp.headers["Location"]

    def answer_device(self, link, decision):
        """Opens a device login's link, signs in if asked, approves or denies."""
        resp = self.sign_in_if_asked(self.http.get(link, allow_redirects=False))
        assert resp.status_code == 200 and "Approve this device?" in resp.text, resp.text
        fields = hidden_fields(resp.text)
        fields["decision"] = decision
        done = self.http.post(self.srv.url + "/device", data=fields)
        assert done.status_code == 200, done.text
        return done.text

#!/usr/bin/env python3
"""Registers what `limen login` needs on a Limen that bench/populate.py filled: a public
OAuth client for kubectl, a cluster whose login client it is, and an application
credential of bench-user (so logging in needs no browser). Prints shell assignments.

  login_setup.py --base URL --admin-token TOKEN --user-id ID --member-token TOKEN

Standard library only.
"""

import argparse
import shlex

from populate import Api

GRANTS = ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token",
          "urn:ietf:params:oauth:grant-type:token-exchange"]


def main():
    p = argparse.ArgumentParser()
    for arg in ("--base", "--admin-token", "--user-id", "--member-token"):
        p.add_argument(arg, required=True)
    a = p.parse_args()
    api = Api(a.base)
    api.token = a.admin_token
    _, c = api.call("POST", "/v3/limen/oauth_clients", {"oauth_client": {
        "name": "kubectl", "confidential": False, "grant_types": GRANTS}})
    client = c["oauth_client"]["id"]
    _, k = api.call("POST", "/v3/limen/clusters", {"cluster": {
        "name": "bench", "api_server": "https://k8s.bench.example:6443", "audience": "bench",
        "login_client_id": client}})
    _, cred = api.call("POST", f"/v3/users/{a.user_id}/application_credentials",
                       {"application_credential": {"name": "bench-login"}},
                       token=a.member_token)
    out = {
        "CLIENT_ID": client,
        "AUDIENCE": k["cluster"]["audience"],
        "APP_CRED_ID": cred["application_credential"]["id"],
        "APP_CRED_SECRET": cred["application_credential"]["secret"],
    }
    for key, v in out.items():
        print(f"{key}={shlex.quote(v)}")


if __name__ == "__main__":
    main()

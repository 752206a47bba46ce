"""Domain Manager conformance against a fresh Limen, in the spirit of the SCS
domain-manager conformance test (scs-0302), driven through openstacksdk.

Keystone 30's default policy gives a user holding `manager` on a domain, with a token
scoped to that domain, administration of that domain's users, projects, groups, group
memberships and grants (of the roles manager, member and reader only), and nothing else.
The bootstrap admin sets up two such domains, A and B, each with its own manager; then
the manager of A (and in a few cases the manager of B) tries things it may and may not do.

Each case runs one client call as a manager and states the outcome: allowed (and the
effect is then checked, mostly through the admin connection) or refused with one of the
given HTTP statuses (and then checked to have had no effect). A refusal with another
status fails the case, as does a success where a refusal was expected.

Run with the compat venv: .venv/bin/python compat/domain_manager.py
"""

import inspect
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from limen_server import LimenServer  # noqa: E402

import openstack  # noqa: E402
from keystoneauth1 import exceptions as ksa_exc  # noqa: E402
from keystoneauth1 import session as ksa_session  # noqa: E402
from keystoneauth1.identity import v3  # noqa: E402
from openstack import exceptions as sdk_exc  # noqa: E402
from openstack.identity.v3 import project as sdk_project  # noqa: E402

DOM_A, DOM_B = "dm-domain-a", "dm-domain-b"
PW = "dm-Secret-1"

# Expected outcomes.
ALLOWED = ()
DENIED = (403,)        # policy says no
HIDDEN = (403, 404)    # another domain's object: Keystone answers 403, 404 hides it as well
INVALID = (400,)       # validation: e.g. domain_id is immutable
REFUSED = (400, 403, 404)  # crafted requests: any refusal will do, as long as nothing happens
EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def eq(actual, expected, what):
    check(actual == expected, f"{what}: expected {expected!r}, got {actual!r}")


@dataclass
class Case:
    name: str
    do: Callable[[], Any]                # one client call as a domain manager
    refused: tuple = ALLOWED             # statuses that count as the expected refusal
    then: Callable[[Any], None] = None   # checks the effect; gets do()'s result (None if refused)
    or_empty: bool = False               # a filtered list: refused, or allowed (then checks empty)


class DomainManagerTest:
    def __init__(self, srv):
        self.srv = srv
        self.responses = []  # every HTTP response the managers' connections received
        self.adm = self.connect("admin", srv.admin_password, "Default", project="admin")
        self.ids = {}
        self.names = {}  # id -> name, for messages

    # ---- connections --------------------------------------------------------------
    def connect(self, user, password, user_domain, project=None, domain=None, record=False):
        auth = dict(auth_url=self.srv.auth_url, username=user, password=password,
                    user_domain_name=user_domain)
        if project:
            auth.update(project_name=project, project_domain_name=user_domain)
        if domain:
            auth.update(domain_name=domain)
        conn = openstack.connection.Connection(
            auth=auth, auth_type="password", identity_api_version="3",
            region_name="RegionOne", interface="public")
        if record:
            # The sdk's grant and membership calls swallow HTTP errors (they answer None or
            # False): the status each case is judged by is the last response received.
            conn.session.session.hooks["response"].append(
                lambda r, *args, **kwargs: self.responses.append(r))
        return conn

    def can_login(self, user, domain, password):
        sess = ksa_session.Session(auth=v3.Password(
            auth_url=self.srv.auth_url, username=user, password=password,
            user_domain_name=domain, unscoped=True))
        try:
            sess.get_token()
            return True
        except ksa_exc.Unauthorized:
            return False

    # ---- setup, as the bootstrap admin --------------------------------------------
    def setup(self):
        idn, i = self.adm.identity, self.ids
        for r in idn.roles():
            i[r.name] = r.id
        for k in ("admin", "manager", "member", "reader"):
            check(k in i, f"bootstrap role {k} missing")
        # No role may imply admin (Keystone's [assignment] prohibited_implied_role), so the
        # escalation through implication is tried with the next best: a custom role
        # implying manager, which is not itself on the allow-list.
        i["escalator"] = idn.create_role(name="dm-escalator").id
        r = self.adm.identity.put(f"/roles/{i['escalator']}/implies/{i['admin']}")
        eq(r.status_code, 403, "setup: admin creating an implication of admin")
        self.adm.identity.put(f"/roles/{i['escalator']}/implies/{i['manager']}",
                              raise_exc=True)
        i["auditor"] = idn.create_role(name="dm-auditor").id  # harmless, not allow-listed

        for key, dom in (("a", DOM_A), ("b", DOM_B)):
            d = idn.create_domain(name=dom, description=f"domain manager test {key}")
            i[f"dom_{key}"] = d.id
        users = {"mgr_a": "a", "alice_a": "a", "bob_a": "a", "dave_a": "a",
                 "mgr_b": "b", "carol_b": "b", "erin_b": "b"}
        for key, dom in users.items():
            i[key] = idn.create_user(name=key.replace("_", "-"), password=PW,
                                     domain_id=i[f"dom_{dom}"], description="orig").id
        projects = {"proj_a1": "a", "proj_a2": "a", "proj_a3": "a", "proj_b1": "b"}
        for key, dom in projects.items():
            i[key] = idn.create_project(name=key.replace("_", "-"), domain_id=i[f"dom_{dom}"],
                                        description="orig").id
        for key, dom in {"grp_a": "a", "grp_a2": "a", "grp_b": "b"}.items():
            i[key] = idn.create_group(name=key.replace("_", "-"), domain_id=i[f"dom_{dom}"],
                                      description="orig").id
        idn.assign_domain_role_to_user(i["dom_a"], i["mgr_a"], i["manager"])
        idn.assign_domain_role_to_user(i["dom_b"], i["mgr_b"], i["manager"])
        idn.assign_project_role_to_user(i["proj_b1"], i["carol_b"], i["member"])
        idn.assign_project_role_to_user(i["proj_a1"], i["bob_a"], i["reader"])
        idn.assign_project_role_to_user(i["proj_a2"], i["alice_a"], i["admin"])
        idn.assign_domain_role_to_group(i["dom_b"], i["grp_b"], i["reader"])
        idn.add_user_to_group(i["carol_b"], i["grp_b"])
        # Memberships across the domains (only the admin can make these).
        idn.add_user_to_group(i["erin_b"], i["grp_a"])
        idn.add_user_to_group(i["bob_a"], i["grp_b"])
        check(idn.validate_user_has_domain_role(i["dom_a"], i["mgr_a"], i["manager"]),
              "setup: manager grant on domain A missing")
        # Limen's own domain-owned resources in B: an OAuth client and a cluster.
        r = idn.post("/limen/oauth_clients", json={"oauth_client": {
            "name": "dm-b-app", "domain_id": i["dom_b"], "grant_types": [EXCHANGE_GRANT],
            "audiences": ["dm-cluster-b"], "confidential": False}}, raise_exc=True)
        i["client_b"] = r.json()["oauth_client"]["id"]
        r = idn.post("/limen/clusters", json={"cluster": {
            "name": "dm-b-prod", "domain_id": i["dom_b"], "api_server": "https://b.example",
            "audience": "dm-cluster-b", "project_id": i["proj_b1"]}}, raise_exc=True)
        i["cluster_b"] = r.json()["cluster"]["id"]
        self.names = {v: k for k, v in i.items()}
        self.a = self.connect("mgr-a", PW, DOM_A, domain=DOM_A, record=True)
        self.b = self.connect("mgr-b", PW, DOM_B, domain=DOM_B, record=True)

    # ---- admin-side checks --------------------------------------------------------
    def b_ids(self):
        i = self.ids
        return {i[k] for k in ("dom_b", "mgr_b", "carol_b", "erin_b", "proj_b1", "grp_b")}

    def no_user(self, name):
        found = [u.domain_id for u in self.adm.identity.users(name=name)]
        eq(found, [], f"domains holding a user named {name}")

    def no_project(self, name):
        found = [p.domain_id for p in self.adm.identity.projects(name=name)]
        eq(found, [], f"domains holding a project named {name}")

    def no_group(self, name):
        found = [g.domain_id for g in self.adm.identity.groups(name=name)]
        eq(found, [], f"domains holding a group named {name}")

    def has_grant(self, role, user=None, group=None, project=None, domain=None):
        q = {"role_id": self.ids[role]}
        q.update({"user_id": self.ids[user]} if user else {"group_id": self.ids[group]})
        q.update({"scope_project_id": self.ids[project]} if project
                 else {"scope_domain_id": self.ids[domain]})
        return bool(list(self.adm.identity.role_assignments(**q)))

    def grant_is(self, want, role, **kw):
        def verify(_):
            what = ", ".join(f"{k}={v}" for k, v in kw.items())
            eq(self.has_grant(role, **kw), want, f"admin sees grant {role} to {what}")
        return verify

    def member_is(self, want, user, group):
        def verify(_):
            eq(self.adm.identity.check_user_in_group(self.ids[user], self.ids[group]), want,
               f"admin sees {user} in {group}")
        return verify

    def attr_is(self, kind, key, attr, want):
        def verify(_):
            obj = getattr(self.adm.identity, "get_" + kind)(self.ids[key])
            eq(getattr(obj, attr), want, f"{kind} {key}.{attr} as seen by the admin")
        return verify

    def gone(self, kind, key):
        def verify(_):
            try:
                getattr(self.adm.identity, "get_" + kind)(self.ids[key])
            except sdk_exc.NotFoundException:
                return
            raise Failure(f"{kind} {key} still exists")
        return verify

    def only_dom_a(self, what, must_include=()):
        """then-check for a list: every item is in domain A, the expected ones are there."""
        def verify(items):
            dom_a = self.ids["dom_a"]
            stray = [(x.name, x.domain_id) for x in items if x.domain_id != dom_a]
            eq(stray, [], f"{what} listed from other domains")
            names = {x.name for x in items}
            missing = [n for n in must_include if n not in names]
            eq(missing, [], f"{what} missing from the list")
        return verify

    def empty(self, what):
        def verify(items):
            eq([getattr(x, "name", None) or x.id for x in items], [], what)
        return verify

    # ---- the cases ------------------------------------------------------------------
    def cases(self):
        i, a, b = self.ids, self.a.identity, self.b.identity
        adm = self.adm.identity

        def new_user_in(dom):
            def verify(u):
                eq(u.domain_id, i[dom], "created user's domain_id")
                eq(adm.get_user(u.id).domain_id, i[dom], "domain_id of the user (admin)")
            return verify

        def token_ok(tok):
            eq((tok.domain or {}).get("id"), i["dom_a"], "token domain")
            eq(tok.project, None, "token project")
            eq(sorted(r["name"] for r in tok.roles), ["manager", "member", "reader"],
               "token roles")

        def roles_listed(roles):
            names = {r.name for r in roles}
            check({"admin", "manager", "member", "reader"} <= names, f"roles listed: {names}")

        def own_assignments_only(ras):
            dom_a = i["dom_a"]
            projects_a = {p.id for p in adm.projects(domain_id=dom_a)}
            for ra in ras:
                scope = ra.scope or {}
                in_a = (scope.get("domain", {}).get("id") == dom_a
                        or scope.get("project", {}).get("id") in projects_a)
                check(in_a, f"assignment outside domain A listed: {ra.to_dict(computed=False)}")
                leaked = self.b_ids() & {(ra.user or {}).get("id"), (ra.group or {}).get("id")}
                check(not leaked, f"assignment of domain B's {leaked} listed")
            mine = [ra for ra in ras if (ra.user or {}).get("id") == i["mgr_a"]
                    and ra.role["id"] == i["manager"]]
            check(mine, "mgr-a's own manager assignment on domain A is not listed")

        def no_escalation_implication(_):
            r = adm.get(f"/roles/{i['member']}/implies/{i['admin']}")
            eq(r.status_code, 404, "GET member implies admin as the admin")

        def no_domain(name):
            def verify(_):
                eq([d.id for d in adm.domains(name=name)], [], f"domains named {name}")
            return verify

        def project_created(parent):
            def verify(p):
                eq((p.domain_id, p.parent_id), (i["dom_a"], i[parent]),
                   "created project's domain_id, parent_id")
                eq(adm.get_project(p.id).domain_id, i["dom_a"], "project domain (admin)")
            return verify

        def tags_are(key, want):
            def verify(_):
                eq(sorted(adm.get_project(i[key]).tags), want, f"tags of {key} (admin)")
            return verify

        def b_unchanged_user(_):
            u = adm.get_user(i["carol_b"])
            eq((u.domain_id, u.description), (i["dom_b"], "orig"), "carol-b domain/description")

        def users_of(names):
            return lambda users: eq(sorted(u.name for u in users), names, "members listed")

        no_names_of_a = lambda items: check(  # noqa: E731
            not {x.name for x in items} & {"mgr-a", "alice-a", "bob-a", "proj-a1", "grp-a",
                                           DOM_A, "dm-new-user"},
            f"domain B's manager sees domain A's objects: {sorted(x.name for x in items)}")

        p_b1 = sdk_project.Project.existing(id=i["proj_b1"])

        return [
            # -- scope, domains, roles --------------------------------------------------
            Case("token is domain-scoped to A with manager, member, reader",
                 lambda: a.validate_token(self.a.auth_token), then=token_ok),
            Case("domain list shows only own domain", lambda: a.domains(),
                 then=lambda ds: eq([d.id for d in ds], [i["dom_a"]], "domains listed")),
            Case("get own domain", lambda: a.get_domain(i["dom_a"]),
                 then=lambda d: eq(d.name, DOM_A, "domain name")),
            Case("cannot get other domain", lambda: a.get_domain(i["dom_b"]), HIDDEN),
            Case("cannot create a domain", lambda: a.create_domain(name="dm-evil-domain"),
                 DENIED, then=no_domain("dm-evil-domain")),
            Case("cannot update own domain",
                 lambda: a.update_domain(i["dom_a"], description="pwned"), DENIED,
                 then=self.attr_is("domain", "dom_a", "description", "domain manager test a")),
            Case("cannot delete own domain", lambda: a.delete_domain(i["dom_a"]), DENIED,
                 then=self.attr_is("domain", "dom_a", "name", DOM_A)),
            Case("cannot disable other domain",
                 lambda: a.update_domain(i["dom_b"], is_enabled=False), HIDDEN,
                 then=self.attr_is("domain", "dom_b", "is_enabled", True)),
            Case("can list roles", lambda: a.roles(), then=roles_listed),
            Case("can get allow-listed role member", lambda: a.get_role(i["member"]),
                 then=lambda r: eq(r.name, "member", "role name")),
            Case("cannot get role admin", lambda: a.get_role(i["admin"]), DENIED),
            Case("cannot create roles", lambda: a.create_role(name="dm-evil-role"), DENIED,
                 then=lambda _: eq(list(adm.roles(name="dm-evil-role")), [], "roles named")),
            Case("cannot update roles",
                 lambda: a.update_role(i["member"], name="dm-renamed"), DENIED,
                 then=self.attr_is("role", "member", "name", "member")),
            Case("cannot delete roles", lambda: a.delete_role(i["reader"]), DENIED,
                 then=self.attr_is("role", "reader", "name", "reader")),
            Case("cannot make member imply admin",
                 lambda: self.a.identity.put(f"/roles/{i['member']}/implies/{i['admin']}"),
                 DENIED, then=no_escalation_implication),

            # -- users -------------------------------------------------------------------
            Case("user list shows only own domain", lambda: a.users(),
                 then=self.only_dom_a("users", ["mgr-a", "alice-a", "bob-a", "dave-a"])),
            Case("user list for other domain is empty", lambda: a.users(domain_id=i["dom_b"]),
                 DENIED, then=self.empty("users of domain B listed"), or_empty=True),
            Case("can get own domain's user", lambda: a.get_user(i["alice_a"]),
                 then=lambda u: eq(u.name, "alice-a", "user name")),
            Case("cannot get other domain's user", lambda: a.get_user(i["carol_b"]), HIDDEN),
            Case("find() user by name in own domain", lambda: a.find_user("alice-a"),
                 then=lambda u: eq(u and u.id, i["alice_a"], "found user")),
            Case("find() user by name in other domain finds nothing",
                 lambda: a.find_user("carol-b"), then=lambda u: eq(u, None, "found user")),
            Case("find() user by id in other domain finds nothing",
                 lambda: a.find_user(i["carol_b"]), then=lambda u: eq(u, None, "found user")),
            Case("cannot create user without domain_id",
                 lambda: a.create_user(name="dm-nodomain-user", password=PW), DENIED,
                 then=lambda _: self.no_user("dm-nodomain-user")),
            Case("cannot create user in other domain",
                 lambda: a.create_user(name="dm-user-in-b", domain_id=i["dom_b"], password=PW),
                 DENIED, then=lambda _: self.no_user("dm-user-in-b")),
            Case("can create user in own domain",
                 lambda: a.create_user(name="dm-new-user", domain_id=i["dom_a"], password=PW),
                 then=new_user_in("dom_a")),
            Case("can update own domain's user",
                 lambda: a.update_user(i["alice_a"], description="by manager"),
                 then=self.attr_is("user", "alice_a", "description", "by manager")),
            Case("cannot change a user's domain_id",
                 lambda: a.update_user(i["alice_a"], domain_id=i["dom_b"]), INVALID,
                 then=self.attr_is("user", "alice_a", "domain_id", i["dom_a"])),
            Case("cannot update other domain's user",
                 lambda: a.update_user(i["carol_b"], description="pwned"), HIDDEN,
                 then=b_unchanged_user),
            Case("cannot pull other domain's user into own domain",
                 lambda: a.update_user(i["carol_b"], domain_id=i["dom_a"]), HIDDEN,
                 then=b_unchanged_user),
            Case("cannot set other domain user's password",
                 lambda: a.update_user(i["carol_b"], password="dm-Stolen-1"), HIDDEN,
                 then=lambda _: check(self.can_login("carol-b", DOM_B, PW) and
                                      not self.can_login("carol-b", DOM_B, "dm-Stolen-1"),
                                      "carol-b's password changed")),
            Case("can disable own domain's user",
                 lambda: a.update_user(i["dave_a"], is_enabled=False),
                 then=self.attr_is("user", "dave_a", "is_enabled", False)),
            Case("can delete own domain's user", lambda: a.delete_user(i["dave_a"]),
                 then=self.gone("user", "dave_a")),
            Case("cannot delete other domain's user", lambda: a.delete_user(i["erin_b"]),
                 HIDDEN, then=self.attr_is("user", "erin_b", "name", "erin-b")),

            # -- projects ----------------------------------------------------------------
            Case("project list shows only own domain", lambda: a.projects(),
                 then=self.only_dom_a("projects", ["proj-a1", "proj-a2", "proj-a3"])),
            Case("project list for other domain is empty",
                 lambda: a.projects(domain_id=i["dom_b"]), DENIED,
                 then=self.empty("projects of domain B listed"), or_empty=True),
            Case("can get own domain's project", lambda: a.get_project(i["proj_a1"]),
                 then=lambda p: eq(p.name, "proj-a1", "project name")),
            Case("cannot get other domain's project",
                 lambda: a.get_project(i["proj_b1"]), HIDDEN),
            Case("find() project by name in own domain", lambda: a.find_project("proj-a1"),
                 then=lambda p: eq(p and p.id, i["proj_a1"], "found project")),
            Case("find() project by name in other domain finds nothing",
                 lambda: a.find_project("proj-b1"), then=lambda p: eq(p, None, "found")),
            Case("cannot create project without domain_id",
                 lambda: a.create_project(name="dm-nodomain-proj"), DENIED,
                 then=lambda _: self.no_project("dm-nodomain-proj")),
            Case("cannot create project with only a parent_id (no domain_id)",
                 lambda: a.create_project(name="dm-parent-only", parent_id=i["proj_a1"]),
                 DENIED, then=lambda _: self.no_project("dm-parent-only")),
            Case("cannot create project in other domain",
                 lambda: a.create_project(name="dm-proj-in-b", domain_id=i["dom_b"]), DENIED,
                 then=lambda _: self.no_project("dm-proj-in-b")),
            Case("can create project in own domain",
                 lambda: a.create_project(name="dm-new-proj", domain_id=i["dom_a"]),
                 then=project_created("dom_a")),
            Case("can create child project in own domain",
                 lambda: a.create_project(name="dm-child", domain_id=i["dom_a"],
                                          parent_id=i["proj_a1"]),
                 then=project_created("proj_a1")),
            Case("can update own project (description, tags)",
                 lambda: a.update_project(i["proj_a2"], description="by manager",
                                          tags=["t1"]),
                 then=lambda _: eq((adm.get_project(i["proj_a2"]).description,
                                    adm.get_project(i["proj_a2"]).tags),
                                   ("by manager", ["t1"]), "proj-a2 description, tags")),
            Case("can add a tag to own project",
                 lambda: a.get_project(i["proj_a2"]).add_tag(a, "t2"),
                 then=tags_are("proj_a2", ["t1", "t2"])),
            Case("cannot tag other domain's project", lambda: p_b1.add_tag(a, "pwned"),
                 HIDDEN, then=tags_are("proj_b1", [])),
            Case("cannot change a project's domain_id",
                 lambda: a.update_project(i["proj_a2"], domain_id=i["dom_b"]), INVALID,
                 then=self.attr_is("project", "proj_a2", "domain_id", i["dom_a"])),
            Case("cannot update other domain's project",
                 lambda: a.update_project(i["proj_b1"], description="pwned"), HIDDEN,
                 then=self.attr_is("project", "proj_b1", "description", "orig")),
            Case("cannot pull other domain's project into own domain",
                 lambda: a.update_project(i["proj_b1"], domain_id=i["dom_a"]), HIDDEN,
                 then=self.attr_is("project", "proj_b1", "domain_id", i["dom_b"])),
            Case("can delete own project", lambda: a.delete_project(i["proj_a3"]),
                 then=self.gone("project", "proj_a3")),
            Case("cannot delete other domain's project",
                 lambda: a.delete_project(i["proj_b1"]), HIDDEN,
                 then=self.attr_is("project", "proj_b1", "name", "proj-b1")),

            # -- groups ------------------------------------------------------------------
            Case("group list shows only own domain", lambda: a.groups(),
                 then=self.only_dom_a("groups", ["grp-a", "grp-a2"])),
            Case("group list for other domain is empty",
                 lambda: a.groups(domain_id=i["dom_b"]), DENIED,
                 then=self.empty("groups of domain B listed"), or_empty=True),
            Case("cannot get other domain's group", lambda: a.get_group(i["grp_b"]), HIDDEN),
            Case("find() group by name in own domain", lambda: a.find_group("grp-a"),
                 then=lambda g: eq(g and g.id, i["grp_a"], "found group")),
            Case("find() group by name in other domain finds nothing",
                 lambda: a.find_group("grp-b"), then=lambda g: eq(g, None, "found group")),
            Case("cannot create group without domain_id",
                 lambda: a.create_group(name="dm-nodomain-grp"), DENIED,
                 then=lambda _: self.no_group("dm-nodomain-grp")),
            Case("cannot create group in other domain",
                 lambda: a.create_group(name="dm-grp-in-b", domain_id=i["dom_b"]), DENIED,
                 then=lambda _: self.no_group("dm-grp-in-b")),
            Case("can create group in own domain",
                 lambda: a.create_group(name="dm-new-grp", domain_id=i["dom_a"]),
                 then=lambda g: eq(adm.get_group(g.id).domain_id, i["dom_a"], "domain")),
            Case("can update own domain's group",
                 lambda: a.update_group(i["grp_a"], description="by manager"),
                 then=self.attr_is("group", "grp_a", "description", "by manager")),
            Case("cannot change a group's domain_id",
                 lambda: a.update_group(i["grp_a"], domain_id=i["dom_b"]), INVALID,
                 then=self.attr_is("group", "grp_a", "domain_id", i["dom_a"])),
            Case("cannot update other domain's group",
                 lambda: a.update_group(i["grp_b"], description="pwned"), HIDDEN,
                 then=self.attr_is("group", "grp_b", "description", "orig")),
            Case("can delete own domain's group", lambda: a.delete_group(i["grp_a2"]),
                 then=self.gone("group", "grp_a2")),
            Case("cannot delete other domain's group", lambda: a.delete_group(i["grp_b"]),
                 HIDDEN, then=self.attr_is("group", "grp_b", "name", "grp-b")),

            # -- group membership --------------------------------------------------------
            Case("can add own user to own group",
                 lambda: a.add_user_to_group(i["alice_a"], i["grp_a"]),
                 then=self.member_is(True, "alice_a", "grp_a")),
            Case("own group's members list hides other domain's members",
                 lambda: a.group_users(i["grp_a"]), then=users_of(["alice-a"])),
            Case("user's groups list hides other domain's groups",
                 lambda: a.user_groups(i["bob_a"]),
                 then=lambda gs: eq([g.name for g in gs], [], "bob-a's groups listed")),
            Case("can check membership in own group",
                 lambda: a.check_user_in_group(i["alice_a"], i["grp_a"]),
                 then=lambda r: eq(r, True, "check_user_in_group")),
            Case("cannot add other domain's user to own group",
                 lambda: a.add_user_to_group(i["carol_b"], i["grp_a"]), HIDDEN,
                 then=self.member_is(False, "carol_b", "grp_a")),
            Case("cannot add own user to other domain's group",
                 lambda: a.add_user_to_group(i["alice_a"], i["grp_b"]), HIDDEN,
                 then=self.member_is(False, "alice_a", "grp_b")),
            Case("cannot list other domain's group members",
                 lambda: a.group_users(i["grp_b"]), HIDDEN),
            Case("cannot remove other domain's user from own group",
                 lambda: a.remove_user_from_group(i["erin_b"], i["grp_a"]), HIDDEN,
                 then=self.member_is(True, "erin_b", "grp_a")),
            Case("cannot remove own user from other domain's group",
                 lambda: a.remove_user_from_group(i["bob_a"], i["grp_b"]), HIDDEN,
                 then=self.member_is(True, "bob_a", "grp_b")),
            Case("cannot remove a member of other domain's group",
                 lambda: a.remove_user_from_group(i["carol_b"], i["grp_b"]), HIDDEN,
                 then=self.member_is(True, "carol_b", "grp_b")),
            Case("can remove own user from own group",
                 lambda: a.remove_user_from_group(i["alice_a"], i["grp_a"]),
                 then=self.member_is(False, "alice_a", "grp_a")),

            # -- grants ------------------------------------------------------------------
            Case("can grant member to user on own project",
                 lambda: a.assign_project_role_to_user(i["proj_a1"], i["alice_a"],
                                                       i["member"]),
                 then=self.grant_is(True, "member", user="alice_a", project="proj_a1")),
            Case("can grant manager to user on own project",
                 lambda: a.assign_project_role_to_user(i["proj_a1"], i["alice_a"],
                                                       i["manager"]),
                 then=self.grant_is(True, "manager", user="alice_a", project="proj_a1")),
            Case("can grant reader to user on own domain",
                 lambda: a.assign_domain_role_to_user(i["dom_a"], i["alice_a"], i["reader"]),
                 then=self.grant_is(True, "reader", user="alice_a", domain="dom_a")),
            Case("can grant member to group on own project",
                 lambda: a.assign_project_role_to_group(i["proj_a1"], i["grp_a"],
                                                        i["member"]),
                 then=self.grant_is(True, "member", group="grp_a", project="proj_a1")),
            Case("can grant reader to group on own domain",
                 lambda: a.assign_domain_role_to_group(i["dom_a"], i["grp_a"], i["reader"]),
                 then=self.grant_is(True, "reader", group="grp_a", domain="dom_a")),
            Case("can grant inherited member on own domain",
                 lambda: a.assign_domain_role_to_user(i["dom_a"], i["bob_a"], i["member"],
                                                      inherited=True),
                 then=lambda _: eq(
                     len(list(adm.role_assignments(user_id=i["bob_a"], role_id=i["member"],
                                                   scope_domain_id=i["dom_a"],
                                                   inherited_to="projects"))), 1,
                     "bob-a's inherited member assignments on domain A")),
            Case("cannot grant inherited admin on own domain",
                 lambda: a.assign_domain_role_to_group(i["dom_a"], i["grp_a"], i["admin"],
                                                       inherited=True),
                 DENIED, then=lambda _: eq(
                     list(adm.role_assignments(group_id=i["grp_a"], role_id=i["admin"])), [],
                     "grp-a's admin assignments")),
            Case("can check a grant in own domain",
                 lambda: a.validate_user_has_project_role(i["proj_a1"], i["alice_a"],
                                                          i["member"]),
                 then=lambda r: eq(r, True, "validate_user_has_project_role")),
            Case("can list a user's grants on own project",
                 lambda: a.role_assignments_filter(project=i["proj_a1"], user=i["alice_a"]),
                 then=lambda rs: eq(sorted(r.name for r in rs), ["manager", "member"],
                                    "alice-a's roles on proj-a1")),
            Case("cannot grant admin to user on own project",
                 lambda: a.assign_project_role_to_user(i["proj_a1"], i["alice_a"], i["admin"]),
                 DENIED, then=self.grant_is(False, "admin", user="alice_a", project="proj_a1")),
            Case("cannot grant admin to user on own domain",
                 lambda: a.assign_domain_role_to_user(i["dom_a"], i["alice_a"], i["admin"]),
                 DENIED, then=self.grant_is(False, "admin", user="alice_a", domain="dom_a")),
            Case("cannot grant admin to itself",
                 lambda: a.assign_domain_role_to_user(i["dom_a"], i["mgr_a"], i["admin"]),
                 DENIED, then=self.grant_is(False, "admin", user="mgr_a", domain="dom_a")),
            Case("cannot grant admin to a group",
                 lambda: a.assign_project_role_to_group(i["proj_a1"], i["grp_a"], i["admin"]),
                 DENIED, then=self.grant_is(False, "admin", group="grp_a", project="proj_a1")),
            Case("cannot grant a custom role that implies manager",
                 lambda: a.assign_project_role_to_user(i["proj_a1"], i["alice_a"],
                                                       i["escalator"]),
                 DENIED,
                 then=self.grant_is(False, "escalator", user="alice_a", project="proj_a1")),
            Case("cannot grant a role outside manager/member/reader",
                 lambda: a.assign_domain_role_to_group(i["dom_a"], i["grp_a"], i["auditor"]),
                 DENIED, then=self.grant_is(False, "auditor", group="grp_a", domain="dom_a")),
            Case("cannot grant on a system scope",
                 lambda: a.assign_system_role_to_user(i["alice_a"], i["reader"], "all"),
                 DENIED, then=lambda _: eq(
                     list(adm.role_assignments(user_id=i["alice_a"], scope_system="all")), [],
                     "alice-a's system assignments")),
            Case("cannot grant to other domain's user on own project",
                 lambda: a.assign_project_role_to_user(i["proj_a1"], i["carol_b"],
                                                       i["member"]),
                 HIDDEN, then=self.grant_is(False, "member", user="carol_b", project="proj_a1")),
            Case("cannot grant own user on other domain's project",
                 lambda: a.assign_project_role_to_user(i["proj_b1"], i["alice_a"],
                                                       i["member"]),
                 HIDDEN, then=self.grant_is(False, "member", user="alice_a", project="proj_b1")),
            Case("cannot grant own user on other domain",
                 lambda: a.assign_domain_role_to_user(i["dom_b"], i["alice_a"], i["member"]),
                 HIDDEN, then=self.grant_is(False, "member", user="alice_a", domain="dom_b")),
            Case("cannot grant within other domain",
                 lambda: a.assign_domain_role_to_group(i["dom_b"], i["grp_b"], i["member"]),
                 HIDDEN, then=self.grant_is(False, "member", group="grp_b", domain="dom_b")),
            Case("cannot check a grant in other domain",
                 lambda: a.validate_user_has_project_role(i["proj_b1"], i["carol_b"],
                                                          i["member"]), HIDDEN),
            Case("cannot list grants in other domain",
                 lambda: a.role_assignments_filter(project=i["proj_b1"], user=i["carol_b"]),
                 HIDDEN),
            Case("cannot list grants on other domain",
                 lambda: a.role_assignments_filter(domain=i["dom_b"], group=i["grp_b"]),
                 HIDDEN),
            Case("can revoke a grant in own domain",
                 lambda: a.unassign_project_role_from_user(i["proj_a1"], i["bob_a"],
                                                           i["reader"]),
                 then=self.grant_is(False, "reader", user="bob_a", project="proj_a1")),
            Case("cannot revoke in other domain",
                 lambda: a.unassign_project_role_from_user(i["proj_b1"], i["carol_b"],
                                                           i["member"]),
                 HIDDEN, then=self.grant_is(True, "member", user="carol_b", project="proj_b1")),
            Case("cannot revoke an admin grant in own domain",
                 lambda: a.unassign_project_role_from_user(i["proj_a2"], i["alice_a"],
                                                           i["admin"]),
                 DENIED, then=self.grant_is(True, "admin", user="alice_a", project="proj_a2")),

            # -- role assignments --------------------------------------------------------
            Case("role assignment list shows only own domain",
                 lambda: a.role_assignments(include_names=True), then=own_assignments_only),
            Case("role assignments scoped to other domain are empty",
                 lambda: a.role_assignments(scope_domain_id=i["dom_b"]), DENIED,
                 then=self.empty("assignments on domain B listed"), or_empty=True),
            Case("role assignments of other domain's user are empty",
                 lambda: a.role_assignments(user_id=i["carol_b"]), DENIED,
                 then=self.empty("assignments of carol-b listed"), or_empty=True),

            # -- the other manager ---------------------------------------------------------
            Case("B's manager sees none of A's users", lambda: b.users(), then=no_names_of_a),
            Case("B's manager sees none of A's projects", lambda: b.projects(),
                 then=no_names_of_a),
            Case("B's manager cannot delete the user A's manager created",
                 lambda: b.delete_user(a.find_user("dm-new-user").id), HIDDEN,
                 then=lambda _: check(adm.find_user("dm-new-user", domain_id=i["dom_a"]),
                                      "dm-new-user is gone")),

            # -- policy targets injected through the body (OSSA-2026-015 style) ---------------
            Case("inject: create user in B with extra attributes naming A",
                 lambda: self.a.identity.post("/users", json={"user": {
                     "name": "dm-inject-user", "domain_id": i["dom_b"], "password": PW,
                     "domain": {"id": i["dom_a"]}, "user.domain_id": i["dom_a"],
                     "token": {"domain": {"id": i["dom_b"]}}}}),
                 DENIED, then=lambda _: self.no_user("dm-inject-user")),
            Case("inject: create user in B with top-level fields naming A",
                 lambda: self.a.identity.post("/users", json={
                     "user": {"name": "dm-inject-user2", "domain_id": i["dom_b"]},
                     "domain_id": i["dom_a"], "target": {"user": {"domain_id": i["dom_a"]}}}),
                 REFUSED, then=lambda _: self.no_user("dm-inject-user2")),
            Case("inject: create project in A under B's project",
                 lambda: a.create_project(name="dm-inject-proj", domain_id=i["dom_a"],
                                          parent_id=i["proj_b1"]),
                 REFUSED, then=lambda _: self.no_project("dm-inject-proj")),
            Case("inject: create project in B under A's project",
                 lambda: a.create_project(name="dm-inject-proj2", domain_id=i["dom_b"],
                                          parent_id=i["proj_a1"]),
                 DENIED, then=lambda _: self.no_project("dm-inject-proj2")),
            Case("inject: create a domain as a project with is_domain",
                 lambda: a.create_project(name="dm-inject-domain", domain_id=i["dom_a"],
                                          is_domain=True),
                 REFUSED, then=no_domain("dm-inject-domain")),
            Case("inject: PATCH B's project with domain_id of A and extra fields",
                 lambda: self.a.identity.patch(f"/projects/{i['proj_b1']}", json={"project": {
                     "domain_id": i["dom_a"], "description": "pwned",
                     "project": {"domain_id": i["dom_a"]}}}),
                 HIDDEN, then=lambda _: eq(
                     (adm.get_project(i["proj_b1"]).domain_id,
                      adm.get_project(i["proj_b1"]).description),
                     (i["dom_b"], "orig"), "proj-b1 domain_id, description")),
            Case("inject: PATCH B's user with a target naming A",
                 lambda: self.a.identity.patch(f"/users/{i['carol_b']}", json={"user": {
                     "description": "pwned", "target": {"user": {"domain_id": i["dom_a"]}}}}),
                 HIDDEN, then=b_unchanged_user),
            Case("inject: add own user to B's group with a body naming A",
                 lambda: self.a.identity.put(f"/groups/{i['grp_b']}/users/{i['alice_a']}",
                                             json={"group": {"domain_id": i["dom_a"]}}),
                 HIDDEN, then=self.member_is(False, "alice_a", "grp_b")),
            Case("inject: grant admin with a body naming role member",
                 lambda: self.a.identity.put(
                     f"/projects/{i['proj_a1']}/users/{i['alice_a']}/roles/{i['admin']}",
                     json={"role": {"id": i["member"], "name": "member"}}),
                 DENIED, then=self.grant_is(False, "admin", user="alice_a", project="proj_a1")),
            Case("inject: grant admin with a query naming role member",
                 lambda: self.a.identity.put(
                     f"/domains/{i['dom_a']}/users/{i['alice_a']}/roles/{i['admin']}"
                     f"?role.name=member&name=member"),
                 DENIED, then=self.grant_is(False, "admin", user="alice_a", domain="dom_a")),
            # Limen's domain-owned resources: OAuth clients and Kubernetes clusters.
            Case("can register an OAuth client in own domain",
                 lambda: a.post("/limen/oauth_clients", json={"oauth_client": {
                     "name": "dm-a-app", "grant_types": ["client_credentials"]}}),
                 then=lambda r: eq(r.json()["oauth_client"]["domain_id"], i["dom_a"],
                                   "the new client's domain")),
            Case("cannot read B's OAuth client",
                 lambda: a.get(f"/limen/oauth_clients/{i['client_b']}"), HIDDEN),
            Case("cannot list B's cluster as an audience",
                 lambda: a.post("/limen/oauth_clients", json={"oauth_client": {
                     "name": "dm-a-evil", "grant_types": [EXCHANGE_GRANT],
                     "audiences": ["dm-cluster-b"], "confidential": False}}), REFUSED),
            Case("cannot name B's client id as an audience",
                 lambda: a.post("/limen/oauth_clients", json={"oauth_client": {
                     "name": "dm-a-evil2", "grant_types": [EXCHANGE_GRANT],
                     "audiences": [i["client_b"]], "confidential": False}}), REFUSED),
            Case("cannot read B's cluster",
                 lambda: a.get(f"/limen/clusters/{i['cluster_b']}"), HIDDEN),
            Case("cannot make B's cluster trust A",
                 lambda: a.patch(f"/limen/clusters/{i['cluster_b']}", json={"cluster": {
                     "trusted_domains": [i["dom_a"]]}}), HIDDEN,
                 then=lambda _: eq(adm.get(f"/limen/clusters/{i['cluster_b']}").json()
                                   ["cluster"]["trusted_domains"], [], "B's trusted domains")),
            Case("cannot rotate B's cluster's webhook token",
                 lambda: a.post(f"/limen/clusters/{i['cluster_b']}/webhook_token"), HIDDEN),
            Case("cannot add a rule to B's cluster",
                 lambda: a.post(f"/limen/clusters/{i['cluster_b']}/rules", json={"rule": {
                     "subjects": [{"group": "x"}], "verbs": ["*"], "namespaces": ["*"],
                     "api_groups": ["*"], "resources": ["*"]}}), HIDDEN),
            Case("cannot register a cluster owned by B's project",
                 lambda: a.post("/limen/clusters", json={"cluster": {
                     "name": "dm-a-evil", "api_server": "https://a-evil.example",
                     "project_id": i["proj_b1"]}}), REFUSED),
        ]

    # ---- running ----------------------------------------------------------------------
    def run(self, case):
        """Run one case; return None if it passed, else the reason."""
        self.responses.clear()
        result, status = None, None
        try:
            result = case.do()
            if inspect.isgenerator(result):
                result = list(result)
        except sdk_exc.HttpException as e:
            status = e.status_code
        if status is None:
            if not self.responses:
                return "no HTTP request was made"
            status = self.responses[-1].status_code
        last = self.responses[-1].request if self.responses else None
        request = f"{last.method} {last.url.split('/v3', 1)[-1]}" if last else "?"
        if status >= 400:
            if status not in case.refused:
                want = "success" if not case.refused else "/".join(map(str, case.refused))
                return f"{request} -> HTTP {status}, expected {want}"
            result = None
        elif case.refused and not case.or_empty:
            return f"{request} -> HTTP {status} (allowed), expected " + \
                   "/".join(map(str, case.refused))
        try:
            if case.then:
                case.then(result)
        except Failure as e:
            return f"{request} -> HTTP {status}; {e}"
        return None


def main():
    total = time.monotonic()
    with LimenServer() as srv:
        t = DomainManagerTest(srv)
        try:
            t.setup()
        except Exception as e:  # noqa: BLE001
            print(f"FAIL setup: {type(e).__name__}: {e}", flush=True)
            srv.print_log_tail()
            return 1
        cases = t.cases()
        failed = 0
        for case in cases:
            try:
                reason = t.run(case)
            except Exception as e:  # noqa: BLE001 - any client error fails the case
                reason = f"{type(e).__name__}: {e}"
            if reason:
                failed += 1
                print(f"FAIL {case.name}: {reason}", flush=True)
            else:
                print(f"ok   {case.name}", flush=True)
        if failed:
            srv.print_log_tail()
    print(f"took {time.monotonic() - total:.0f}s\n"
          f"domain-manager: {len(cases) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

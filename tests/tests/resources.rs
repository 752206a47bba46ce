//! Domains, projects (hierarchy, tags), users, groups, roles, implied roles, grants and
//! role assignments, checked field by field against Keystone's behaviour.

use limen_tests::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn ids(v: &Value, key: &str) -> Vec<String> {
    let mut out: Vec<String> = v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn discovery_documents() {
    let s = TestServer::start().await;
    let resp = s.http.get(s.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::MULTIPLE_CHOICES);
    assert_eq!(
        resp.headers()["location"],
        format!("{}/v3/", s.base).as_str()
    );
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["versions"]["values"][0]["id"], json!("v3.14"));
    let v: Value = s
        .http
        .get(s.url("/v3"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["version"]["status"], json!("stable"));
    assert_eq!(
        v["version"]["media-types"][0]["type"],
        json!("application/vnd.openstack.identity-v3+json")
    );
    assert_eq!(
        v["version"]["links"][0]["href"],
        json!(format!("{}/v3/", s.base))
    );
}

#[tokio::test]
async fn domain_lifecycle() {
    let s = TestServer::start().await;
    let t = &s.admin_token;
    let d = s
        .create(
            "domains",
            "domain",
            json!({"name": "acme", "tags": ["eu"], "custom": 1}),
        )
        .await;
    assert_eq!(d["description"], json!(""));
    assert_eq!(d["enabled"], json!(true));
    assert_eq!(d["tags"], json!(["eu"]));
    assert_eq!(d["custom"], json!(1));
    assert_eq!(
        d["links"]["self"],
        json!(format!("{}/v3/domains/{}", s.base, id(&d)))
    );
    let (_, list) = s.get("/v3/domains?name=acme", t).await;
    assert_eq!(
        list["domains"],
        json!([d]),
        "create and list render identically"
    );
    let (st, _) = s
        .post("/v3/domains", t, json!({"domain": {"name": "acme"}}))
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (st, _) = s.delete(&format!("/v3/domains/{}", id(&d)), t).await;
    assert_eq!(
        st,
        StatusCode::FORBIDDEN,
        "an enabled domain cannot be deleted"
    );
    // Users, groups and projects go with the domain.
    let u = s
        .create("users", "user", json!({"name": "u", "domain_id": id(&d)}))
        .await;
    let g = s
        .create("groups", "group", json!({"name": "g", "domain_id": id(&d)}))
        .await;
    let p = s
        .create(
            "projects",
            "project",
            json!({"name": "p", "domain_id": id(&d)}),
        )
        .await;
    let (st, v) = s
        .patch(
            &format!("/v3/domains/{}", id(&d)),
            t,
            json!({"domain": {"enabled": false, "description": "gone soon"}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["domain"]["description"], json!("gone soon"));
    let (st, _) = s.delete(&format!("/v3/domains/{}", id(&d)), t).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    for path in [
        format!("/v3/users/{}", id(&u)),
        format!("/v3/groups/{}", id(&g)),
        format!("/v3/projects/{}", id(&p)),
        format!("/v3/domains/{}", id(&d)),
    ] {
        let (st, _) = s.get(&path, t).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{path}");
    }
    // A domain created through the projects API.
    let (st, v) = s
        .post(
            "/v3/projects",
            t,
            json!({"project": {"name": "as-project", "domain_id": null, "is_domain": true}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    assert_eq!(v["project"]["is_domain"], json!(true));
    let (_, doms) = s.get("/v3/domains?name=as-project", t).await;
    assert_eq!(doms["domains"].as_array().unwrap().len(), 1);
    let (_, plain) = s.get("/v3/projects", t).await;
    assert!(plain["projects"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["is_domain"] == json!(false)));
}

#[tokio::test]
async fn project_hierarchy_and_rules() {
    let s = TestServer::start().await;
    let t = &s.admin_token;
    let top = s
        .create(
            "projects",
            "project",
            json!({"name": "top", "domain_id": "default", "tags": ["a", "b"]}),
        )
        .await;
    assert_eq!(top["parent_id"], json!("default"));
    let child = s
        .create(
            "projects",
            "project",
            json!({"name": "child", "parent_id": id(&top)}),
        )
        .await;
    assert_eq!(child["domain_id"], json!("default"));
    let grand = s
        .create(
            "projects",
            "project",
            json!({"name": "grand", "parent_id": id(&child)}),
        )
        .await;
    let (_, v) = s
        .get(&format!("/v3/projects/{}?parents_as_ids", id(&grand)), t)
        .await;
    assert_eq!(
        v["project"]["parents"],
        json!({id(&child): {id(&top): {"default": null}}})
    );
    let (_, v) = s
        .get(&format!("/v3/projects/{}?subtree_as_ids", id(&top)), t)
        .await;
    assert_eq!(
        v["project"]["subtree"],
        json!({id(&child): {id(&grand): null}})
    );
    let (st, _) = s
        .get(
            &format!("/v3/projects/{}?parents_as_ids&parents_as_list", id(&grand)),
            t,
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (_, v) = s
        .get(&format!("/v3/projects?parent_id={}", id(&top)), t)
        .await;
    assert_eq!(ids(&v, "projects"), vec![id(&child)]);
    // show == list entry
    let (_, shown) = s.get(&format!("/v3/projects/{}", id(&top)), t).await;
    let (_, listed) = s.get("/v3/projects?name=top", t).await;
    assert_eq!(listed["projects"][0], shown["project"]);
    // tags filters
    let (_, v) = s.get("/v3/projects?tags=a,b", t).await;
    assert_eq!(ids(&v, "projects"), vec![id(&top)]);
    let (_, v) = s.get("/v3/projects?tags-any=b,zz", t).await;
    assert_eq!(ids(&v, "projects"), vec![id(&top)]);
    let (_, v) = s.get("/v3/projects?not-tags=a&domain_id=default", t).await;
    assert!(!ids(&v, "projects").contains(&id(&top)));
    // rules
    let (st, v) = s
        .patch(
            &format!("/v3/projects/{}", id(&child)),
            t,
            json!({"project": {"domain_id": "other"}}),
        )
        .await;
    assert_eq!(
        (st, v["error"]["message"].as_str().unwrap()),
        (StatusCode::BAD_REQUEST, "Cannot change Domain ID")
    );
    let (st, _) = s
        .patch(
            &format!("/v3/projects/{}", id(&child)),
            t,
            json!({"project": {"parent_id": id(&grand)}}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = s
        .patch(
            &format!("/v3/projects/{}", id(&child)),
            t,
            json!({"project": {"enabled": false}}),
        )
        .await;
    assert_eq!(
        st,
        StatusCode::FORBIDDEN,
        "cannot disable with an enabled subtree"
    );
    let (st, _) = s.delete(&format!("/v3/projects/{}", id(&top)), t).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "not a leaf");
    let (st, _) = s
        .post(
            "/v3/projects",
            t,
            json!({"project": {"name": "top", "domain_id": "default"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (st, _) = s
        .post(
            "/v3/projects",
            t,
            json!({"project": {"name": "x", "parent_id": "nope"}}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    // depth limit: top(1) child(2) grand(3) + 2 more is the maximum of 5
    let g4 = s
        .create(
            "projects",
            "project",
            json!({"name": "g4", "parent_id": id(&grand)}),
        )
        .await;
    let g5 = s
        .create(
            "projects",
            "project",
            json!({"name": "g5", "parent_id": id(&g4)}),
        )
        .await;
    let (st, _) = s
        .post(
            "/v3/projects",
            t,
            json!({"project": {"name": "g6", "parent_id": id(&g5)}}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "hierarchy depth is limited");
    // cascade delete of a disabled subtree
    for p in [&g5, &g4, &grand, &child] {
        s.patch(
            &format!("/v3/projects/{}", id(p)),
            t,
            json!({"project": {"enabled": false}}),
        )
        .await;
    }
    let (st, _) = s
        .delete(&format!("/v3/projects/{}?cascade", id(&child)), t)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = s.get(&format!("/v3/projects/{}", id(&g5)), t).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn project_tags_api() {
    let s = TestServer::start().await;
    let t = &s.admin_token;
    let p = s
        .create(
            "projects",
            "project",
            json!({"name": "tagged", "domain_id": "default"}),
        )
        .await;
    let base = format!("/v3/projects/{}/tags", id(&p));
    let (st, v) = s
        .call(
            reqwest::Method::PUT,
            &base,
            Some(t),
            Some(json!({"tags": ["x", "y"]})),
        )
        .await;
    assert_eq!((st, v["tags"].clone()), (StatusCode::OK, json!(["x", "y"])));
    let (st, _) = s.put(&format!("{base}/z"), t).await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, _) = s.get(&format!("{base}/z"), t).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = s.get(&format!("{base}/absent"), t).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = s.delete(&format!("{base}/x"), t).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (_, v) = s.get(&base, t).await;
    assert_eq!(v["tags"], json!(["y", "z"]));
    let (st, _) = s
        .call(
            reqwest::Method::PUT,
            &base,
            Some(t),
            Some(json!({"tags": ["bad/tag"]})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let many: Vec<String> = (0..81).map(|i| format!("t{i}")).collect();
    let (st, _) = s
        .call(
            reqwest::Method::PUT,
            &base,
            Some(t),
            Some(json!({"tags": many})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = s.delete(&base, t).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (_, v) = s.get(&base, t).await;
    assert_eq!(v["tags"], json!([]));
}

#[tokio::test]
async fn users_and_groups() {
    let s = TestServer::start().await;
    let t = &s.admin_token;
    let u = s.create("users", "user", json!({"name": "ivy", "email": "ivy@example.com", "password": "pw-123456", "options": {"ignore_password_expiry": true}})).await;
    assert_eq!(u["domain_id"], json!("default"));
    assert_eq!(u["email"], json!("ivy@example.com"));
    assert_eq!(u["options"], json!({"ignore_password_expiry": true}));
    assert!(u.get("password").is_none(), "passwords are never returned");
    assert!(u.get("default_project_id").is_none());
    let (st, _) = s
        .post(
            "/v3/users",
            t,
            json!({"user": {"name": "bad", "options": {"nope": true}}}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = s
        .post(
            "/v3/users",
            t,
            json!({"user": {"name": "bad", "default_project_id": "default"}}),
        )
        .await;
    assert_eq!(
        st,
        StatusCode::BAD_REQUEST,
        "a domain is not a default project"
    );
    let (st, _) = s
        .post("/v3/users", t, json!({"user": {"name": "ivy"}}))
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (_, v) = s
        .patch(
            &format!("/v3/users/{}", id(&u)),
            t,
            json!({"user": {"email": null, "name": "ivy2"}}),
        )
        .await;
    assert_eq!(v["user"]["name"], json!("ivy2"));
    assert_eq!(v["user"]["email"], Value::Null);
    let (_, v) = s.get("/v3/users?name__startswith=IV", t).await;
    assert_eq!(v["users"], json!([]));
    let (_, v) = s.get("/v3/users?name__istartswith=IV", t).await;
    assert_eq!(ids(&v, "users"), vec![id(&u)]);
    let (_, v) = s.get("/v3/users?enabled=false", t).await;
    assert_eq!(v["users"], json!([]));

    let g = s
        .create(
            "groups",
            "group",
            json!({"name": "ops", "description": "operators"}),
        )
        .await;
    let gpath = format!("/v3/groups/{}/users/{}", id(&g), id(&u));
    assert_eq!(s.put(&gpath, t).await.0, StatusCode::NO_CONTENT);
    assert_eq!(s.get(&gpath, t).await.0, StatusCode::NO_CONTENT);
    let (_, v) = s.get(&format!("/v3/groups/{}/users", id(&g)), t).await;
    assert_eq!(ids(&v, "users"), vec![id(&u)]);
    let (_, v) = s.get(&format!("/v3/users/{}/groups", id(&u)), t).await;
    assert_eq!(ids(&v, "groups"), vec![id(&g)]);
    assert_eq!(s.delete(&gpath, t).await.0, StatusCode::NO_CONTENT);
    assert_eq!(s.get(&gpath, t).await.0, StatusCode::NOT_FOUND);
    assert_eq!(s.delete(&gpath, t).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        s.put(&format!("/v3/groups/{}/users/nobody", id(&g)), t)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.delete(&format!("/v3/groups/{}", id(&g)), t).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.delete(&format!("/v3/users/{}", id(&u)), t).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.delete(&format!("/v3/users/{}", id(&u)), t).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn roles_implied_roles_and_inferences() {
    let s = TestServer::start().await;
    let t = &s.admin_token;
    let r1 = s.create("roles", "role", json!({"name": "r1"})).await;
    assert_eq!(r1["domain_id"], Value::Null);
    assert_eq!(r1["description"], Value::Null);
    let r2 = s.create("roles", "role", json!({"name": "r2"})).await;
    let dr = s
        .create(
            "roles",
            "role",
            json!({"name": "r1", "domain_id": "default"}),
        )
        .await;
    let (_, v) = s.get("/v3/roles?domain_id=default", t).await;
    assert_eq!(v["roles"], json!([dr]));
    let (st, v) = s
        .put(&format!("/v3/roles/{}/implies/{}", id(&r1), id(&r2)), t)
        .await;
    assert_eq!(st, StatusCode::CREATED);
    assert_eq!(v["role_inference"]["implies"]["id"], json!(id(&r2)));
    assert_eq!(
        s.call(
            reqwest::Method::HEAD,
            &format!("/v3/roles/{}/implies/{}", id(&r1), id(&r2)),
            Some(t),
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    let (st, _) = s
        .put(&format!("/v3/roles/{}/implies/{}", id(&r1), id(&dr)), t)
        .await;
    assert_eq!(
        st,
        StatusCode::FORBIDDEN,
        "a global role cannot imply a domain role"
    );
    let admin = s.role_id("admin").await;
    let (st, _) = s
        .put(&format!("/v3/roles/{}/implies/{admin}", id(&r1)), t)
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "admin is never implied");
    let (_, v) = s.get("/v3/role_inferences", t).await;
    let priors: Vec<&str> = v["role_inferences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["prior_role"]["name"].as_str().unwrap())
        .collect();
    for p in ["admin", "manager", "member", "r1"] {
        assert!(priors.contains(&p), "{p} missing from {priors:?}");
    }
    let (_, v) = s.get(&format!("/v3/roles/{admin}/implies"), t).await;
    assert_eq!(
        v["role_inference"]["implies"].as_array().unwrap().len(),
        1,
        "direct implications only"
    );
    assert_eq!(
        s.delete(&format!("/v3/roles/{}/implies/{}", id(&r1), id(&r2)), t)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.delete(&format!("/v3/roles/{}/implies/{}", id(&r1), id(&r2)), t)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (st, _) = s.delete(&format!("/v3/roles/{admin}"), t).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "bootstrap roles are immutable");
}

#[tokio::test]
async fn grants_inheritance_and_role_assignments() {
    let s = TestServer::start().await;
    let t = &s.admin_token;
    let member = s.role_id("member").await;
    let reader = s.role_id("reader").await;
    let d = s.create("domains", "domain", json!({"name": "corp"})).await;
    let top = s
        .create(
            "projects",
            "project",
            json!({"name": "top", "domain_id": id(&d)}),
        )
        .await;
    let leaf = s
        .create(
            "projects",
            "project",
            json!({"name": "leaf", "parent_id": id(&top), "domain_id": id(&d)}),
        )
        .await;
    let u = s
        .create(
            "users",
            "user",
            json!({"name": "jo", "domain_id": id(&d), "password": "pw-123456"}),
        )
        .await;
    let g = s
        .create(
            "groups",
            "group",
            json!({"name": "team", "domain_id": id(&d)}),
        )
        .await;
    s.put(&format!("/v3/groups/{}/users/{}", id(&g), id(&u)), t)
        .await;

    // inherited group grant on the domain reaches both projects
    let inh = format!(
        "/v3/OS-INHERIT/domains/{}/groups/{}/roles/{member}/inherited_to_projects",
        id(&d),
        id(&g)
    );
    assert_eq!(s.put(&inh, t).await.0, StatusCode::NO_CONTENT);
    assert_eq!(s.get(&inh, t).await.0, StatusCode::NO_CONTENT);
    let (_, v) = s
        .get(
            &format!(
                "/v3/OS-INHERIT/domains/{}/groups/{}/roles/inherited_to_projects",
                id(&d),
                id(&g)
            ),
            t,
        )
        .await;
    assert_eq!(ids(&v, "roles"), vec![member.clone()]);
    let (_, b) = s
        .token(password_auth_by_id(
            &id(&u),
            "pw-123456",
            Some(project_scope(&id(&leaf))),
        ))
        .await;
    let mut names: Vec<&str> = b["token"]["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, vec!["member", "reader"]);
    // ...but not the domain itself
    let (st, _, _) = s
        .authenticate(password_auth_by_id(
            &id(&u),
            "pw-123456",
            Some(json!({"domain": {"id": id(&d)}})),
        ))
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    // raw assignments: one inherited group row
    let (_, v) = s
        .get(&format!("/v3/role_assignments?group.id={}", id(&g)), t)
        .await;
    let rows = v["role_assignments"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0]["scope"]["OS-INHERIT:inherited_to"],
        json!("projects")
    );
    assert!(rows[0]["links"]["assignment"]
        .as_str()
        .unwrap()
        .ends_with("/inherited_to_projects"));
    // effective: expanded to the user, both projects, plus the implied reader
    let (_, v) = s
        .get(
            &format!("/v3/role_assignments?user.id={}&effective", id(&u)),
            t,
        )
        .await;
    let rows = v["role_assignments"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "{v}");
    assert!(rows.iter().all(|r| r["links"]["membership"].is_string()));
    assert!(rows
        .iter()
        .any(|r| r["role"]["id"] == json!(reader) && r["links"]["prior_role"].is_string()));
    // include_names
    let (_, v) = s
        .get(
            &format!(
                "/v3/role_assignments?user.id={}&effective&include_names&scope.project.id={}",
                id(&u),
                id(&leaf)
            ),
            t,
        )
        .await;
    let row = &v["role_assignments"][0];
    assert_eq!(row["user"]["name"], json!("jo"));
    assert_eq!(row["user"]["domain"]["name"], json!("corp"));
    assert_eq!(row["scope"]["project"]["name"], json!("leaf"));
    // include_subtree
    let direct = format!("/v3/projects/{}/users/{}/roles/{reader}", id(&leaf), id(&u));
    s.put(&direct, t).await;
    let (_, v) = s
        .get(
            &format!(
                "/v3/role_assignments?scope.project.id={}&include_subtree=true",
                id(&top)
            ),
            t,
        )
        .await;
    assert_eq!(v["role_assignments"].as_array().unwrap().len(), 1);
    let (st, _) = s.get("/v3/role_assignments?include_subtree=true", t).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = s
        .get(
            &format!("/v3/role_assignments?effective&group.id={}", id(&g)),
            t,
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    // grants API list/check/revoke and errors
    let (_, v) = s
        .get(
            &format!("/v3/projects/{}/users/{}/roles", id(&leaf), id(&u)),
            t,
        )
        .await;
    assert_eq!(ids(&v, "roles"), vec![reader.clone()]);
    assert_eq!(s.delete(&direct, t).await.0, StatusCode::NO_CONTENT);
    assert_eq!(s.delete(&direct, t).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        s.put(
            &format!("/v3/projects/{}/users/{}/roles/nope", id(&leaf), id(&u)),
            t
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.put(
            &format!("/v3/projects/nope/users/{}/roles/{reader}", id(&u)),
            t
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    // system grants
    let sys = format!("/v3/system/users/{}/roles/{reader}", id(&u));
    assert_eq!(s.put(&sys, t).await.0, StatusCode::NO_CONTENT);
    let (_, v) = s
        .get(
            &format!("/v3/role_assignments?scope.system=all&user.id={}", id(&u)),
            t,
        )
        .await;
    assert_eq!(
        v["role_assignments"][0]["scope"],
        json!({"system": {"all": true}})
    );
    let (_, b) = s
        .token(password_auth_by_id(
            &id(&u),
            "pw-123456",
            Some(json!({"system": {"all": true}})),
        ))
        .await;
    assert_eq!(b["token"]["roles"][0]["name"], json!("reader"));
    // domain-specific roles: only in their domain, never on the system
    let dr = s
        .create(
            "roles",
            "role",
            json!({"name": "corp-only", "domain_id": id(&d)}),
        )
        .await;
    assert_eq!(
        s.put(&format!("/v3/system/users/{}/roles/{}", id(&u), id(&dr)), t)
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    let other = s
        .create(
            "projects",
            "project",
            json!({"name": "elsewhere", "domain_id": "default"}),
        )
        .await;
    assert_eq!(
        s.put(
            &format!(
                "/v3/projects/{}/users/{}/roles/{}",
                id(&other),
                id(&u),
                id(&dr)
            ),
            t
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn catalog_regions_services_endpoints() {
    let s = TestServer::start().await;
    let t = &s.admin_token;
    let parent = s
        .create(
            "regions",
            "region",
            json!({"id": "eu", "description": "Europe"}),
        )
        .await;
    assert_eq!(parent["parent_region_id"], Value::Null);
    let (st, v) = s
        .call(
            reqwest::Method::PUT,
            "/v3/regions/eu-west",
            Some(t),
            Some(json!({"region": {"parent_region_id": "eu"}})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    assert_eq!(v["region"]["id"], json!("eu-west"));
    let generated = s.create("regions", "region", json!({})).await;
    assert_eq!(generated["id"].as_str().unwrap().len(), 32);
    let (st, _) = s
        .patch(
            "/v3/regions/eu",
            t,
            json!({"region": {"parent_region_id": "eu-west"}}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "no loops");
    let (_, v) = s.get("/v3/regions?parent_region_id=eu", t).await;
    assert_eq!(ids(&v, "regions"), vec!["eu-west".to_string()]);

    let svc = s
        .create(
            "services",
            "service",
            json!({"type": "compute", "name": "nova", "description": "Compute"}),
        )
        .await;
    assert_eq!(svc["name"], json!("nova"));
    let ep = s.create("endpoints", "endpoint", json!({"service_id": id(&svc), "interface": "public", "url": "http://nova/v2.1/$(project_id)s", "region": "brand-new"})).await;
    assert_eq!(ep["region"], json!("brand-new"));
    assert_eq!(ep["region_id"], json!("brand-new"));
    assert_eq!(
        s.get("/v3/regions/brand-new", t).await.0,
        StatusCode::OK,
        "legacy region created on the fly"
    );
    // Updating an endpoint to a legacy region that does not exist makes it too.
    let moved = s.create("endpoints", "endpoint", json!({"service_id": id(&svc), "interface": "internal", "url": "http://nova-internal", "region": "brand-new"})).await;
    let (status, updated) = s
        .patch(
            &format!("/v3/endpoints/{}", id(&moved)),
            t,
            json!({"endpoint": {"region": "brand-newer"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["endpoint"]["region_id"], json!("brand-newer"));
    assert_eq!(s.get("/v3/regions/brand-newer", t).await.0, StatusCode::OK);
    let gone = s.delete(&format!("/v3/endpoints/{}", id(&moved)), t).await;
    assert_eq!(gone.0, StatusCode::NO_CONTENT);
    for (body, want) in [
        (
            json!({"service_id": id(&svc), "interface": "private", "url": "http://x"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"service_id": "nope", "interface": "public", "url": "http://x"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"service_id": id(&svc), "interface": "public", "url": "http://x", "region_id": "nope"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"service_id": id(&svc), "interface": "public", "url": "http://x", "enabled": "False"}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        assert_eq!(
            s.post("/v3/endpoints", t, json!({"endpoint": body}))
                .await
                .0,
            want
        );
    }
    let (_, v) = s
        .get(
            &format!("/v3/endpoints?service_id={}&interface=public", id(&svc)),
            t,
        )
        .await;
    assert_eq!(ids(&v, "endpoints"), vec![id(&ep)]);
    assert_eq!(
        s.delete("/v3/regions/brand-new", t).await.0,
        StatusCode::FORBIDDEN,
        "region in use"
    );
    let (_, v) = s
        .patch(
            &format!("/v3/endpoints/{}", id(&ep)),
            t,
            json!({"endpoint": {"enabled": false}}),
        )
        .await;
    assert_eq!(v["endpoint"]["enabled"], json!(false));
    let (_, b) = s
        .token(password_auth_by_name(
            "admin",
            "Default",
            ADMIN_PASSWORD,
            Some(json!({"project": {"name": "admin", "domain": {"id": "default"}}})),
        ))
        .await;
    let compute = b["token"]["catalog"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "compute")
        .cloned()
        .unwrap();
    assert_eq!(
        compute["endpoints"],
        json!([]),
        "disabled endpoints leave the catalog"
    );
    s.patch(
        &format!("/v3/endpoints/{}", id(&ep)),
        t,
        json!({"endpoint": {"enabled": true}}),
    )
    .await;
    let project_id = b["token"]["project"]["id"].as_str().unwrap();
    let (_, c) = s
        .get("/v3/auth/catalog", &s.admin_project_token().await)
        .await;
    let compute = c["catalog"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "compute")
        .cloned()
        .unwrap();
    assert_eq!(
        compute["endpoints"][0]["url"],
        json!(format!("http://nova/v2.1/{project_id}")),
        "URL templates are filled"
    );
    let (_, b) = s
        .token(password_auth_by_name(
            "admin",
            "Default",
            ADMIN_PASSWORD,
            Some(json!({"system": {"all": true}})),
        ))
        .await;
    let compute = b["token"]["catalog"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "compute")
        .cloned()
        .unwrap();
    assert_eq!(
        compute["endpoints"],
        json!([]),
        "templated endpoints need a project"
    );
    assert_eq!(
        s.delete(&format!("/v3/services/{}", id(&svc)), t).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.get(&format!("/v3/endpoints/{}", id(&ep)), t).await.0,
        StatusCode::NOT_FOUND,
        "endpoints go with their service"
    );
}

#[tokio::test]
async fn pagination_with_limit_and_marker() {
    let s = TestServer::start().await;
    let t = &s.admin_token;
    for i in 0..5 {
        s.create("domains", "domain", json!({"name": format!("page-{i}")}))
            .await;
    }
    let (_, all) = s.get("/v3/domains", t).await;
    let mut every = ids(&all, "domains");
    assert_eq!(every.len(), 6);
    every.sort();
    let mut seen = Vec::new();
    let mut path = "/v3/domains?limit=2".to_string();
    loop {
        let (st, v) = s.get(&path, t).await;
        assert_eq!(st, StatusCode::OK);
        let page: Vec<String> = v["domains"].as_array().unwrap().iter().map(id).collect();
        assert!(page.len() <= 2);
        seen.extend(page);
        match v["links"]["next"].as_str() {
            Some(next) => {
                assert_eq!(v["truncated"], json!(true));
                path = next.trim_start_matches(&s.base).to_string();
            }
            None => break,
        }
    }
    assert_eq!(seen, every, "pages cover every domain once, in id order");
    let (st, _) = s.get("/v3/domains?marker=nope", t).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = s.get("/v3/domains?limit=abc", t).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}

/// Walks `path` (which has `limit=3`) page by page through the `next` links: the ids seen,
/// in order, and how many pages there were.
async fn walk_pages(s: &TestServer, key: &str, mut path: String) -> (Vec<String>, usize) {
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let (st, v) = s.get(&path, &s.admin_token).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        pages += 1;
        let page = ids(&v, key);
        assert!(page.len() <= 3);
        seen.extend(page);
        match v["links"]["next"].as_str() {
            Some(next) => {
                assert_eq!(v["truncated"], json!(true));
                path = next.trim_start_matches(&s.base).to_string();
            }
            None => {
                assert!(v.get("truncated").is_none());
                return (seen, pages);
            }
        }
    }
}

/// Users and projects are paged by the database; the pages must still be Keystone's: id
/// order, every entry once, `next` links and `truncated`, filters and name patterns
/// honoured, markers checked.
#[tokio::test]
async fn user_and_project_pages_come_from_the_database() {
    let s = TestServer::start().await;
    let t = &s.admin_token;
    let d = s
        .create("domains", "domain", json!({"name": "paged"}))
        .await;
    for i in 0..7 {
        s.create(
            "users",
            "user",
            json!({"name": format!("pu-{i}"), "domain_id": id(&d)}),
        )
        .await;
        s.create(
            "projects",
            "project",
            json!({"name": format!("pp-{i}"), "domain_id": id(&d)}),
        )
        .await;
    }
    let admin = s.get("/v3/users?name=admin", t).await.1["users"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let admin_project = s.get("/v3/projects?name=admin", t).await.1["projects"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for (key, outsider, pattern, named) in [
        ("users", &admin, "name__contains=-6", "pu-6"),
        ("projects", &admin_project, "name__contains=-6", "pp-6"),
    ] {
        let (_, all) = s.get(&format!("/v3/{key}?domain_id={}", id(&d)), t).await;
        let mut every = ids(&all, key);
        assert_eq!(every.len(), 7, "{key}");
        every.sort();
        let (seen, pages) =
            walk_pages(&s, key, format!("/v3/{key}?domain_id={}&limit=3", id(&d))).await;
        assert_eq!(pages, 3, "{key}");
        assert_eq!(
            seen, every,
            "{key}: pages cover the domain once, in id order"
        );
        // A marker alone returns the rest.
        let (_, rest) = s
            .get(
                &format!("/v3/{key}?domain_id={}&marker={}", id(&d), every[4]),
                t,
            )
            .await;
        assert_eq!(ids(&rest, key), every[5..].to_vec(), "{key}");
        // A marker outside the listed domain, or unknown, is a 404.
        for marker in [outsider.as_str(), "nope"] {
            let (st, _) = s
                .get(
                    &format!("/v3/{key}?domain_id={}&marker={marker}", id(&d)),
                    t,
                )
                .await;
            assert_eq!(st, StatusCode::NOT_FOUND, "{key}: marker {marker}");
        }
        // Name patterns still apply before the page is cut.
        let (_, v) = s
            .get(
                &format!("/v3/{key}?domain_id={}&{pattern}&limit=3", id(&d)),
                t,
            )
            .await;
        let names: Vec<&str> = v[key]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|u| u["name"].as_str())
            .collect();
        assert_eq!(names, vec![named], "{key}");
    }
}

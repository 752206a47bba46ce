//! The federation registry (`OS-FEDERATION`): identity providers with their domains and
//! protocols, attribute mappings checked against Keystone's schema, and service providers
//! listed in every token.

use limen_tests::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const FED: &str = "/v3/OS-FEDERATION";

fn mapping_body() -> Value {
    json!({"mapping": {"rules": [{
        "local": [{"user": {"name": "{0}"}}, {"group": {"name": "devs", "domain": {"id": "default"}}}],
        "remote": [{"type": "REMOTE_USER"}, {"type": "groups", "any_one_of": ["admins"], "regex": false}]
    }]}})
}

async fn put(s: &TestServer, path: &str, body: Value) -> (StatusCode, Value) {
    s.call(Method::PUT, path, Some(&s.admin_token), Some(body))
        .await
}

#[tokio::test]
async fn identity_providers_protocols_and_mappings() {
    let s = TestServer::start().await;

    // A provider without a domain gets one of its own; providers start disabled.
    let (st, v) = put(&s, &format!("{FED}/identity_providers/acme"), json!({
        "identity_provider": {"description": "ACME SSO", "remote_ids": ["https://idp.acme/saml"]}
    }))
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let idp = &v["identity_provider"];
    assert_eq!(idp["enabled"], json!(false));
    assert_eq!(idp["remote_ids"], json!(["https://idp.acme/saml"]));
    assert!(idp["links"]["protocols"]
        .as_str()
        .unwrap()
        .ends_with("/v3/OS-FEDERATION/identity_providers/acme/protocols"));
    let domain_id = idp["domain_id"].as_str().unwrap().to_string();
    let (st, d) = s
        .get(&format!("/v3/domains/{domain_id}"), &s.admin_token)
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(d["domain"]["enabled"], json!(true));

    // Same id, or a remote id another provider already claims: 409, nothing changes.
    let (st, _) = put(&s, &format!("{FED}/identity_providers/acme"), json!({})).await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (st, v) = put(
        &s,
        &format!("{FED}/identity_providers/other"),
        json!({
            "identity_provider": {"domain_id": "default", "remote_ids": ["https://idp.acme/saml"]}
        }),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    let (st, _) = put(
        &s,
        &format!("{FED}/identity_providers/other"),
        json!({
            "identity_provider": {"domain_id": "nosuchdomain"}
        }),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = put(
        &s,
        &format!("{FED}/identity_providers/other"),
        json!({
            "identity_provider": {"domain_id": "default", "bogus": 1}
        }),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = s
        .get(&format!("{FED}/identity_providers/other"), &s.admin_token)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    let (st, v) = s
        .patch(
            &format!("{FED}/identity_providers/acme"),
            &s.admin_token,
            json!({"identity_provider": {"enabled": true, "remote_ids": ["a", "b"]}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["identity_provider"]["enabled"], json!(true));
    let (st, _) = s
        .patch(
            &format!("{FED}/identity_providers/acme"),
            &s.admin_token,
            json!({"identity_provider": {"domain_id": "default"}}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "a provider's domain is fixed");
    let (_, v) = s
        .get(
            &format!("{FED}/identity_providers?enabled=true"),
            &s.admin_token,
        )
        .await;
    assert_eq!(v["identity_providers"].as_array().unwrap().len(), 1);

    // Mappings are checked against Keystone's attribute-mapping schema.
    let (st, v) = put(&s, &format!("{FED}/mappings/m1"), mapping_body()).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["mapping"]["schema_version"], json!("1.0"));
    assert_eq!(v["mapping"]["rules"], mapping_body()["mapping"]["rules"]);
    for bad in [
        json!({"mapping": {}}),
        json!({"mapping": {"rules": []}}),
        json!({"mapping": {"rules": [{"local": [], "remote": []}]}}),
        json!({"mapping": {"rules": [{"local": [{"user": {"nickname": "x"}}], "remote": [{"type": "a"}]}]}}),
    ] {
        let (st, v) = put(&s, &format!("{FED}/mappings/bad"), bad.clone()).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad} gave {v}");
    }
    let (st, _) = s.get(&format!("{FED}/mappings/bad"), &s.admin_token).await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Protocols need an existing mapping.
    let proto = format!("{FED}/identity_providers/acme/protocols/saml2");
    let (st, _) = put(
        &s,
        &proto,
        json!({"protocol": {"mapping_id": "nosuchmapping"}}),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, v) = put(&s, &proto, json!({"protocol": {"mapping_id": "m1"}})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["protocol"]["mapping_id"], json!("m1"));
    let (st, _) = s
        .patch(
            &proto,
            &s.admin_token,
            json!({"protocol": {"mapping_id": "nosuchmapping"}}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, v) = s
        .get(
            &format!("{FED}/identity_providers/acme/protocols"),
            &s.admin_token,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["protocols"][0]["id"], json!("saml2"));
    let (st, _) = put(
        &s,
        &format!("{FED}/identity_providers/nosuch/protocols/saml2"),
        json!({"protocol": {"mapping_id": "m1"}}),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Only admins manage federation.
    let u = s
        .create(
            "users",
            "user",
            json!({"name": "plain", "password": "pw-123456"}),
        )
        .await;
    let (plain, _) = s
        .token(password_auth_by_id(
            u["id"].as_str().unwrap(),
            "pw-123456",
            None,
        ))
        .await;
    assert_eq!(
        s.get(&format!("{FED}/identity_providers"), &plain).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.call(
            Method::PUT,
            &format!("{FED}/mappings/m2"),
            Some(&plain),
            Some(mapping_body())
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );

    // Deleting the provider takes its protocols, not its domain; deleting the domain
    // takes its providers.
    assert_eq!(
        s.delete(&format!("{FED}/identity_providers/acme"), &s.admin_token)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(s.get(&proto, &s.admin_token).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        s.get(&format!("/v3/domains/{domain_id}"), &s.admin_token)
            .await
            .0,
        StatusCode::OK
    );
    let (st, _) = put(
        &s,
        &format!("{FED}/identity_providers/acme2"),
        json!({
            "identity_provider": {"domain_id": domain_id}
        }),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    s.patch(
        &format!("/v3/domains/{domain_id}"),
        &s.admin_token,
        json!({"domain": {"enabled": false}}),
    )
    .await;
    assert_eq!(
        s.delete(&format!("/v3/domains/{domain_id}"), &s.admin_token)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.get(&format!("{FED}/identity_providers/acme2"), &s.admin_token)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.delete(&format!("{FED}/mappings/m1"), &s.admin_token)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn service_providers_appear_in_tokens() {
    let s = TestServer::start().await;
    let sp = |enabled: bool| {
        json!({"service_provider": {"auth_url": "https://sp.example/v3/OS-FEDERATION/identity_providers/us/protocols/saml2/auth",
                                    "sp_url": "https://sp.example/Shibboleth.sso/SAML2/ECP",
                                    "enabled": enabled}})
    };
    let (st, v) = put(&s, &format!("{FED}/service_providers/on"), sp(true)).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(
        v["service_provider"]["relay_state_prefix"],
        json!("ss:mem:")
    );
    let (st, _) = put(&s, &format!("{FED}/service_providers/off"), sp(false)).await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, _) = put(
        &s,
        &format!("{FED}/service_providers/bad"),
        json!({"service_provider": {"auth_url": "not-a-url", "sp_url": "https://x"}}),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = put(
        &s,
        &format!("{FED}/service_providers/bad"),
        json!({"service_provider": {}}),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    let (_, body) = s
        .token(password_auth_by_name(
            "admin",
            "Default",
            ADMIN_PASSWORD,
            None,
        ))
        .await;
    let listed: Vec<&str> = body["token"]["service_providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|sp| sp["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["on"]);
    assert_eq!(
        body["token"]["service_providers"][0]["sp_url"],
        json!("https://sp.example/Shibboleth.sso/SAML2/ECP")
    );

    let (st, v) = s
        .patch(
            &format!("{FED}/service_providers/on"),
            &s.admin_token,
            json!({"service_provider": {"enabled": false}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, _) = s
        .patch(
            &format!("{FED}/service_providers/on"),
            &s.admin_token,
            json!({"service_provider": {"sp_url": "nope"}}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (_, body) = s
        .token(password_auth_by_name(
            "admin",
            "Default",
            ADMIN_PASSWORD,
            None,
        ))
        .await;
    assert!(body["token"].get("service_providers").is_none());
    assert_eq!(
        s.delete(&format!("{FED}/service_providers/off"), &s.admin_token)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.get(&format!("{FED}/service_providers/off"), &s.admin_token)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

//! Wire format of Limen's OAuth clients (`/v3/limen/oauth_clients`).

use crate::input::{unwrap, Fields};
use crate::render::Links;
use crate::{Invalid, ProtoResult};
use limen_core::oauth::client::{
    ClientLifetimes, ClientLifetimesPatch, NewOAuthClient, OAuthClient, OAuthClientPatch,
    TokenSigningAlg,
};
use serde_json::{json, Value};

const URI_MAX: usize = 2048;

/// `POST`: the client and the domain it names, if any (the route decides the default).
pub fn oauth_client_create(body: Value) -> ProtoResult<(NewOAuthClient, Option<String>)> {
    let mut f = Fields::new("oauth_client", unwrap(body, "oauth_client")?);
    f.required("name")?;
    let new = NewOAuthClient {
        domain_id: String::new(),
        name: f.name("name", 255)?.unwrap_or_default(),
        description: f.nullable_string("description", 65_535)?.flatten(),
        confidential: f.boolean("confidential")?.unwrap_or(true),
        redirect_uris: f.strings("redirect_uris", URI_MAX)?.unwrap_or_default(),
        grant_types: f.strings("grant_types", 255)?,
        audiences: f.strings("audiences", 255)?.unwrap_or_default(),
        enabled: f.boolean("enabled")?.unwrap_or(true),
        token_signing_alg: signing_alg(&mut f)?.unwrap_or_default(),
        lifetimes: ClientLifetimes::default().patched(lifetimes(&mut f)?),
    };
    let domain_id = f.string("domain_id", 1, 64)?;
    f.closed()?;
    Ok((new, domain_id))
}

/// `PATCH`: what changes. The domain, the id and the kind of client are fixed.
pub fn oauth_client_update(body: Value) -> ProtoResult<OAuthClientPatch> {
    let mut f = Fields::new("oauth_client", unwrap(body, "oauth_client")?);
    f.not_empty()?;
    for fixed in ["id", "domain_id", "confidential", "secret"] {
        f.immutable(fixed, &format!("Cannot change an OAuth client's {fixed}."))?;
    }
    let patch = OAuthClientPatch {
        name: f.name("name", 255)?,
        description: f.nullable_string("description", 65_535)?,
        redirect_uris: f.strings("redirect_uris", URI_MAX)?,
        grant_types: f.strings("grant_types", 255)?,
        audiences: f.strings("audiences", 255)?,
        enabled: f.boolean("enabled")?,
        token_signing_alg: signing_alg(&mut f)?,
        lifetimes: lifetimes(&mut f)?,
    };
    f.closed()?;
    Ok(patch)
}

/// `token_signing_alg`, one of the algorithms the provider signs with.
fn signing_alg(f: &mut Fields) -> ProtoResult<Option<TokenSigningAlg>> {
    let Some(name) = f.string("token_signing_alg", 1, 16)? else {
        return Ok(None);
    };
    TokenSigningAlg::parse(&name).map(Some).ok_or_else(|| {
        let known: Vec<&str> = TokenSigningAlg::ALL.iter().map(|a| a.as_str()).collect();
        Invalid(format!(
            "Invalid input for field/attribute token_signing_alg. Value: {name}. It must be \
             one of {}.",
            known.join(", ")
        ))
    })
}

/// The `*_lifetime` fields (seconds; `null` for the provider's).
fn lifetimes(f: &mut Fields) -> ProtoResult<ClientLifetimesPatch> {
    Ok(ClientLifetimesPatch {
        access_token: f.nullable_integer("access_token_lifetime")?,
        refresh_token: f.nullable_integer("refresh_token_lifetime")?,
        grant: f.nullable_integer("grant_lifetime")?,
        exchanged_token: f.nullable_integer("exchanged_token_lifetime")?,
    })
}

/// A client as the API shows it; `secret` only where it was just made.
pub fn oauth_client(l: &Links, c: &OAuthClient, secret: Option<&str>) -> Value {
    let created = time::OffsetDateTime::from_unix_timestamp(c.created_at)
        .map(crate::times::iso_z)
        .unwrap_or_default();
    let mut v = json!({
        "id": c.id,
        "domain_id": c.domain_id,
        "name": c.name,
        "description": c.description,
        "confidential": c.is_confidential(),
        "redirect_uris": c.redirect_uris,
        "grant_types": c.grant_types,
        "audiences": c.audiences,
        "enabled": c.enabled,
        "token_signing_alg": c.token_signing_alg.as_str(),
        "access_token_lifetime": c.lifetimes.access_token,
        "refresh_token_lifetime": c.lifetimes.refresh_token,
        "grant_lifetime": c.lifetimes.grant,
        "exchanged_token_lifetime": c.lifetimes.exchanged_token,
        "created_at": created,
        "links": l.self_link(&format!("limen/oauth_clients/{}", c.id)),
    });
    if let Some(s) = secret {
        v["secret"] = json!(s);
    }
    v
}

//! `limen oauth-client …`: OAuth clients of the OpenID Provider, managed on the store
//! directly (the API is `/v3/limen/oauth_clients`).

use crate::error::{CliError, CliResult};
use clap::{Args, Subcommand};
use limen_core::authz::Authorized;
use limen_core::clock::{OsRandom, SystemClock};
use limen_server::Config;
use std::sync::Arc;

#[derive(Subcommand)]
pub(crate) enum OauthClientAction {
    /// Register a client; prints its id and, for a confidential client, its secret.
    Create {
        /// The client's name, as people see it.
        #[arg(long)]
        name: String,
        /// The owning domain's id.
        #[arg(long, default_value = "default")]
        domain: String,
        /// A description.
        #[arg(long)]
        description: Option<String>,
        /// A public client (no secret; PKCE proves it) instead of a confidential one.
        #[arg(long)]
        public: bool,
        /// An exact redirect URI (https, or http on loopback); repeat for more.
        #[arg(long = "redirect-uri", value_name = "URI")]
        redirect_uris: Vec<String>,
        /// A grant type it may use; repeat for more [default: authorization_code and
        /// refresh_token].
        #[arg(long = "grant-type", value_name = "GRANT")]
        grant_types: Vec<String>,
        /// An audience (a resource such as a Kubernetes cluster) its tokens may be
        /// exchanged for; repeat for more.
        #[arg(long = "audience", value_name = "AUDIENCE")]
        audiences: Vec<String>,
        #[command(flatten)]
        tokens: ClientTokenArgs,
    },
    /// List clients: id, domain, kind, name.
    List {
        /// Only this domain's.
        #[arg(long)]
        domain: Option<String>,
    },
    /// Show one client (as JSON, without its secret).
    Show {
        /// The client's id.
        id: String,
    },
    /// Change a client: each list given replaces the whole list.
    Update {
        /// The client's id.
        id: String,
        /// A new name.
        #[arg(long)]
        name: Option<String>,
        /// A new description.
        #[arg(long)]
        description: Option<String>,
        /// The redirect URIs (all of them); repeat for more.
        #[arg(long = "redirect-uri", value_name = "URI")]
        redirect_uris: Vec<String>,
        /// The grant types (all of them); repeat for more.
        #[arg(long = "grant-type", value_name = "GRANT")]
        grant_types: Vec<String>,
        /// The audiences (all of them); repeat for more.
        #[arg(long = "audience", value_name = "AUDIENCE")]
        audiences: Vec<String>,
        /// Enable (true) or disable (false) it.
        #[arg(long, value_name = "BOOL")]
        enabled: Option<bool>,
        #[command(flatten)]
        tokens: ClientTokenArgs,
    },
    /// Remove a client.
    Delete {
        /// The client's id.
        id: String,
    },
    /// Give a confidential client a new secret (printed once; the old one stops working).
    RotateSecret {
        /// The client's id.
        id: String,
    },
}

/// How a client's tokens are signed and how long they live. Lifetimes are seconds, at
/// most the provider's [oidc] ones; `default` (on update) goes back to those.
#[derive(Args)]
pub(crate) struct ClientTokenArgs {
    /// The algorithm its ID, access and exchanged tokens are signed with: RS256 or ES256
    /// [default on create: RS256].
    #[arg(long, value_name = "ALG", value_parser = parse_signing_alg)]
    token_signing_alg: Option<limen_core::oauth::client::TokenSigningAlg>,
    /// Seconds its access and ID tokens live.
    #[arg(long, value_name = "SECONDS|default", value_parser = parse_lifetime)]
    access_token_lifetime: Option<Lifetime>,
    /// Seconds an unused refresh token of it lives.
    #[arg(long, value_name = "SECONDS|default", value_parser = parse_lifetime)]
    refresh_token_lifetime: Option<Lifetime>,
    /// Seconds a login's grant to it lives, however often refreshed.
    #[arg(long, value_name = "SECONDS|default", value_parser = parse_lifetime)]
    grant_lifetime: Option<Lifetime>,
    /// Seconds a token it gets from a token exchange lives at most.
    #[arg(long, value_name = "SECONDS|default", value_parser = parse_lifetime)]
    exchanged_token_lifetime: Option<Lifetime>,
}

/// A lifetime on the command line: seconds, or `None` for the provider's.
#[derive(Clone, Copy)]
pub(crate) struct Lifetime(Option<i64>);

pub(crate) fn parse_lifetime(s: &str) -> CliResult<Lifetime> {
    if s == "default" {
        return Ok(Lifetime(None));
    }
    s.parse().map(|v| Lifetime(Some(v))).map_err(|_| {
        CliError::usage(format!(
            "{s:?} is neither a number of seconds nor `default`"
        ))
    })
}

pub(crate) fn parse_signing_alg(s: &str) -> CliResult<limen_core::oauth::client::TokenSigningAlg> {
    limen_core::oauth::client::TokenSigningAlg::parse(s)
        .ok_or_else(|| CliError::usage(format!("{s:?} is not RS256 or ES256")))
}

impl ClientTokenArgs {
    fn lifetimes(&self) -> limen_core::oauth::client::ClientLifetimesPatch {
        let v = |l: Option<Lifetime>| l.map(|Lifetime(v)| v);
        limen_core::oauth::client::ClientLifetimesPatch {
            access_token: v(self.access_token_lifetime),
            refresh_token: v(self.refresh_token_lifetime),
            grant: v(self.grant_lifetime),
            exchanged_token: v(self.exchanged_token_lifetime),
        }
    }
}

pub(crate) async fn oauth_client(config: &Config, action: OauthClientAction) -> CliResult<()> {
    let (limen, _) =
        limen_server::app::open_services(config, Arc::new(SystemClock), Arc::new(OsRandom)).await?;
    match action {
        OauthClientAction::Create {
            name,
            domain,
            description,
            public,
            redirect_uris,
            grant_types,
            audiences,
            tokens,
        } => {
            let new = limen_core::oauth::client::NewOAuthClient {
                domain_id: domain,
                name,
                description,
                confidential: !public,
                redirect_uris,
                grant_types: (!grant_types.is_empty()).then_some(grant_types),
                audiences,
                enabled: true,
                token_signing_alg: tokens.token_signing_alg.unwrap_or_default(),
                lifetimes: limen_core::oauth::client::ClientLifetimes::default()
                    .patched(tokens.lifetimes()),
            };
            let (c, secret) = limen
                .oauth()
                .create_oauth_client(
                    &Authorized::operator_cli("identity:create_oauth_client"),
                    new,
                )
                .await?;
            println!("client_id: {}", c.id);
            if let Some(secret) = secret {
                println!("client_secret: {secret}");
                eprintln!("The secret is shown only now; store it safely.");
            }
        }
        OauthClientAction::List { domain } => {
            for c in limen.oauth().list_oauth_clients(domain.as_deref()).await? {
                let kind = if c.is_confidential() {
                    "confidential"
                } else {
                    "public"
                };
                println!("{} {} {kind} {}", c.id, c.domain_id, c.name);
            }
        }
        OauthClientAction::Show { id } => {
            let c = limen.oauth().get_oauth_client(&id).await?;
            let links =
                limen_proto::render::Links::new(config.public_url.clone().unwrap_or_default());
            let shown = limen_proto::oauth::oauth_client(&links, &c, None);
            println!(
                "{}",
                serde_json::to_string_pretty(&shown).unwrap_or_default()
            );
        }
        OauthClientAction::Update {
            id,
            name,
            description,
            redirect_uris,
            grant_types,
            audiences,
            enabled,
            tokens,
        } => {
            let given = |v: Vec<String>| (!v.is_empty()).then_some(v);
            let patch = limen_core::oauth::client::OAuthClientPatch {
                name,
                description: description.map(Some),
                redirect_uris: given(redirect_uris),
                grant_types: given(grant_types),
                audiences: given(audiences),
                enabled,
                token_signing_alg: tokens.token_signing_alg,
                lifetimes: tokens.lifetimes(),
            };
            let c = limen
                .oauth()
                .update_oauth_client(
                    &Authorized::operator_cli("identity:update_oauth_client"),
                    &id,
                    patch,
                )
                .await?;
            println!("updated OAuth client {}", c.id);
        }
        OauthClientAction::Delete { id } => {
            limen
                .oauth()
                .delete_oauth_client(
                    &Authorized::operator_cli("identity:delete_oauth_client"),
                    &id,
                )
                .await?;
            println!("deleted OAuth client {id}");
        }
        OauthClientAction::RotateSecret { id } => {
            let (c, secret) = limen
                .oauth()
                .rotate_oauth_client_secret(
                    &Authorized::operator_cli("identity:update_oauth_client"),
                    &id,
                )
                .await?;
            println!("client_id: {}", c.id);
            println!("client_secret: {secret}");
            eprintln!("The secret is shown only now; store it safely.");
        }
    }
    Ok(())
}

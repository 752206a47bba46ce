//! The issuer as an OAuth 2.0 client sees it: device authorization (RFC 8628), refresh,
//! client credentials with an application credential, token exchange (RFC 8693) for a
//! cluster token, revocation (RFC 7009), and the public connection info of a cluster.
//! Endpoints are Limen's (`{issuer}/oauth2/…`), so no discovery round trip is spent.

use crate::ClientError;
use serde::Deserialize;
use std::time::Duration;

pub const GRANT_DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";
pub const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const TOKEN_TYPE_ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";

/// A token endpoint's answer.
#[derive(Debug, Clone, Deserialize)]
pub struct Tokens {
    pub access_token: String,
    pub expires_in: i64,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub id_token: Option<String>,
}

/// The start of a device login.
#[derive(Debug, Clone, Deserialize)]
pub struct DeviceStart {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    #[serde(default)]
    pub verification_uri_complete: Option<String>,
    pub expires_in: i64,
    #[serde(default = "default_interval")]
    pub interval: u64,
}

fn default_interval() -> u64 {
    5
}

/// What a device-code poll found.
#[derive(Debug)]
pub enum Poll {
    Pending,
    SlowDown,
    Done(Tokens),
}

/// What a kubeconfig needs of a cluster (`GET {issuer}/kubernetes/clusters/{id}`).
#[derive(Debug, Clone, Deserialize)]
pub struct ClusterInfo {
    pub id: String,
    pub name: String,
    pub api_server: String,
    #[serde(default)]
    pub ca_pem: Option<String>,
    pub audience: String,
    pub issuer: String,
    #[serde(default)]
    pub login_client_id: Option<String>,
}

#[derive(Deserialize)]
struct OAuthErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// Whether `url` may carry tokens: https, or http to this machine (tests, a local
/// issuer).
pub fn check_issuer_url(url: &str) -> Result<(), ClientError> {
    let loopback = |rest: &str| {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host = host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                h
            } else {
                host
            }
        });
        matches!(host, "127.0.0.1" | "[::1]" | "localhost")
    };
    match url.split_once("://") {
        Some(("https", rest)) if !rest.is_empty() => Ok(()),
        Some(("http", rest)) if loopback(rest) => Ok(()),
        _ => Err(ClientError::Usage(format!(
            "the issuer {url:?} must be an https URL (http only on loopback)"
        ))),
    }
}

pub struct Provider {
    http: reqwest::Client,
    issuer: String,
}

impl Provider {
    /// A client of `issuer`, trusting the system's CAs and `ca_pem` (PEM certificates).
    pub fn new(issuer: &str, ca_pem: Option<&[u8]>) -> Result<Provider, ClientError> {
        check_issuer_url(issuer)?;
        let mut b = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("limen-login/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                ClientError::Usage(format!("the CA file holds no PEM certificates: {e}"))
            })?;
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        let http = b
            .build()
            .map_err(|e| ClientError::Internal(format!("cannot set up HTTPS: {e}")))?;
        Ok(Provider {
            http,
            issuer: issuer.trim_end_matches('/').to_string(),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    fn unreachable(&self, e: reqwest::Error) -> ClientError {
        ClientError::Unreachable(format!("cannot reach the issuer {}: {e}", self.issuer))
    }

    /// POSTs a form to `{issuer}{path}`; the JSON answer, or the OAuth error.
    async fn form<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        form: &[(&str, &str)],
    ) -> Result<T, ClientError> {
        let resp = self
            .http
            .post(format!("{}{path}", self.issuer))
            .form(form)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| self.unreachable(e))?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|e| {
                ClientError::Unreachable(format!(
                    "the issuer's answer to {path} is not what OAuth 2.0 says ({e})"
                ))
            });
        }
        match serde_json::from_slice::<OAuthErrorBody>(&body) {
            Ok(err) => Err(ClientError::Refused {
                error: err.error,
                description: err.error_description.unwrap_or_default(),
            }),
            Err(_) => Err(ClientError::Unreachable(format!(
                "the issuer answered {path} with HTTP {status}"
            ))),
        }
    }

    pub async fn start_device_login(
        &self,
        client_id: &str,
        scope: &str,
    ) -> Result<DeviceStart, ClientError> {
        self.form(
            "/oauth2/device_authorization",
            &[("client_id", client_id), ("scope", scope)],
        )
        .await
    }

    pub async fn poll_device_login(
        &self,
        client_id: &str,
        device_code: &str,
    ) -> Result<Poll, ClientError> {
        let polled = self
            .form(
                "/oauth2/token",
                &[
                    ("grant_type", GRANT_DEVICE_CODE),
                    ("client_id", client_id),
                    ("device_code", device_code),
                ],
            )
            .await;
        match polled {
            Ok(t) => Ok(Poll::Done(t)),
            Err(ClientError::Refused { error, .. }) if error == "authorization_pending" => {
                Ok(Poll::Pending)
            }
            Err(ClientError::Refused { error, .. }) if error == "slow_down" => Ok(Poll::SlowDown),
            Err(e) => Err(e),
        }
    }

    pub async fn refresh(
        &self,
        client_id: &str,
        refresh_token: &str,
    ) -> Result<Tokens, ClientError> {
        self.form(
            "/oauth2/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", client_id),
                ("refresh_token", refresh_token),
            ],
        )
        .await
    }

    /// An access token for an application credential's user (the credential is the client).
    pub async fn application_credential_login(
        &self,
        id: &str,
        secret: &str,
    ) -> Result<Tokens, ClientError> {
        self.form(
            "/oauth2/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("client_secret", secret),
            ],
        )
        .await
    }

    /// A cluster token for `audience`, speaking for `project` where the access token
    /// names none.
    pub async fn exchange(
        &self,
        client_id: &str,
        access_token: &str,
        audience: &str,
        project: Option<&str>,
    ) -> Result<Tokens, ClientError> {
        let scope = project.map(|p| format!("project:{p}"));
        let mut form = vec![
            ("grant_type", GRANT_TOKEN_EXCHANGE),
            ("client_id", client_id),
            ("subject_token", access_token),
            ("subject_token_type", TOKEN_TYPE_ACCESS),
            ("audience", audience),
        ];
        if let Some(s) = &scope {
            form.push(("scope", s));
        }
        self.form("/oauth2/token", &form).await
    }

    /// Revokes a refresh token (and so its login) at the issuer.
    pub async fn revoke(&self, client_id: &str, token: &str) -> Result<(), ClientError> {
        let resp = self
            .http
            .post(format!("{}/oauth2/revoke", self.issuer))
            .form(&[("client_id", client_id), ("token", token)])
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(ClientError::Unreachable(format!(
                "the issuer answered the revocation with HTTP {}",
                resp.status()
            )))
        }
    }

    pub async fn cluster(&self, id: &str) -> Result<ClusterInfo, ClientError> {
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(ClientError::Usage(format!("{id:?} is not a cluster id")));
        }
        let resp = self
            .http
            .get(format!("{}/kubernetes/clusters/{id}", self.issuer))
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.map_err(|e| self.unreachable(e))?;
        if !status.is_success() {
            let message = body["error"]["message"].as_str().unwrap_or("no message");
            return Err(ClientError::Usage(format!(
                "the issuer has no cluster {id} to connect to (HTTP {status}: {message})"
            )));
        }
        serde_json::from_value(body["cluster"].clone()).map_err(|e| {
            ClientError::Unreachable(format!(
                "the issuer's cluster description is incomplete ({e})"
            ))
        })
    }
}

/// The `preferred_username` of an ID token, for messages only (not verified: it came
/// straight from the issuer's token endpoint and decides nothing).
pub fn id_token_username(id_token: &str) -> Option<String> {
    use base64::Engine;
    let payload = id_token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims["preferred_username"].as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_travel_over_tls_or_stay_on_this_machine() {
        for good in [
            "https://id.example.com",
            "https://id.example.com:8443/limen",
            "http://127.0.0.1:5000",
            "http://localhost",
            "http://[::1]:80",
        ] {
            assert!(check_issuer_url(good).is_ok(), "{good}");
        }
        for bad in [
            "http://id.example.com",
            "http://127.0.0.1.example.com",
            "ftp://id",
            "https://",
            "id.example.com",
        ] {
            assert!(check_issuer_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_the_username_of_an_id_token() {
        use base64::Engine;
        let enc = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let token = format!(
            "{}.{}.sig",
            enc("{}"),
            enc(r#"{"preferred_username":"alice"}"#)
        );
        assert_eq!(id_token_username(&token).as_deref(), Some("alice"));
        assert_eq!(id_token_username("garbage"), None);
    }
}

//! `limen login` and `limen logout`: the decisions of the credential plugin.
//!
//! A call under kubectl finds, in this order: a cluster token in the cache that is fresh
//! (handed out without any network call); else the account's access token, refreshed or
//! renewed if it is about to end, exchanged for a new cluster token; else a new login
//! (the device flow, or the application credential). A fresh token is answered without
//! the lock; everything else happens under the account's lock, so parallel kubectl runs
//! share one login and one exchange. kubectl only asks again before the expiry it was
//! told when the API server answered 401; a kubectl process that asks twice for a fresh
//! token therefore gets a new one.

use crate::cache::{AccountCache, AccountLock, CacheRoot, ClusterEntry, LoginKind, LoginRecord};
use crate::exec::{exec_credential, ExecInfo, EXEC_V1};
use crate::provider::{id_token_username, Poll, Provider, Tokens};
use crate::{unix_now, ClientError};
use std::time::Duration;

/// How long an access token must still live to be exchanged (at most half its life), so
/// a cluster token made from it is not cut short.
const MIN_SUBJECT_LIFE: i64 = 120;

/// What a device login asks for: the person's name, for messages.
const DEVICE_SCOPE: &str = "openid profile";

/// When the device flow may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceLogin {
    /// When someone is there to see the code: kubectl says the call is interactive, or
    /// stderr is a terminal.
    Auto,
    Always,
    Never,
}

/// An application credential to log in with (non-interactive use, CI).
#[derive(Debug, Clone)]
pub struct AppCredential {
    pub id: String,
    pub secret: String,
}

impl AppCredential {
    /// Reads what `openstack application credential create -f json` prints (`id` and
    /// `secret`), or `<id>:<secret>` on one line.
    pub fn parse(text: &str) -> Result<AppCredential, ClientError> {
        let text = text.trim();
        let pair = match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v) => v["id"]
                .as_str()
                .zip(v["secret"].as_str())
                .map(|(i, s)| (i.to_string(), s.to_string())),
            Err(_) => text
                .split_once(':')
                .map(|(i, s)| (i.to_string(), s.to_string())),
        };
        match pair {
            Some((id, secret)) if !id.is_empty() && !secret.is_empty() => Ok(AppCredential { id, secret }),
            _ => Err(ClientError::Usage(
                "the application credential file holds neither JSON with id and secret nor <id>:<secret>".into(),
            )),
        }
    }
}

/// Everything a `limen login` call knows.
#[derive(Debug, Clone)]
pub struct LoginOptions {
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub account: String,
    pub audience: Option<String>,
    pub project: Option<String>,
    pub application_credential: Option<AppCredential>,
    pub device_login: DeviceLogin,
    pub open_browser: bool,
    pub cache: CacheRoot,
    pub ca_pem: Option<Vec<u8>>,
    /// Seconds before a cluster token's expiry that it is renewed.
    pub leeway: i64,
    /// `KUBERNETES_EXEC_INFO`, when kubectl runs the plugin.
    pub exec_info: Option<ExecInfo>,
    /// The kubectl process that runs the plugin.
    pub kubectl_pid: Option<u32>,
    pub stderr_is_terminal: bool,
}

/// What the call settled: the issuer, client, audience and project.
struct Target {
    issuer: String,
    client_id: String,
    audience: Option<String>,
}

impl LoginOptions {
    fn target(&self) -> Result<Target, ClientError> {
        let config = |k: &str| self.exec_info.as_ref().and_then(|i| i.config_text(k));
        let issuer = self
            .issuer
            .clone()
            .or_else(|| config("issuer"))
            .ok_or_else(|| {
                ClientError::Usage(
                    "which issuer? pass --issuer (or let `limen kubeconfig` write the kubeconfig)"
                        .into(),
                )
            })?;
        let client_id = self
            .client_id
            .clone()
            .or_else(|| config("client_id"))
            .ok_or_else(|| {
                ClientError::Usage(
                    "which OAuth client? pass --client-id (the cluster names none)".into(),
                )
            })?;
        let audience = config("audience").or_else(|| self.audience.clone());
        if audience.is_none() && self.exec_info.is_some() {
            return Err(ClientError::Usage(
                "which cluster? kubectl passed no cluster audience (the kubeconfig's cluster \
                 needs the client.authentication.k8s.io/exec extension and the user \
                 provideClusterInfo: true, as `limen kubeconfig` writes them), and there is \
                 no --audience"
                    .into(),
            ));
        }
        Ok(Target {
            issuer: issuer.trim_end_matches('/').to_string(),
            client_id,
            audience,
        })
    }

    fn device_allowed(&self) -> bool {
        match self.device_login {
            DeviceLogin::Always => true,
            DeviceLogin::Never => false,
            DeviceLogin::Auto => {
                self.exec_info.as_ref().and_then(|i| i.interactive) == Some(true)
                    || self.stderr_is_terminal
            }
        }
    }

    fn api_version(&self) -> &'static str {
        self.exec_info.as_ref().map_or(EXEC_V1, |i| i.api_version)
    }
}

/// Runs `limen login`: the ExecCredential to print on stdout (with an audience), or
/// nothing (a login only). Messages go to `say` (stderr).
pub fn login(opts: &LoginOptions, say: &dyn Fn(&str)) -> Result<Option<String>, ClientError> {
    let target = opts.target()?;
    let account = opts.cache.account(&target.issuer, &opts.account);
    if let Cached::Answer(a) = cached(opts, &target, &account)? {
        return Ok(Some(a));
    }
    let lock = account.lock()?;
    // Another kubectl may have renewed it while this one waited for the lock.
    match cached(opts, &target, &account)? {
        Cached::Answer(a) => return Ok(Some(a)),
        Cached::Refused => say("limen: the cluster refused the cached token; getting a new one"),
        Cached::Missing => {}
    }
    // Only now is the network needed.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ClientError::Internal(format!("cannot start the runtime: {e}")))?;
    rt.block_on(renew(opts, &target, &lock, say))
}

async fn renew(
    opts: &LoginOptions,
    target: &Target,
    lock: &AccountLock,
    say: &dyn Fn(&str),
) -> Result<Option<String>, ClientError> {
    let provider = Provider::new(&target.issuer, opts.ca_pem.as_deref())?;
    let Some(audience) = &target.audience else {
        let record = account_login(opts, target, &provider, lock, say).await?;
        say(&format!(
            "limen: logged in to {} as {} (account {})",
            target.issuer,
            record
                .username
                .as_deref()
                .unwrap_or("the application credential's user"),
            opts.account
        ));
        return Ok(None);
    };
    // A login the issuer no longer honours (a password change ends it, say) is dropped
    // and made anew, once.
    for attempt in 0..2 {
        let record = account_login(opts, target, &provider, lock, say).await?;
        let exchanged = provider
            .exchange(
                &target.client_id,
                &record.access_token,
                audience,
                opts.project.as_deref(),
            )
            .await;
        match exchanged {
            Ok(t) => {
                let now = unix_now();
                let entry = ClusterEntry {
                    audience: audience.clone(),
                    project: opts.project.clone(),
                    token: t.access_token,
                    issued_at: now,
                    expires_at: now + t.expires_in,
                };
                lock.save_cluster(&entry)?;
                if let Some(pid) = opts.kubectl_pid {
                    lock.account()
                        .remember_served(audience, opts.project.as_deref(), pid)?;
                }
                return Ok(Some(credential(opts, &entry)));
            }
            Err(e) if attempt == 0 && e.is_invalid_grant() => {
                lock.forget_all()?;
            }
            Err(e) => return Err(e),
        }
    }
    Err(ClientError::LoginNeeded(
        "the issuer refuses every new login for this cluster".into(),
    ))
}

/// What the cache holds for this call.
enum Cached {
    /// A fresh cluster token, recorded as handed to this kubectl: the ExecCredential.
    Answer(String),
    /// A fresh one that this kubectl had already: the cluster refused it.
    Refused,
    Missing,
}

/// The cached answer, if there is a fresh one (no network, no lock).
fn cached(
    opts: &LoginOptions,
    target: &Target,
    account: &AccountCache,
) -> Result<Cached, ClientError> {
    let Some(aud) = &target.audience else {
        return Ok(Cached::Missing);
    };
    let project = opts.project.as_deref();
    let Some(entry) = account
        .peek_cluster(aud, project)
        .filter(|e| e.fresh(unix_now(), opts.leeway))
    else {
        return Ok(Cached::Missing);
    };
    if let Some(pid) = opts.kubectl_pid {
        if account.served(aud, project, pid) {
            return Ok(Cached::Refused);
        }
        account.remember_served(aud, project, pid)?;
    }
    Ok(Cached::Answer(credential(opts, &entry)))
}

fn credential(opts: &LoginOptions, entry: &ClusterEntry) -> String {
    exec_credential(
        opts.api_version(),
        &entry.token,
        entry.renew_at(opts.leeway),
    )
}

/// Whether `record` is a login at this issuer with this client, or with this
/// application credential.
fn same_login(record: &LoginRecord, target: &Target, opts: &LoginOptions) -> bool {
    let same_kind = match (&record.kind, &opts.application_credential) {
        (LoginKind::Device, None) => record.client_id == target.client_id,
        (LoginKind::ApplicationCredential { id }, Some(c)) => *id == c.id,
        _ => false,
    };
    same_kind && record.issuer == target.issuer
}

fn lives_long_enough(record: &LoginRecord, now: i64) -> bool {
    record.access_expires_at - now > MIN_SUBJECT_LIFE.min(record.access_life() / 2)
}

/// The account's login, renewed or made as needed, and saved.
async fn account_login(
    opts: &LoginOptions,
    target: &Target,
    provider: &Provider,
    lock: &AccountLock,
    say: &dyn Fn(&str),
) -> Result<LoginRecord, ClientError> {
    let now = unix_now();
    let cached = lock.login().filter(|r| same_login(r, target, opts));
    if let Some(r) = &cached {
        if lives_long_enough(r, now) {
            return Ok(r.clone());
        }
    }
    let record = match &opts.application_credential {
        Some(c) => {
            let t = provider
                .application_credential_login(&c.id, &c.secret)
                .await?;
            new_record(
                opts,
                target,
                LoginKind::ApplicationCredential { id: c.id.clone() },
                t,
                None,
            )
        }
        None => {
            let refreshed = match cached.as_ref().and_then(|r| r.refresh_token.clone()) {
                Some(refresh) => match provider.refresh(&target.client_id, &refresh).await {
                    Ok(t) => Some(new_record(
                        opts,
                        target,
                        LoginKind::Device,
                        t,
                        cached.as_ref().and_then(|r| r.username.clone()),
                    )),
                    Err(e) if e.is_invalid_grant() => None,
                    Err(e) => return Err(e),
                },
                None => None,
            };
            match refreshed {
                Some(r) => r,
                None => {
                    lock.forget_all()?;
                    device_login(opts, target, provider, say).await?
                }
            }
        }
    };
    lock.save_login(&record)?;
    Ok(record)
}

impl LoginRecord {
    /// How long its access token was given for.
    fn access_life(&self) -> i64 {
        self.access_expires_at - self.access_issued_at
    }
}

fn new_record(
    opts: &LoginOptions,
    target: &Target,
    kind: LoginKind,
    t: Tokens,
    username: Option<String>,
) -> LoginRecord {
    let now = unix_now();
    LoginRecord {
        issuer: target.issuer.clone(),
        account: opts.account.clone(),
        client_id: target.client_id.clone(),
        kind,
        username: t
            .id_token
            .as_deref()
            .and_then(id_token_username)
            .or(username),
        access_token: t.access_token,
        access_issued_at: now,
        access_expires_at: now + t.expires_in,
        refresh_token: t.refresh_token,
    }
}

async fn device_login(
    opts: &LoginOptions,
    target: &Target,
    provider: &Provider,
    say: &dyn Fn(&str),
) -> Result<LoginRecord, ClientError> {
    if !opts.device_allowed() {
        return Err(ClientError::LoginNeeded(format!(
            "account {} is not logged in to {}, and no one is here to log in: run \
             `limen login --issuer {} --client-id {} --account {}` at a terminal, or give an \
             application credential (--application-credential-file, or \
             LIMEN_APPLICATION_CREDENTIAL_ID and _SECRET)",
            opts.account, target.issuer, target.issuer, target.client_id, opts.account
        )));
    }
    let start = provider
        .start_device_login(&target.client_id, DEVICE_SCOPE)
        .await?;
    let link = start
        .verification_uri_complete
        .clone()
        .unwrap_or_else(|| start.verification_uri.clone());
    say(&format!(
        "limen: to log in to {} (account {}), open\n\n    {link}\n\nand check that it shows the code {}. Waiting for you...",
        target.issuer, opts.account, start.user_code
    ));
    if opts.open_browser {
        open_browser(&link);
    }
    let deadline = unix_now() + start.expires_in;
    let mut interval = start.interval.max(1);
    loop {
        tokio::time::sleep(Duration::from_secs(interval)).await;
        if unix_now() > deadline {
            return Err(ClientError::LoginNeeded(
                "the device login expired before it was approved; run the command again".into(),
            ));
        }
        match provider
            .poll_device_login(&target.client_id, &start.device_code)
            .await
        {
            Ok(Poll::Pending) => {}
            Ok(Poll::SlowDown) => interval += 5,
            Ok(Poll::Done(t)) => {
                let record = new_record(opts, target, LoginKind::Device, t, None);
                say(&format!(
                    "limen: logged in as {}",
                    record.username.as_deref().unwrap_or("(unknown)")
                ));
                return Ok(record);
            }
            Err(ClientError::Refused { error, .. }) if error == "access_denied" => {
                return Err(ClientError::LoginNeeded("the login was denied".into()))
            }
            Err(ClientError::Refused { error, .. }) if error == "expired_token" => {
                return Err(ClientError::LoginNeeded(
                    "the device login expired before it was approved; run the command again".into(),
                ))
            }
            Err(e) => return Err(e),
        }
    }
}

/// Opens `url` in the desktop's browser, if there is one; the link is printed anyway.
fn open_browser(url: &str) {
    let _ = std::process::Command::new("xdg-open")
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

/// Runs `limen logout`: forgets the accounts' logins and cluster tokens, and asks the
/// issuer to end each device login. Returns what was done, a line each.
pub fn logout(
    cache: &CacheRoot,
    which: Option<(&str, &str)>,
    ca_pem: Option<&[u8]>,
) -> Result<Vec<String>, ClientError> {
    let accounts = match which {
        Some((issuer, account)) => vec![cache.account(issuer.trim_end_matches('/'), account)],
        None => cache.accounts(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ClientError::Internal(format!("cannot start the runtime: {e}")))?;
    let mut done = Vec::new();
    for account in accounts {
        if !account.dir().exists() {
            continue;
        }
        let lock = account.lock()?;
        let login = lock.login();
        lock.forget_all()?;
        let Some(r) = login else {
            done.push(format!(
                "forgot the cluster tokens in {}",
                account.dir().display()
            ));
            continue;
        };
        let revoked = match &r.refresh_token {
            Some(t) => rt.block_on(async {
                Provider::new(&r.issuer, ca_pem)?
                    .revoke(&r.client_id, t)
                    .await
            }),
            None => Ok(()),
        };
        let note = match revoked {
            Ok(()) if r.refresh_token.is_some() => ", and the issuer ended the login".to_string(),
            Ok(()) => String::new(),
            Err(e) => format!(" (the issuer could not end the login: {e})"),
        };
        done.push(format!(
            "logged out account {} of {}{note}",
            r.account, r.issuer
        ));
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn application_credentials_come_as_openstack_prints_them_or_as_a_pair() {
        let c = AppCredential::parse(r#"{"id": "a1", "secret": "s3", "name": "ci"}"#).unwrap();
        assert_eq!((c.id.as_str(), c.secret.as_str()), ("a1", "s3"));
        let c = AppCredential::parse("a1:s:3\n").unwrap();
        assert_eq!((c.id.as_str(), c.secret.as_str()), ("a1", "s:3"));
        for bad in ["", "a1", "{\"id\": \"a1\"}", ":s"] {
            assert!(AppCredential::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_access_token_near_its_end_is_renewed_first() {
        let record = |issued: i64, expires: i64| LoginRecord {
            issuer: "i".into(),
            account: "a".into(),
            client_id: "c".into(),
            kind: LoginKind::Device,
            access_token: "t".into(),
            access_issued_at: issued,
            access_expires_at: expires,
            refresh_token: None,
            username: None,
        };
        let hour = record(0, 3600);
        assert!(lives_long_enough(&hour, 3400));
        assert!(!lives_long_enough(&hour, 3480));
        // A 60 s token is good while it has more than half its life.
        let short = record(0, 60);
        assert!(lives_long_enough(&short, 20));
        assert!(!lives_long_enough(&short, 31));
    }
}

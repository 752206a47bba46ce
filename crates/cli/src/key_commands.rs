//! `limen keys …`: Fernet, credential, JWS and OpenID Provider keys, and the key-encryption
//! key of keys kept in the database.

use crate::error::{CliError, CliResult, Doing};
use crate::init_logging;
use clap::Subcommand;
use limen_core::authz::Authorized;
use limen_core::clock::{OsRandom, SystemClock};
use limen_crypto::jws::NewKeyPair;
use limen_crypto::{JwsKeyRepository, Kek, KeyRepository, OidcKeyRepository};
use limen_server::keys;
use limen_server::Config;
use limen_store::{KeyKind, SqlStore};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Subcommand)]
pub(crate) enum KeysKind {
    /// Credential encryption keys (Keystone-compatible repository, or the database with
    /// [keys] source = "database"). Rotating also re-encrypts every stored credential with
    /// the new primary key.
    #[command(
        after_help = "Examples:\n  limen keys credential setup\n  limen keys credential rotate"
    )]
    Credential {
        #[command(subcommand)]
        action: KeyAction,
    },
    /// Fernet token keys (Keystone-compatible repository: 0 staged, highest primary; or
    /// the database, sealed with the key-encryption key, with [keys] source = "database").
    #[command(
        after_help = "Examples:\n  limen keys fernet setup --data-dir /var/lib/limen\n  limen keys fernet rotate"
    )]
    Fernet {
        #[command(subcommand)]
        action: KeyAction,
    },
    /// JWS token keys (Keystone's layout): this node's ES256 signing key in
    /// <private>/private.pem, trusted public keys (this node's and the other nodes') in
    /// <public>/. Used when [token] provider or accept names jws, and always with [keys]
    /// source = "database", where public keys are also published through the database.
    #[command(
        after_help = "Examples:\n  limen keys jws setup\n  limen keys jws rotate\n  limen keys jws list\n  limen keys jws retire 3f2a9c0d1e2b4a5f\n\nAfter a rotation the old public key stays trusted, so tokens signed before keep\nvalidating. With [keys] source = \"files\", copy the new public key to every other node's\npublic repository, and remove the old one everywhere once the tokens it signed have\nexpired. With \"database\", rotate publishes the new public key through the database and\nwaits a few seconds before signing with it; retire the old one once its tokens expired."
    )]
    Jws {
        #[command(subcommand)]
        action: JwsKeyAction,
    },
    /// Signing keys of the OpenID Provider: slots of one RS256 and one ES256 key in
    /// [oidc] key_repository (default <data-dir>/oidc-keys), or in the database sealed
    /// with the KEK with [keys] source = "database". 0 is staged (published before it
    /// signs), the highest number is primary, the others are retired and stay published
    /// for [oidc] keep_retired_keys_for seconds, until their tokens expired.
    #[command(
        after_help = "Examples:\n  limen keys oidc setup\n  limen keys oidc rotate\n  limen keys oidc list\n\nThe keys are served as a JWK set at /oauth2/jwks. With files, rotate on one node and\ncopy the repository to the others (as the Fernet keys); a node picks up changed files\nwithin a second. With the database, every node follows a change within a second."
    )]
    Oidc {
        #[command(subcommand)]
        action: OidcKeyAction,
    },
    /// The key-encryption key (KEK) that seals key material kept in the database.
    #[command(
        after_help = "Examples:\n  limen keys kek generate --output /etc/limen/kek   # then [keys] kek_file = \"/etc/limen/kek\"\n  export LIMEN_KEK=$(limen keys kek generate)\n  limen keys kek reseal\n\nEvery node of a cloud needs the same KEK. Keep it out of the database and its backups.\nTo replace it: generate a new one, configure it on every node as kek_file with the old\none in previous_kek_files, restart the nodes one by one, run `limen keys kek reseal`,\nthen remove previous_kek_files."
    )]
    Kek {
        #[command(subcommand)]
        action: KekAction,
    },
}

#[derive(Subcommand)]
pub(crate) enum KekAction {
    /// Make a new random KEK (32 bytes, base64): printed, or written to a new file
    /// readable by its owner only (0600).
    Generate {
        /// Write it to this file (which must not exist) instead of printing it.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Re-seal every key in the database that an earlier KEK ([keys]
    /// previous_kek_files) sealed with the current KEK. Run it once every node has the new
    /// KEK configured (with the old one as previous); then drop previous_kek_files.
    #[command(after_help = "Example:\n  limen keys kek reseal")]
    Reseal,
}

#[derive(Subcommand)]
pub(crate) enum OidcKeyAction {
    /// Create a staged and a primary slot, if the repository holds none.
    #[command(after_help = "Example:\n  limen keys oidc setup --data-dir /var/lib/limen")]
    Setup,
    /// Promote the staged slot to primary, stage a new one, retire the old primary, and
    /// remove retired slots older than [oidc] keep_retired_keys_for.
    #[command(after_help = "Example:\n  limen keys oidc rotate")]
    Rotate,
    /// Show every slot: number, role, key ids (RS256, ES256), when it was retired.
    #[command(after_help = "Example:\n  limen keys oidc list")]
    List,
}

#[derive(Subcommand)]
pub(crate) enum JwsKeyAction {
    /// Create this node's key pair, if it has none.
    #[command(after_help = "Example:\n  limen keys jws setup --data-dir /var/lib/limen")]
    Setup,
    /// Sign with a new key pair from now on; the old public key stays trusted. With
    /// [keys] source = "database" the new public key is published first and signing
    /// starts only once every node trusts it (a few seconds).
    #[command(after_help = "Example:\n  limen keys jws rotate")]
    Rotate,
    /// List the public keys published in the database (database mode).
    List,
    /// Withdraw a published public key (database mode): tokens it signed stop validating
    /// on the nodes that do not hold it as a file.
    #[command(after_help = "Example:\n  limen keys jws retire 3f2a9c0d1e2b4a5f")]
    Retire {
        /// The key's fingerprint (see `limen keys jws list`).
        fingerprint: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum KeyAction {
    /// Create the repository with a staged and a primary key, if it holds no keys.
    #[command(after_help = "Example:\n  limen keys fernet setup --data-dir /var/lib/limen")]
    Setup {
        /// Keys to keep, staged included [default: fernet_tokens.max_active_keys, 3].
        #[arg(long, value_name = "N")]
        max_active_keys: Option<usize>,
    },
    /// Promote the staged key to primary, stage a new key, drop the oldest beyond N.
    #[command(after_help = "Example:\n  limen keys fernet rotate --max-active-keys 3")]
    Rotate {
        /// Keys to keep, staged included [default: fernet_tokens.max_active_keys, 3].
        #[arg(long, value_name = "N")]
        max_active_keys: Option<usize>,
    },
    /// Move a Keystone key repository (files 0, 1, 2, …) into the database ([keys] source
    /// = "database"), sealed with the key-encryption key: tokens it issued stay valid.
    #[command(
        after_help = "Example:\n  limen keys fernet import /etc/keystone/fernet-keys\n  limen keys credential import /etc/keystone/credential-keys"
    )]
    Import {
        /// The key repository directory.
        dir: PathBuf,
        /// Replace keys the database already holds (invalidates the tokens they issued).
        #[arg(long)]
        replace: bool,
    },
}

/// The store and KEK for `[keys] source = "database"` commands.
pub(crate) async fn open_key_store(config: &Config) -> CliResult<(SqlStore, Kek)> {
    let kek = keys::load_kek(config)?;
    let store = SqlStore::open(&config.database_url()).await?;
    Ok((store, kek))
}

pub(crate) fn needs_database(config: &Config, what: &str) -> CliResult<()> {
    if keys::is_database(config) {
        Ok(())
    } else {
        Err(CliError::usage(format!(
            "{what} needs [keys] source = \"database\" (LIMEN_KEYS__SOURCE=database)"
        )))
    }
}

/// `limen keys kek generate`.
pub(crate) async fn kek_keys(config: &Config, action: KekAction) -> CliResult<()> {
    let output = match action {
        KekAction::Generate { output } => output,
        KekAction::Reseal => {
            needs_database(config, "re-sealing keys")?;
            let (store, kek) = open_key_store(config).await?;
            let n = keys::reseal_keys(&store, &kek).await?;
            println!(
                "re-sealed {n} keys with key-encryption key {}; every stored key is now sealed \
                 with it, so previous_kek_files can go",
                kek.id()
            );
            return Ok(());
        }
    };
    let text = Kek::generate();
    let id = Kek::from_base64(&text)?.id().to_string();
    match output {
        None => println!("{text}"),
        Some(path) => {
            let mut opts = std::fs::OpenOptions::new();
            // Never overwrite: losing a KEK loses every key it sealed.
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts
                .open(&path)
                .doing(|| format!("cannot write {}", path.display()))?;
            std::io::Write::write_all(&mut f, format!("{text}\n").as_bytes())
                .and_then(|_| f.sync_all())
                .doing(|| format!("cannot write {}", path.display()))?;
            println!("wrote key-encryption key {id} to {}", path.display());
        }
    }
    Ok(())
}

/// `limen keys jws setup|rotate|list|retire`.
pub(crate) async fn oidc_keys(config: &Config, action: OidcKeyAction) -> CliResult<()> {
    let repo = OidcKeyRepository::new(config.oidc_key_repository());
    let database = if keys::is_database(config) {
        Some(open_key_store(config).await?)
    } else {
        None
    };
    let place = match &database {
        Some(_) => "the database".to_string(),
        None => repo.dir().display().to_string(),
    };
    match action {
        OidcKeyAction::Setup => {
            let created = match &database {
                Some((store, kek)) => keys::setup_oidc_keys(store, kek).await?,
                None => repo.setup()?,
            };
            if created {
                println!("created OIDC signing keys in {place} (0 staged, 1 primary)");
            } else {
                println!("OIDC signing keys already exist in {place}");
            }
        }
        OidcKeyAction::Rotate => {
            let keep = i64::try_from(config.oidc.keep_retired_keys_for).unwrap_or(i64::MAX);
            let (now, keep) = (
                time::OffsetDateTime::now_utc(),
                time::Duration::seconds(keep),
            );
            let primary = match &database {
                Some((store, kek)) => keys::rotate_oidc_keys(store, kek, now, keep).await?,
                None => repo.rotate(now, keep)?,
            };
            println!("rotated OIDC signing keys in {place}: {primary} is primary");
        }
        OidcKeyAction::List => {
            let slots = match &database {
                Some((store, kek)) => keys::list_oidc_keys(store, kek).await?,
                None => repo.list()?,
            };
            for slot in slots {
                let retired = slot
                    .retired_at
                    .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
                    .and_then(|t| {
                        t.format(&time::format_description::well_known::Rfc3339)
                            .ok()
                    })
                    .map(|t| format!(" retired {t}"))
                    .unwrap_or_default();
                println!(
                    "{} {} rs256={} es256={}{retired}",
                    slot.number, slot.role, slot.kids[0], slot.kids[1]
                );
            }
        }
    }
    Ok(())
}

pub(crate) async fn jws_keys(config: &Config, action: JwsKeyAction) -> CliResult<()> {
    let (private, public) = config.jws_key_repositories();
    let repo = JwsKeyRepository::new(private, public);
    let database = keys::is_database(config);
    let node = keys::node_name(config);
    match action {
        JwsKeyAction::Setup => {
            if repo.setup()? {
                println!(
                    "created JWS key pair: {} and a public key in {}",
                    repo.private_key_path().display(),
                    repo.public_dir().display()
                );
            } else {
                println!(
                    "JWS key pair {} already exists",
                    repo.private_key_path().display()
                );
            }
            if database {
                let (store, _) = open_key_store(config).await?;
                if let Some(info) = repo.signing_public_key()? {
                    keys::publish_jws_key(&store, &info, &node).await?;
                    println!("published public key {} in the database", info.fingerprint);
                }
            }
        }
        JwsKeyAction::Rotate if database => {
            let (store, _) = open_key_store(config).await?;
            let pair = NewKeyPair::generate()?;
            repo.install_public(&pair)?;
            keys::publish_jws_key(&store, &pair.public, &node).await?;
            println!(
                "published new JWS public key {}; waiting {} s until every node trusts it",
                pair.public.fingerprint,
                keys::PROPAGATION.as_secs()
            );
            // Signing with the new key before the other nodes trust it would get this
            // node's next tokens rejected elsewhere.
            tokio::time::sleep(keys::PROPAGATION).await;
            repo.install_private(&pair)?;
            println!(
                "new JWS signing key {}; the old public key stays published (retire it with \
                 `limen keys jws retire` once the tokens it signed have expired)",
                repo.private_key_path().display()
            );
        }
        JwsKeyAction::Rotate => {
            let public = repo.rotate()?;
            println!(
                "new JWS signing key {}; its public key is {} (copy it to the other nodes)",
                repo.private_key_path().display(),
                public.display()
            );
        }
        JwsKeyAction::List => {
            needs_database(config, "listing published JWS keys")?;
            let store = SqlStore::open(&config.database_url()).await?;
            let own = repo
                .signing_public_key()
                .ok()
                .flatten()
                .map(|i| i.fingerprint);
            for k in store.jws_public_keys().await? {
                let mark = if own.as_deref() == Some(k.fingerprint.as_str()) {
                    "  (this node's signing key)"
                } else {
                    ""
                };
                println!(
                    "{}  {}  {}{mark}",
                    k.fingerprint,
                    k.published_at
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default(),
                    k.node
                );
            }
        }
        JwsKeyAction::Retire { fingerprint } => {
            needs_database(config, "retiring published JWS keys")?;
            let store = SqlStore::open(&config.database_url()).await?;
            if repo
                .signing_public_key()
                .ok()
                .flatten()
                .is_some_and(|i| i.fingerprint == fingerprint)
            {
                return Err(CliError::usage(format!(
                    "{fingerprint} is this node's signing key; rotate it first"
                )));
            }
            if store.retire_jws_key(&fingerprint).await? {
                println!("retired JWS public key {fingerprint}");
            } else {
                return Err(CliError::usage(format!(
                    "no published JWS public key {fingerprint}"
                )));
            }
        }
    }
    Ok(())
}

/// `limen keys fernet|credential setup|rotate|import`; rotating credential keys
/// re-encrypts what they protect.
pub(crate) async fn symmetric_keys(
    config: &Config,
    credential: bool,
    action: KeyAction,
) -> CliResult<()> {
    let (repo, default_max, kind) = if credential {
        (
            KeyRepository::new(config.credential_key_repository()),
            config.credential.max_active_keys,
            KeyKind::Credential,
        )
    } else {
        (
            KeyRepository::new(config.fernet_key_repository()),
            config.fernet_tokens.max_active_keys,
            KeyKind::Fernet,
        )
    };
    let database = if keys::is_database(config) {
        Some(open_key_store(config).await?)
    } else {
        None
    };
    let rotated = match (action, &database) {
        (KeyAction::Setup { .. }, Some((store, kek))) => {
            if keys::setup_keys(store, kek, kind).await? {
                println!("created {} keys in the database", kind.as_str());
            } else {
                println!("the database already holds {} keys", kind.as_str());
            }
            false
        }
        (KeyAction::Setup { max_active_keys }, None) => {
            if repo.setup(max_active_keys.unwrap_or(default_max))? {
                println!("created key repository {}", repo.dir().display());
            } else {
                println!("key repository {} already holds keys", repo.dir().display());
            }
            false
        }
        (KeyAction::Rotate { max_active_keys }, Some((store, kek))) => {
            let r =
                keys::rotate_keys(store, kek, kind, max_active_keys.unwrap_or(default_max)).await?;
            println!(
                "rotated the database's {} keys: primary key is now {}; keys {:?}",
                kind.as_str(),
                r.new_primary,
                r.numbers
            );
            true
        }
        (KeyAction::Rotate { max_active_keys }, None) => {
            let primary = repo.rotate(max_active_keys.unwrap_or(default_max))?;
            let keys = repo.key_numbers()?;
            println!(
                "rotated {}: primary key is now {primary}; keys {keys:?}",
                repo.dir().display()
            );
            true
        }
        (KeyAction::Import { dir, replace }, Some((store, kek))) => {
            let numbers = keys::import_keys(store, kek, kind, &dir, replace).await?;
            println!(
                "imported {} keys {numbers:?} from {} into the database",
                kind.as_str(),
                dir.display()
            );
            false
        }
        (KeyAction::Import { .. }, None) => {
            return Err(CliError::usage(format!(
                "import moves a key repository into the database: it needs [keys] source = \
                 \"database\". With files, point {} at the repository instead",
                if credential {
                    "credential.key_repository"
                } else {
                    "fernet_tokens.key_repository"
                }
            )))
        }
    };
    if rotated && credential {
        init_logging(config);
        let (limen, _) =
            limen_server::app::open_services(config, Arc::new(SystemClock), Arc::new(OsRandom))
                .await?;
        let n = limen
            .delegation()
            .reencrypt_credentials(&Authorized::operator_cli("limen:reencrypt_credentials"))
            .await?;
        println!("re-encrypted {n} credentials and OAuth1 secrets with the new primary key");
    }
    Ok(())
}

//! `limen`: the Limen identity service and its operator commands.

use clap::{Args, Parser, Subcommand};
use limen_core::bootstrap::BootstrapInput;
use limen_core::clock::{OsRandom, SystemClock};
use limen_crypto::{JwsKeyRepository, KeyRepository};
use limen_server::Config;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "limen",
    version,
    about = "Limen: a Keystone-compatible identity service (Identity API v3) for sovereign clouds",
    long_about = "Limen serves the OpenStack Identity API v3, so every OpenStack client works \
unchanged, from one binary with an embedded SQLite store (or PostgreSQL).\n\n\
Configuration comes from a TOML file (--config), then LIMEN_… environment variables \
(nested keys joined by __, e.g. LIMEN_TOKEN__EXPIRATION=7200), then command-line flags.",
    after_help = "Examples:\n  limen bootstrap --admin-password s3cret\n  limen serve\n  limen serve --database-url postgres://limen@db/limen --listen 0.0.0.0:5000"
)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Common {
    /// TOML configuration file.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory for the SQLite database and key repositories [default: ./limen-data].
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://USER:PASS@HOST:PORT/DB [default: SQLite in the data directory].
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the Identity API.
    #[command(
        after_help = "Examples:\n  limen serve\n  limen serve --listen 0.0.0.0:5000 --public-url https://keystone.example.com\n  limen serve --listen 127.0.0.1:0   # any free port; the address is printed"
    )]
    Serve {
        /// Address to listen on [default: 127.0.0.1:5000].
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Externally visible base URL used in links [default: from the Host header].
        #[arg(long, value_name = "URL")]
        public_url: Option<String>,
    },
    /// Create (idempotently) the default domain, the admin project, user and roles, the
    /// region, the identity service and its endpoints, and the Fernet and credential keys
    /// (and this node's JWS key pair when [token] provider or accept names jws).
    #[command(
        after_help = "Examples:\n  limen bootstrap --admin-password s3cret\n  LIMEN_ADMIN_PASSWORD=s3cret limen bootstrap --public-url https://keystone.example.com/v3 --region-id RegionOne"
    )]
    Bootstrap(BootstrapArgs),
    /// Manage key repositories.
    #[command(
        after_help = "Examples:\n  limen keys fernet setup\n  limen keys fernet rotate --max-active-keys 3\n  limen keys jws setup"
    )]
    Keys {
        #[command(subcommand)]
        kind: KeysKind,
    },
}

#[derive(Args)]
struct BootstrapArgs {
    /// Password of the admin user.
    #[arg(long, env = "LIMEN_ADMIN_PASSWORD", hide_env_values = true)]
    admin_password: String,
    /// Name of the admin user.
    #[arg(long, default_value = "admin")]
    admin_username: String,
    /// Name of the admin project.
    #[arg(long, default_value = "admin")]
    project_name: String,
    /// Public URL of the identity endpoint [default: http://<listen>/v3].
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// Internal URL of the identity endpoint [default: the public URL].
    #[arg(long, value_name = "URL")]
    internal_url: Option<String>,
    /// Admin URL of the identity endpoint [default: the public URL].
    #[arg(long, value_name = "URL")]
    admin_url: Option<String>,
    /// Region of the identity endpoints.
    #[arg(long, default_value = "RegionOne")]
    region_id: String,
}

#[derive(Subcommand)]
enum KeysKind {
    /// Credential encryption keys (Keystone-compatible repository). Rotating also
    /// re-encrypts every stored credential with the new primary key.
    #[command(
        after_help = "Examples:\n  limen keys credential setup\n  limen keys credential rotate"
    )]
    Credential {
        #[command(subcommand)]
        action: KeyAction,
    },
    /// Fernet token keys (Keystone-compatible repository: 0 staged, highest primary).
    #[command(
        after_help = "Examples:\n  limen keys fernet setup --data-dir /var/lib/limen\n  limen keys fernet rotate"
    )]
    Fernet {
        #[command(subcommand)]
        action: KeyAction,
    },
    /// JWS token keys (Keystone's layout): this node's ES256 signing key in
    /// <private>/private.pem, trusted public keys (this node's and the other nodes') in
    /// <public>/. Used when [token] provider or accept names jws.
    #[command(
        after_help = "Examples:\n  limen keys jws setup\n  limen keys jws rotate\n\nAfter a rotation the old public key stays trusted, so tokens signed before keep\nvalidating; copy the new public key to every other node's public repository, and\nremove the old one everywhere once the tokens it signed have expired."
    )]
    Jws {
        #[command(subcommand)]
        action: JwsKeyAction,
    },
}

#[derive(Subcommand)]
enum JwsKeyAction {
    /// Create this node's key pair, if it has none.
    #[command(after_help = "Example:\n  limen keys jws setup --data-dir /var/lib/limen")]
    Setup,
    /// Sign with a new key pair from now on; the old public key stays trusted.
    #[command(after_help = "Example:\n  limen keys jws rotate")]
    Rotate,
}

#[derive(Subcommand)]
enum KeyAction {
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
}

fn load_config(common: &Common) -> Result<Config, String> {
    let mut c = Config::load(common.config.as_deref()).map_err(|e| e.to_string())?;
    if let Some(d) = &common.data_dir {
        c.data_dir = d.clone();
    }
    if let Some(u) = &common.database_url {
        c.database_url = Some(u.clone());
    }
    Ok(c)
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LIMEN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if config.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn default_public_url(listen: &str) -> String {
    let host = listen.replace("0.0.0.0", "127.0.0.1");
    format!("http://{host}/v3")
}

async fn run(cli: Cli) -> Result<(), String> {
    let mut config = load_config(&cli.common)?;
    match cli.command {
        Command::Serve { listen, public_url } => {
            if let Some(l) = listen {
                config.listen = l;
            }
            if let Some(p) = public_url {
                config.public_url = Some(p);
            }
            init_logging(&config);
            limen_server::serve(config).await.map_err(|e| e.to_string())
        }
        Command::Bootstrap(args) => {
            init_logging(&config);
            let repo = KeyRepository::new(config.fernet_key_repository());
            limen_server::app::ensure_private_dir(&config.data_dir).map_err(|e| e.to_string())?;
            if repo
                .setup(config.fernet_tokens.max_active_keys)
                .map_err(|e| e.to_string())?
            {
                println!("created Fernet key repository {}", repo.dir().display());
            }
            let cred_repo = KeyRepository::new(config.credential_key_repository());
            if cred_repo
                .setup(config.credential.max_active_keys)
                .map_err(|e| e.to_string())?
            {
                println!(
                    "created credential key repository {}",
                    cred_repo.dir().display()
                );
            }
            if config.uses_jws() {
                let (private, public) = config.jws_key_repositories();
                let jws = JwsKeyRepository::new(private, public);
                if jws.setup().map_err(|e| e.to_string())? {
                    println!("created JWS key pair {}", jws.private_key_path().display());
                }
            }
            let (limen, _) = limen_server::app::open_services(
                &config,
                Arc::new(SystemClock),
                Arc::new(OsRandom),
            )
            .await
            .map_err(|e| e.to_string())?;
            let public_url = args
                .public_url
                .unwrap_or_else(|| default_public_url(&config.listen));
            let report = limen
                .bootstrap(BootstrapInput {
                    admin_username: args.admin_username.clone(),
                    admin_password: args.admin_password,
                    project_name: args.project_name.clone(),
                    region_id: args.region_id.clone(),
                    public_url: Some(public_url.clone()),
                    internal_url: args.internal_url,
                    admin_url: args.admin_url,
                })
                .await
                .map_err(|e| e.to_string())?;
            if report.created.is_empty() {
                println!("bootstrap: everything was already in place");
            }
            for c in &report.created {
                println!("bootstrap: created {c}");
            }
            println!(
                "\nLog in with the openstack CLI:\n  export OS_AUTH_URL={public_url}\n  export OS_IDENTITY_API_VERSION=3\n  export OS_USERNAME={}\n  export OS_PASSWORD=<the admin password>\n  export OS_PROJECT_NAME={}\n  export OS_USER_DOMAIN_NAME=Default\n  export OS_PROJECT_DOMAIN_NAME=Default\n  openstack token issue",
                args.admin_username, args.project_name
            );
            Ok(())
        }
        Command::Keys { kind } => {
            limen_server::app::ensure_private_dir(&config.data_dir).map_err(|e| e.to_string())?;
            match kind {
                KeysKind::Jws { action } => jws_keys(&config, action),
                KeysKind::Fernet { action } => symmetric_keys(&config, false, action).await,
                KeysKind::Credential { action } => symmetric_keys(&config, true, action).await,
            }
        }
    }
}

/// `limen keys jws setup|rotate`.
fn jws_keys(config: &Config, action: JwsKeyAction) -> Result<(), String> {
    let (private, public) = config.jws_key_repositories();
    let repo = JwsKeyRepository::new(private, public);
    match action {
        JwsKeyAction::Setup => {
            if repo.setup().map_err(|e| e.to_string())? {
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
        }
        JwsKeyAction::Rotate => {
            let public = repo.rotate().map_err(|e| e.to_string())?;
            println!(
                "new JWS signing key {}; its public key is {} (copy it to the other nodes)",
                repo.private_key_path().display(),
                public.display()
            );
        }
    }
    Ok(())
}

/// `limen keys fernet|credential setup|rotate`; rotating credential keys re-encrypts
/// what they protect.
async fn symmetric_keys(
    config: &Config,
    credential: bool,
    action: KeyAction,
) -> Result<(), String> {
    let (repo, default_max) = if credential {
        (
            KeyRepository::new(config.credential_key_repository()),
            config.credential.max_active_keys,
        )
    } else {
        (
            KeyRepository::new(config.fernet_key_repository()),
            config.fernet_tokens.max_active_keys,
        )
    };
    match action {
        KeyAction::Setup { max_active_keys } => {
            if repo
                .setup(max_active_keys.unwrap_or(default_max))
                .map_err(|e| e.to_string())?
            {
                println!("created key repository {}", repo.dir().display());
            } else {
                println!("key repository {} already holds keys", repo.dir().display());
            }
        }
        KeyAction::Rotate { max_active_keys } => {
            let primary = repo
                .rotate(max_active_keys.unwrap_or(default_max))
                .map_err(|e| e.to_string())?;
            let keys = repo.key_numbers().map_err(|e| e.to_string())?;
            println!(
                "rotated {}: primary key is now {primary}; keys {keys:?}",
                repo.dir().display()
            );
            if credential {
                init_logging(config);
                let (limen, _) = limen_server::app::open_services(
                    config,
                    Arc::new(SystemClock),
                    Arc::new(OsRandom),
                )
                .await
                .map_err(|e| e.to_string())?;
                let n = limen
                    .reencrypt_credentials()
                    .await
                    .map_err(|e| e.to_string())?;
                println!(
                    "re-encrypted {n} credentials and OAuth1 secrets with the new primary key"
                );
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("limen: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("limen: {e}");
            ExitCode::FAILURE
        }
    }
}

//! `limen`: the Limen identity service and its operator commands.

mod cluster;
mod error;
mod key_commands;
mod log_writer;
mod login;
mod oauth_client;
mod token_format;

use crate::error::{CliError, CliResult};
use clap::{Args, Parser, Subcommand};
use key_commands::{jws_keys, kek_keys, oidc_keys, open_key_store, symmetric_keys, KeysKind};
use limen_core::bootstrap::BootstrapInput;
use limen_core::clock::{OsRandom, SystemClock};
use limen_crypto::{JwsKeyRepository, KeyRepository};
use limen_server::keys;
use limen_server::Config;
use limen_store::KeyKind;
use log_writer::Batched;
use oauth_client::{oauth_client, OauthClientAction};
use std::path::PathBuf;
use token_format::{token_format, TokenFormatAction};

// glibc's malloc showed as a fifth of a validation's time under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
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
        /// Externally visible base URL used in links and WWW-Authenticate [default: each
        /// request's Host header, which the client chooses: set it in production].
        #[arg(long, value_name = "URL")]
        public_url: Option<String>,
    },
    /// Create (idempotently) the default domain, the admin project, user and roles, the
    /// region, the identity service and its endpoints, and the Fernet and credential keys
    /// (in the database, sealed, with [keys] source = "database") and this node's JWS key
    /// pair when [token] provider or accept names jws (always in database mode).
    #[command(
        after_help = "Examples:\n  limen bootstrap --admin-password s3cret\n  LIMEN_ADMIN_PASSWORD=s3cret limen bootstrap --public-url https://keystone.example.com/v3 --region-id RegionOne"
    )]
    Bootstrap(BootstrapArgs),
    /// Manage keys: Fernet, credential and JWS keys (in key repositories, or in the
    /// database with [keys] source = "database") and the key-encryption key.
    #[command(
        after_help = "Examples:\n  limen keys fernet setup\n  limen keys fernet rotate --max-active-keys 3\n  limen keys jws setup\n  limen keys kek generate --output /etc/limen/kek\n  LIMEN_KEYS__SOURCE=database limen keys fernet import /etc/keystone/fernet-keys"
    )]
    Keys {
        #[command(subcommand)]
        kind: KeysKind,
    },
    /// Show or change the token formats the whole cloud issues and accepts
    /// ([keys] source = "database"). The stored setting overrides every node's [token]
    /// provider/accept within about a second, without restarts.
    #[command(
        name = "token-format",
        after_help = "Examples (Fernet to JWS with no downtime):\n  limen token-format set --issue fernet --accept fernet,jws\n  limen token-format set --issue jws --accept fernet,jws\n  limen token-format set --issue jws --accept jws      # once the last Fernet token expired\n  limen token-format show\n  limen token-format clear                             # back to each node's configuration\n\nA format becomes the issued one only after every node has accepted it for a few\nseconds; the command refuses (or waits) otherwise."
    )]
    TokenFormat {
        #[command(subcommand)]
        action: TokenFormatAction,
    },
    /// Manage the OpenID Provider's OAuth clients (also at /v3/limen/oauth_clients, where
    /// a domain manager manages its own domain's).
    #[command(
        name = "oauth-client",
        after_help = "Examples:\n  limen oauth-client create --name ci --grant-type client_credentials\n  limen oauth-client create --name kubectl --public --grant-type urn:ietf:params:oauth:grant-type:device_code --grant-type refresh_token\n  limen oauth-client create --name portal --redirect-uri https://portal.example.com/cb\n  limen oauth-client list --domain default\n  limen oauth-client update CLIENT_ID --redirect-uri https://portal.example.com/cb2\n  limen oauth-client update CLIENT_ID --token-signing-alg ES256 --access-token-lifetime 600\n  limen oauth-client rotate-secret CLIENT_ID\n\nA confidential client's secret is printed once, on create and on rotate-secret; only\nits hash is kept."
    )]
    OauthClient {
        #[command(subcommand)]
        action: OauthClientAction,
    },
    /// Manage the Kubernetes clusters registered with Limen (also at /v3/limen/clusters,
    /// where a domain manager manages its own domain's).
    #[command(
        after_help = "Examples:\n  limen cluster create --name prod --api-server https://k8s.example.com:6443 --ca-file ca.pem --login-client CLIENT_ID\n  limen cluster list --domain default\n  limen cluster update CLUSTER_ID --accept-keystone-tokens true\n  limen cluster rotate-webhook-token CLUSTER_ID\n\nThe webhook token (printed once, on create and on rotate-webhook-token; only its hash\nis kept) is what the cluster's API server presents when it calls\nPOST /kubernetes/tokenreview; see docs/kubernetes.md. People then run `limen kubeconfig\n--issuer URL CLUSTER_ID`."
    )]
    Cluster {
        #[command(subcommand)]
        action: cluster::ClusterAction,
    },
    /// Log in to Limen and print a cluster token: the kubectl credential plugin (the
    /// client-go exec protocol, v1 and v1beta1) that `limen kubeconfig` sets up. Logs in
    /// with the device flow (a link and a code on stderr) or an application credential;
    /// caches the login and the cluster tokens (0600 files, one login for parallel
    /// kubectl runs) and renews them before they expire.
    #[command(
        after_help = "Examples:\n  limen login --issuer https://id.example.com --client-id kubectl              # log in only\n  limen login --issuer https://id.example.com --client-id kubectl --account work\n  LIMEN_APPLICATION_CREDENTIAL_ID=... LIMEN_APPLICATION_CREDENTIAL_SECRET=... kubectl get pods   # CI\n\nkubectl runs it from the kubeconfig `limen kubeconfig` writes; it reads the cluster's\naudience from KUBERNETES_EXEC_INFO and prints the ExecCredential on stdout."
    )]
    Login(login::LoginArgs),
    /// Forget a login and its cluster tokens, and ask the issuer to end it.
    #[command(
        after_help = "Examples:\n  limen logout --issuer https://id.example.com\n  limen logout --issuer https://id.example.com --account work\n  limen logout --all"
    )]
    Logout(login::LogoutArgs),
    /// Write or merge a kubeconfig context for a cluster registered with Limen, with
    /// `limen login` as its credential plugin. The cluster's API server, CA and audience
    /// come from the issuer (GET /kubernetes/clusters/ID).
    #[command(
        after_help = "Examples:\n  limen kubeconfig --issuer https://id.example.com 5f0c...\n  limen kubeconfig --issuer https://id.example.com 5f0c... --project 4e1f... --context prod-dev --set-current\n  limen kubeconfig --issuer https://id.example.com 5f0c... --kubeconfig ./prod.kubeconfig --exec-api-version v1\n\nOnly the cluster, user and context entries it names are changed; with several files in\n$KUBECONFIG each goes where kubectl would write it."
    )]
    Kubeconfig(login::KubeconfigArgs),
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

fn load_config(common: &Common) -> CliResult<Config> {
    let mut c = Config::load(common.config.as_deref())?;
    if let Some(d) = &common.data_dir {
        c.data_dir = d.clone();
    }
    if let Some(u) = &common.database_url {
        c.database_url = Some(u.clone());
    }
    Ok(c)
}

fn init_logging(config: &Config) {
    init_logging_to(config, std::io::stderr);
}

/// `serve` logs a line per request: lines are written in batches (see [`log_writer`]).
fn init_server_logging(config: &Config) -> Batched<std::io::Stderr> {
    let sink = Batched::new(std::io::stderr());
    init_logging_to(config, sink.clone());
    sink
}

fn init_logging_to<W>(config: &Config, writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_from_env("LIMEN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(writer);
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

async fn run(cli: Cli) -> CliResult<()> {
    let mut config = load_config(&cli.common)?;
    match cli.command {
        Command::Serve { listen, public_url } => {
            if let Some(l) = listen {
                config.listen = l;
            }
            if let Some(p) = public_url {
                config.public_url = Some(p);
            }
            let log = init_server_logging(&config);
            let flusher = tokio::spawn(log.clone().flush_every());
            let served = limen_server::serve(config).await;
            flusher.abort();
            log.flush_now();
            Ok(served?)
        }
        Command::Bootstrap(args) => {
            init_logging(&config);
            limen_server::app::ensure_private_dir(&config.data_dir)?;
            if keys::is_database(&config) {
                let (store, kek) = open_key_store(&config).await?;
                for kind in [KeyKind::Fernet, KeyKind::Credential] {
                    if keys::setup_keys(&store, &kek, kind).await? {
                        println!("created {} keys in the database", kind.as_str());
                    }
                }
            } else {
                let repo = KeyRepository::new(config.fernet_key_repository());
                if repo.setup(config.fernet_tokens.max_active_keys)? {
                    println!("created Fernet key repository {}", repo.dir().display());
                }
                let cred_repo = KeyRepository::new(config.credential_key_repository());
                if cred_repo.setup(config.credential.max_active_keys)? {
                    println!(
                        "created credential key repository {}",
                        cred_repo.dir().display()
                    );
                }
            }
            if config.uses_jws() {
                let (private, public) = config.jws_key_repositories();
                let jws = JwsKeyRepository::new(private, public);
                if jws.setup()? {
                    println!("created JWS key pair {}", jws.private_key_path().display());
                }
            }
            let (limen, _) = limen_server::app::open_services(
                &config,
                Arc::new(SystemClock),
                Arc::new(OsRandom),
            )
            .await?;
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
                .await?;
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
            if !matches!(kind, KeysKind::Kek { .. }) {
                limen_server::app::ensure_private_dir(&config.data_dir)?;
            }
            match kind {
                KeysKind::Jws { action } => jws_keys(&config, action).await,
                KeysKind::Fernet { action } => symmetric_keys(&config, false, action).await,
                KeysKind::Credential { action } => symmetric_keys(&config, true, action).await,
                KeysKind::Kek { action } => kek_keys(&config, action).await,
                KeysKind::Oidc { action } => oidc_keys(&config, action).await,
            }
        }
        Command::TokenFormat { action } => token_format(&config, action).await,
        Command::OauthClient { action } => oauth_client(&config, action).await,
        Command::Cluster { action } => cluster::run(&config, action).await,
        Command::Login(_) | Command::Logout(_) | Command::Kubeconfig(_) => Err(CliError::usage(
            "a person's command reached the operator's runner",
        )),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The person's commands read no server configuration; `login` answers from its cache
    // without starting a runtime (kubectl runs it before every command).
    let personal = match cli.command {
        Command::Login(args) => login::login(args),
        Command::Logout(args) => login::logout(args),
        Command::Kubeconfig(args) => login::kubeconfig(args),
        command => {
            return run_operator(Cli {
                common: cli.common,
                command,
            })
        }
    };
    match personal {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("limen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_operator(cli: Cli) -> ExitCode {
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

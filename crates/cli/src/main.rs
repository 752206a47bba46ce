//! `limen`: the Limen identity service and its operator commands.

mod cluster;
mod log_writer;
mod login;

use clap::{Args, Parser, Subcommand};
use limen_core::authz::Authorized;
use limen_core::bootstrap::BootstrapInput;
use limen_core::clock::{OsRandom, SystemClock};
use limen_core::config::TokenFormat;
use limen_crypto::jws::NewKeyPair;
use limen_crypto::{JwsKeyRepository, Kek, KeyRepository, OidcKeyRepository, Selection};
use limen_server::keys;
use limen_server::Config;
use limen_store::{KeyKind, SqlStore};
use log_writer::Batched;
use std::path::PathBuf;

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

#[derive(Subcommand)]
enum OauthClientAction {
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
struct ClientTokenArgs {
    /// The algorithm its ID, access and exchanged tokens are signed with: RS256 or ES256
    /// [default on create: RS256].
    #[arg(long, value_name = "ALG", value_parser = parse_signing_alg)]
    token_signing_alg: Option<limen_core::oauth_client::TokenSigningAlg>,
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
struct Lifetime(Option<i64>);

fn parse_lifetime(s: &str) -> Result<Lifetime, String> {
    if s == "default" {
        return Ok(Lifetime(None));
    }
    s.parse()
        .map(|v| Lifetime(Some(v)))
        .map_err(|_| format!("{s:?} is neither a number of seconds nor `default`"))
}

fn parse_signing_alg(s: &str) -> Result<limen_core::oauth_client::TokenSigningAlg, String> {
    limen_core::oauth_client::TokenSigningAlg::parse(s)
        .ok_or_else(|| format!("{s:?} is not RS256 or ES256"))
}

impl ClientTokenArgs {
    fn lifetimes(&self) -> limen_core::oauth_client::ClientLifetimesPatch {
        let v = |l: Option<Lifetime>| l.map(|Lifetime(v)| v);
        limen_core::oauth_client::ClientLifetimesPatch {
            access_token: v(self.access_token_lifetime),
            refresh_token: v(self.refresh_token_lifetime),
            grant: v(self.grant_lifetime),
            exchanged_token: v(self.exchanged_token_lifetime),
        }
    }
}

#[derive(Subcommand)]
enum TokenFormatAction {
    /// Print the formats in force: the stored setting, or this node's configuration.
    Show,
    /// Store the formats every node issues and accepts.
    Set {
        /// The format new tokens are issued in: fernet or jws.
        #[arg(long, value_name = "FORMAT", value_parser = parse_format)]
        issue: TokenFormat,
        /// Formats accepted, comma-separated (the issued one is always accepted).
        #[arg(long, value_name = "FORMATS", value_delimiter = ',', value_parser = parse_format)]
        accept: Vec<TokenFormat>,
        /// Skip the safety checks (a node may then reject tokens another issued).
        #[arg(long)]
        force: bool,
    },
    /// Remove the stored setting: every node follows its own [token] configuration again.
    Clear,
}

fn parse_format(s: &str) -> Result<TokenFormat, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "fernet" => Ok(TokenFormat::Fernet),
        "jws" => Ok(TokenFormat::Jws),
        other => Err(format!("unknown token format {other:?}: use fernet or jws")),
    }
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
enum KekAction {
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
enum OidcKeyAction {
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
enum JwsKeyAction {
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
            let log = init_server_logging(&config);
            let flusher = tokio::spawn(log.clone().flush_every());
            let served = limen_server::serve(config).await.map_err(|e| e.to_string());
            flusher.abort();
            log.flush_now();
            served
        }
        Command::Bootstrap(args) => {
            init_logging(&config);
            limen_server::app::ensure_private_dir(&config.data_dir).map_err(|e| e.to_string())?;
            if keys::is_database(&config) {
                let (store, kek) = open_key_store(&config).await?;
                for kind in [KeyKind::Fernet, KeyKind::Credential] {
                    if keys::setup_keys(&store, &kek, kind)
                        .await
                        .map_err(|e| e.to_string())?
                    {
                        println!("created {} keys in the database", kind.as_str());
                    }
                }
            } else {
                let repo = KeyRepository::new(config.fernet_key_repository());
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
            if !matches!(kind, KeysKind::Kek { .. }) {
                limen_server::app::ensure_private_dir(&config.data_dir)
                    .map_err(|e| e.to_string())?;
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
        Command::Login(_) | Command::Logout(_) | Command::Kubeconfig(_) => {
            Err("a person's command reached the operator's runner".into())
        }
    }
}

/// The store and KEK for `[keys] source = "database"` commands.
async fn open_key_store(config: &Config) -> Result<(SqlStore, Kek), String> {
    let kek = keys::load_kek(config).map_err(|e| e.to_string())?;
    let store = SqlStore::open(&config.database_url())
        .await
        .map_err(|e| e.to_string())?;
    Ok((store, kek))
}

fn needs_database(config: &Config, what: &str) -> Result<(), String> {
    if keys::is_database(config) {
        Ok(())
    } else {
        Err(format!(
            "{what} needs [keys] source = \"database\" (LIMEN_KEYS__SOURCE=database)"
        ))
    }
}

/// `limen keys kek generate`.
async fn kek_keys(config: &Config, action: KekAction) -> Result<(), String> {
    let output = match action {
        KekAction::Generate { output } => output,
        KekAction::Reseal => {
            needs_database(config, "re-sealing keys")?;
            let (store, kek) = open_key_store(config).await?;
            let n = keys::reseal_keys(&store, &kek)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "re-sealed {n} keys with key-encryption key {}; every stored key is now sealed \
                 with it, so previous_kek_files can go",
                kek.id()
            );
            return Ok(());
        }
    };
    let text = Kek::generate();
    let id = Kek::from_base64(&text)
        .map_err(|e| e.to_string())?
        .id()
        .to_string();
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
                .map_err(|e| format!("{}: {e}", path.display()))?;
            std::io::Write::write_all(&mut f, format!("{text}\n").as_bytes())
                .and_then(|_| f.sync_all())
                .map_err(|e| format!("{}: {e}", path.display()))?;
            println!("wrote key-encryption key {id} to {}", path.display());
        }
    }
    Ok(())
}

/// `limen keys jws setup|rotate|list|retire`.
async fn oidc_keys(config: &Config, action: OidcKeyAction) -> Result<(), String> {
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
    let e = |e: &dyn std::fmt::Display| e.to_string();
    match action {
        OidcKeyAction::Setup => {
            let created = match &database {
                Some((store, kek)) => keys::setup_oidc_keys(store, kek).await.map_err(|x| e(&x))?,
                None => repo.setup().map_err(|x| e(&x))?,
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
                Some((store, kek)) => keys::rotate_oidc_keys(store, kek, now, keep)
                    .await
                    .map_err(|x| e(&x))?,
                None => repo.rotate(now, keep).map_err(|x| e(&x))?,
            };
            println!("rotated OIDC signing keys in {place}: {primary} is primary");
        }
        OidcKeyAction::List => {
            let slots = match &database {
                Some((store, kek)) => keys::list_oidc_keys(store, kek).await.map_err(|x| e(&x))?,
                None => repo.list().map_err(|x| e(&x))?,
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

async fn oauth_client(config: &Config, action: OauthClientAction) -> Result<(), String> {
    let (limen, _) =
        limen_server::app::open_services(config, Arc::new(SystemClock), Arc::new(OsRandom))
            .await
            .map_err(|e| e.to_string())?;
    let e = |e: limen_core::CoreError| e.to_string();
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
            let new = limen_core::oauth_client::NewOAuthClient {
                domain_id: domain,
                name,
                description,
                confidential: !public,
                redirect_uris,
                grant_types: (!grant_types.is_empty()).then_some(grant_types),
                audiences,
                enabled: true,
                token_signing_alg: tokens.token_signing_alg.unwrap_or_default(),
                lifetimes: limen_core::oauth_client::ClientLifetimes::default()
                    .patched(tokens.lifetimes()),
            };
            let (c, secret) = limen
                .create_oauth_client(
                    &Authorized::operator_cli("identity:create_oauth_client"),
                    new,
                )
                .await
                .map_err(e)?;
            println!("client_id: {}", c.id);
            if let Some(secret) = secret {
                println!("client_secret: {secret}");
                eprintln!("The secret is shown only now; store it safely.");
            }
        }
        OauthClientAction::List { domain } => {
            for c in limen
                .list_oauth_clients(domain.as_deref())
                .await
                .map_err(e)?
            {
                let kind = if c.is_confidential() {
                    "confidential"
                } else {
                    "public"
                };
                println!("{} {} {kind} {}", c.id, c.domain_id, c.name);
            }
        }
        OauthClientAction::Show { id } => {
            let c = limen.get_oauth_client(&id).await.map_err(e)?;
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
            let patch = limen_core::oauth_client::OAuthClientPatch {
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
                .update_oauth_client(
                    &Authorized::operator_cli("identity:update_oauth_client"),
                    &id,
                    patch,
                )
                .await
                .map_err(e)?;
            println!("updated OAuth client {}", c.id);
        }
        OauthClientAction::Delete { id } => {
            limen
                .delete_oauth_client(
                    &Authorized::operator_cli("identity:delete_oauth_client"),
                    &id,
                )
                .await
                .map_err(e)?;
            println!("deleted OAuth client {id}");
        }
        OauthClientAction::RotateSecret { id } => {
            let (c, secret) = limen
                .rotate_oauth_client_secret(
                    &Authorized::operator_cli("identity:update_oauth_client"),
                    &id,
                )
                .await
                .map_err(e)?;
            println!("client_id: {}", c.id);
            println!("client_secret: {secret}");
            eprintln!("The secret is shown only now; store it safely.");
        }
    }
    Ok(())
}

async fn jws_keys(config: &Config, action: JwsKeyAction) -> Result<(), String> {
    let (private, public) = config.jws_key_repositories();
    let repo = JwsKeyRepository::new(private, public);
    let database = keys::is_database(config);
    let node = keys::node_name(config);
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
            if database {
                let (store, _) = open_key_store(config).await?;
                if let Some(info) = repo.signing_public_key().map_err(|e| e.to_string())? {
                    keys::publish_jws_key(&store, &info, &node)
                        .await
                        .map_err(|e| e.to_string())?;
                    println!("published public key {} in the database", info.fingerprint);
                }
            }
        }
        JwsKeyAction::Rotate if database => {
            let (store, _) = open_key_store(config).await?;
            let pair = NewKeyPair::generate().map_err(|e| e.to_string())?;
            repo.install_public(&pair).map_err(|e| e.to_string())?;
            keys::publish_jws_key(&store, &pair.public, &node)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "published new JWS public key {}; waiting {} s until every node trusts it",
                pair.public.fingerprint,
                keys::PROPAGATION.as_secs()
            );
            // Signing with the new key before the other nodes trust it would get this
            // node's next tokens rejected elsewhere.
            tokio::time::sleep(keys::PROPAGATION).await;
            repo.install_private(&pair).map_err(|e| e.to_string())?;
            println!(
                "new JWS signing key {}; the old public key stays published (retire it with \
                 `limen keys jws retire` once the tokens it signed have expired)",
                repo.private_key_path().display()
            );
        }
        JwsKeyAction::Rotate => {
            let public = repo.rotate().map_err(|e| e.to_string())?;
            println!(
                "new JWS signing key {}; its public key is {} (copy it to the other nodes)",
                repo.private_key_path().display(),
                public.display()
            );
        }
        JwsKeyAction::List => {
            needs_database(config, "listing published JWS keys")?;
            let store = SqlStore::open(&config.database_url())
                .await
                .map_err(|e| e.to_string())?;
            let own = repo
                .signing_public_key()
                .ok()
                .flatten()
                .map(|i| i.fingerprint);
            for k in store.jws_public_keys().await.map_err(|e| e.to_string())? {
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
            let store = SqlStore::open(&config.database_url())
                .await
                .map_err(|e| e.to_string())?;
            if repo
                .signing_public_key()
                .ok()
                .flatten()
                .is_some_and(|i| i.fingerprint == fingerprint)
            {
                return Err(format!(
                    "{fingerprint} is this node's signing key; rotate it first"
                ));
            }
            if store
                .retire_jws_key(&fingerprint)
                .await
                .map_err(|e| e.to_string())?
            {
                println!("retired JWS public key {fingerprint}");
            } else {
                return Err(format!("no published JWS public key {fingerprint}"));
            }
        }
    }
    Ok(())
}

/// `limen keys fernet|credential setup|rotate|import`; rotating credential keys
/// re-encrypts what they protect.
async fn symmetric_keys(
    config: &Config,
    credential: bool,
    action: KeyAction,
) -> Result<(), String> {
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
            if keys::setup_keys(store, kek, kind)
                .await
                .map_err(|e| e.to_string())?
            {
                println!("created {} keys in the database", kind.as_str());
            } else {
                println!("the database already holds {} keys", kind.as_str());
            }
            false
        }
        (KeyAction::Setup { max_active_keys }, None) => {
            if repo
                .setup(max_active_keys.unwrap_or(default_max))
                .map_err(|e| e.to_string())?
            {
                println!("created key repository {}", repo.dir().display());
            } else {
                println!("key repository {} already holds keys", repo.dir().display());
            }
            false
        }
        (KeyAction::Rotate { max_active_keys }, Some((store, kek))) => {
            let r = keys::rotate_keys(store, kek, kind, max_active_keys.unwrap_or(default_max))
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "rotated the database's {} keys: primary key is now {}; keys {:?}",
                kind.as_str(),
                r.new_primary,
                r.numbers
            );
            true
        }
        (KeyAction::Rotate { max_active_keys }, None) => {
            let primary = repo
                .rotate(max_active_keys.unwrap_or(default_max))
                .map_err(|e| e.to_string())?;
            let keys = repo.key_numbers().map_err(|e| e.to_string())?;
            println!(
                "rotated {}: primary key is now {primary}; keys {keys:?}",
                repo.dir().display()
            );
            true
        }
        (KeyAction::Import { dir, replace }, Some((store, kek))) => {
            let numbers = keys::import_keys(store, kek, kind, &dir, replace)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "imported {} keys {numbers:?} from {} into the database",
                kind.as_str(),
                dir.display()
            );
            false
        }
        (KeyAction::Import { .. }, None) => {
            return Err(format!(
                "import moves a key repository into the database: it needs [keys] source = \
                 \"database\". With files, point {} at the repository instead",
                if credential {
                    "credential.key_repository"
                } else {
                    "fernet_tokens.key_repository"
                }
            ))
        }
    };
    if rotated && credential {
        init_logging(config);
        let (limen, _) =
            limen_server::app::open_services(config, Arc::new(SystemClock), Arc::new(OsRandom))
                .await
                .map_err(|e| e.to_string())?;
        let n = limen
            .reencrypt_credentials(&Authorized::operator_cli("limen:reencrypt_credentials"))
            .await
            .map_err(|e| e.to_string())?;
        println!("re-encrypted {n} credentials and OAuth1 secrets with the new primary key");
    }
    Ok(())
}

fn format_name(f: TokenFormat) -> &'static str {
    match f {
        TokenFormat::Fernet => "fernet",
        TokenFormat::Jws => "jws",
    }
}

fn describe(sel: &Selection) -> String {
    let accept: Vec<&str> = sel.accept.iter().map(|f| format_name(*f)).collect();
    format!(
        "issue {}, accept {}",
        format_name(sel.issue),
        accept.join(",")
    )
}

/// `limen token-format show|set|clear`.
async fn token_format(config: &Config, action: TokenFormatAction) -> Result<(), String> {
    needs_database(config, "a cloud-wide token format")?;
    let store = SqlStore::open(&config.database_url())
        .await
        .map_err(|e| e.to_string())?;
    let stored = keys::stored_formats(&store)
        .await
        .map_err(|e| e.to_string())?;
    // Without a stored setting, every node follows its configuration, assumed to be this
    // one's (as the documentation asks).
    let configured = Selection::new(config.token.provider, &config.token.accept);
    let (current, since) = match &stored {
        Some((f, at)) => (f.selection(), Some(*at)),
        None => (configured.clone(), None),
    };
    match action {
        TokenFormatAction::Show => {
            match &stored {
                Some(_) => println!("stored for the whole cloud: {}", describe(&current)),
                None => println!(
                    "no stored setting; this node's configuration: {}",
                    describe(&configured)
                ),
            }
            Ok(())
        }
        TokenFormatAction::Clear => {
            keys::store_formats(&store, None)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "cleared; every node follows its [token] configuration again within a second ({})",
                describe(&configured)
            );
            Ok(())
        }
        TokenFormatAction::Set {
            issue,
            accept,
            force,
        } => {
            let next = Selection::new(issue, &accept);
            if !force {
                let wait = keys::check_format_change(
                    &current,
                    since,
                    &next,
                    time::OffsetDateTime::now_utc(),
                )?;
                if !wait.is_zero() {
                    println!(
                        "waiting {:.1} s until every node accepts {}",
                        wait.as_secs_f64(),
                        format_name(issue)
                    );
                    tokio::time::sleep(wait).await;
                }
            }
            keys::store_formats(
                &store,
                Some(&keys::StoredFormats {
                    issue: next.issue,
                    accept: next.accept.clone(),
                }),
            )
            .await
            .map_err(|e| e.to_string())?;
            println!(
                "stored for the whole cloud: {}; every node applies it within a second",
                describe(&next)
            );
            Ok(())
        }
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

//! `limen login`, `limen logout` and `limen kubeconfig`: the commands a person runs (or
//! kubectl runs for them) on their own machine. They read no server configuration and
//! touch no database; they speak to the issuer over HTTPS (`limen_client`).

use crate::error::{CliError, CliResult, Doing};
use clap::{Args, ValueEnum};
use limen_client::cache::CacheRoot;
use limen_client::exec::{ExecInfo, EXEC_V1, EXEC_V1BETA1};
use limen_client::kubeconfig::{entries, kubeconfig_files, merge_into, EntryOptions};
use limen_client::login::{AppCredential, DeviceLogin, LoginOptions};
use limen_client::provider::Provider;
use limen_client::ClientError;
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceLoginArg {
    /// When someone can see the code: kubectl says the call is interactive, or stderr is
    /// a terminal.
    Auto,
    /// Always (the code goes to stderr even when no terminal is there).
    Always,
    /// Never: fail if no login is cached (CI without an application credential).
    Never,
}

#[derive(Args)]
pub struct LoginArgs {
    /// Limen's issuer URL [default: the cluster's, from the kubeconfig].
    #[arg(long, value_name = "URL", env = "LIMEN_ISSUER")]
    issuer: Option<String>,
    /// The OAuth client to log in with [default: the cluster's login client].
    #[arg(long, value_name = "ID", env = "LIMEN_CLIENT_ID")]
    client_id: Option<String>,
    /// A name for this login, to keep several side by side.
    #[arg(long, default_value = "default", env = "LIMEN_ACCOUNT")]
    account: String,
    /// The cluster audience to get a token for [default: the cluster's, from kubectl];
    /// without one, only log in.
    #[arg(long)]
    audience: Option<String>,
    /// The project (id) the cluster token speaks for, when the login names none [default:
    /// the project that owns the cluster, if you hold a role there].
    #[arg(long, value_name = "ID")]
    project: Option<String>,
    /// Log in with an application credential: a file with what `openstack application
    /// credential create -f json` prints, or `<id>:<secret>`. Or set
    /// LIMEN_APPLICATION_CREDENTIAL_ID and LIMEN_APPLICATION_CREDENTIAL_SECRET.
    #[arg(long, value_name = "FILE", env = "LIMEN_APPLICATION_CREDENTIAL_FILE")]
    application_credential_file: Option<PathBuf>,
    /// When to log in with the device flow (URL and code on stderr).
    #[arg(long, value_enum, default_value = "auto", env = "LIMEN_DEVICE_LOGIN")]
    device_login: DeviceLoginArg,
    /// Open the device login's page in the desktop's browser (xdg-open).
    #[arg(long)]
    open_browser: bool,
    /// Where logins and cluster tokens are cached [default: $XDG_CACHE_HOME/limen or
    /// ~/.cache/limen].
    #[arg(long, value_name = "DIR", env = "LIMEN_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// PEM certificates of the issuer's CA, if not a public one.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Seconds before a cluster token's expiry that a new one is fetched (and kubectl is
    /// told it expires); at most a third of its life.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    leeway: i64,
}

#[derive(Args)]
pub struct LogoutArgs {
    /// The issuer whose login to end.
    #[arg(
        long,
        value_name = "URL",
        env = "LIMEN_ISSUER",
        required_unless_present = "all"
    )]
    issuer: Option<String>,
    /// The account to log out.
    #[arg(long, default_value = "default", env = "LIMEN_ACCOUNT")]
    account: String,
    /// Log out every account of every issuer.
    #[arg(long, conflicts_with = "issuer")]
    all: bool,
    /// The cache directory [default: $XDG_CACHE_HOME/limen or ~/.cache/limen].
    #[arg(long, value_name = "DIR", env = "LIMEN_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// PEM certificates of the issuer's CA, if not a public one.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExecVersion {
    /// client.authentication.k8s.io/v1beta1: every kubectl since 1.11.
    V1beta1,
    /// client.authentication.k8s.io/v1: kubectl 1.22 and later.
    V1,
}

#[derive(Args)]
pub struct KubeconfigArgs {
    /// The cluster's id (as `limen cluster create` printed it).
    cluster: String,
    /// Limen's issuer URL.
    #[arg(long, value_name = "URL", env = "LIMEN_ISSUER")]
    issuer: String,
    /// The login to use (see `limen login --account`).
    #[arg(long, default_value = "default", env = "LIMEN_ACCOUNT")]
    account: String,
    /// The project (id) to act in on the cluster.
    #[arg(long, value_name = "ID")]
    project: Option<String>,
    /// The OAuth client to log in with [default: the cluster's login client].
    #[arg(long, value_name = "ID", env = "LIMEN_CLIENT_ID")]
    client_id: Option<String>,
    /// The context's name [default: the cluster's name].
    #[arg(long)]
    context: Option<String>,
    /// The kubeconfig file to write [default: as kubectl reads them: $KUBECONFIG, else
    /// ~/.kube/config].
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Make the context the current one (it is anyway where none is).
    #[arg(long)]
    set_current: bool,
    /// The exec credential version kubectl and limen speak.
    #[arg(long, value_enum, default_value = "v1beta1")]
    exec_api_version: ExecVersion,
    /// PEM certificates of the issuer's CA, if not a public one (also passed to `limen
    /// login`).
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// The command kubectl runs [default: this limen binary's absolute path].
    #[arg(long, value_name = "PATH")]
    command: Option<String>,
}

fn read_file(path: &PathBuf) -> CliResult<Vec<u8>> {
    std::fs::read(path).doing(|| format!("cannot read {}", path.display()))
}

fn cache_root(dir: Option<PathBuf>) -> Result<CacheRoot, ClientError> {
    Ok(CacheRoot::new(match dir {
        Some(d) => d,
        None => CacheRoot::default_dir()?,
    }))
}

/// The application credential from the file or the environment, if any.
fn application_credential(file: Option<&PathBuf>) -> CliResult<Option<AppCredential>> {
    if let Some(f) = file {
        let text = String::from_utf8(read_file(f)?)
            .map_err(|_| CliError::usage(format!("{} is not text", f.display())))?;
        return Ok(Some(AppCredential::parse(&text)?));
    }
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (
        var("LIMEN_APPLICATION_CREDENTIAL_ID"),
        var("LIMEN_APPLICATION_CREDENTIAL_SECRET"),
    ) {
        (Some(id), Some(secret)) => Ok(Some(AppCredential { id, secret })),
        (None, None) => Ok(None),
        _ => Err(CliError::usage(
            "set both LIMEN_APPLICATION_CREDENTIAL_ID and _SECRET, or neither",
        )),
    }
}

/// `limen login`; prints the ExecCredential, if one was asked for.
pub fn login(args: LoginArgs) -> CliResult<()> {
    let exec_info = match std::env::var("KUBERNETES_EXEC_INFO") {
        Ok(text) if !text.is_empty() => Some(ExecInfo::parse(&text)?),
        _ => None,
    };
    let kubectl_pid = exec_info
        .as_ref()
        .map(|_| std::os::unix::process::parent_id());
    let opts = LoginOptions {
        issuer: args.issuer,
        client_id: args.client_id,
        account: args.account,
        audience: args.audience,
        project: args.project,
        application_credential: application_credential(args.application_credential_file.as_ref())?,
        device_login: match args.device_login {
            DeviceLoginArg::Auto => DeviceLogin::Auto,
            DeviceLoginArg::Always => DeviceLogin::Always,
            DeviceLoginArg::Never => DeviceLogin::Never,
        },
        open_browser: args.open_browser,
        cache: cache_root(args.cache_dir)?,
        ca_pem: args.ca_file.as_ref().map(read_file).transpose()?,
        leeway: args.leeway,
        exec_info,
        kubectl_pid,
        stderr_is_terminal: std::io::stderr().is_terminal(),
    };
    let printed = limen_client::login::login(&opts, &|m| eprintln!("{m}"))?;
    if let Some(credential) = printed {
        println!("{credential}");
    }
    Ok(())
}

/// `limen logout`.
pub fn logout(args: LogoutArgs) -> CliResult<()> {
    let cache = cache_root(args.cache_dir)?;
    let ca = args.ca_file.as_ref().map(read_file).transpose()?;
    let which = args.issuer.as_deref().map(|i| (i, args.account.as_str()));
    let done = limen_client::login::logout(&cache, which.filter(|_| !args.all), ca.as_deref())?;
    if done.is_empty() {
        println!("nothing to log out of");
    }
    for line in done {
        println!("{line}");
    }
    Ok(())
}

/// `limen kubeconfig`.
pub fn kubeconfig(args: KubeconfigArgs) -> CliResult<()> {
    let ca = args.ca_file.as_ref().map(read_file).transpose()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .doing(|| "cannot start the runtime".into())?;
    let issuer = args.issuer.trim_end_matches('/');
    let info = rt.block_on(async {
        Provider::new(issuer, ca.as_deref())?
            .cluster(&args.cluster)
            .await
    })?;
    let client_id = args
        .client_id
        .or_else(|| info.login_client_id.clone())
        .ok_or_else(|| {
            CliError::usage(format!(
                "the cluster {} names no login client: pass --client-id (ask its operator \
                 which OAuth client to use)",
                info.name
            ))
        })?;
    let command = match args.command {
        Some(c) => c,
        None => std::env::current_exe()
            .doing(|| "cannot tell where this limen binary is (pass --command)".into())?
            .display()
            .to_string(),
    };
    let issuer_ca_file = args.ca_file.as_ref().map(|p| {
        std::path::absolute(p)
            .unwrap_or_else(|_| p.clone())
            .display()
            .to_string()
    });
    let opts = EntryOptions {
        account: args.account,
        project: args.project,
        client_id,
        context: args.context,
        command,
        exec_api_version: match args.exec_api_version {
            ExecVersion::V1beta1 => EXEC_V1BETA1,
            ExecVersion::V1 => EXEC_V1,
        },
        issuer_ca_file,
    };
    let e = entries(&info, &opts);
    let files = kubeconfig_files(
        args.kubeconfig,
        std::env::var_os("KUBECONFIG"),
        std::env::var_os("HOME").map(PathBuf::from),
    )?;
    let written = merge_into(&files, &e, args.set_current)?;
    for f in written {
        println!("wrote {}", f.display());
    }
    println!(
        "context {:?}: cluster {} ({}) as account {}; the first kubectl call logs in",
        e.context.0, info.name, info.api_server, opts.account
    );
    Ok(())
}

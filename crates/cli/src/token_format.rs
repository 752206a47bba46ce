//! `limen token-format …`: which token format the cloud issues and accepts (see
//! docs/token-formats.md).

use crate::error::{CliError, CliResult};
use crate::key_commands::needs_database;
use clap::Subcommand;
use limen_core::config::TokenFormat;
use limen_crypto::Selection;
use limen_server::keys;
use limen_server::Config;
use limen_store::SqlStore;

#[derive(Subcommand)]
pub(crate) enum TokenFormatAction {
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

pub(crate) fn parse_format(s: &str) -> CliResult<TokenFormat> {
    match s.trim().to_ascii_lowercase().as_str() {
        "fernet" => Ok(TokenFormat::Fernet),
        "jws" => Ok(TokenFormat::Jws),
        other => Err(CliError::usage(format!(
            "unknown token format {other:?}: use fernet or jws"
        ))),
    }
}

pub(crate) fn format_name(f: TokenFormat) -> &'static str {
    match f {
        TokenFormat::Fernet => "fernet",
        TokenFormat::Jws => "jws",
    }
}

pub(crate) fn describe(sel: &Selection) -> String {
    let accept: Vec<&str> = sel.accept.iter().map(|f| format_name(*f)).collect();
    format!(
        "issue {}, accept {}",
        format_name(sel.issue),
        accept.join(",")
    )
}

/// `limen token-format show|set|clear`.
pub(crate) async fn token_format(config: &Config, action: TokenFormatAction) -> CliResult<()> {
    needs_database(config, "a cloud-wide token format")?;
    let store = SqlStore::open(&config.database_url()).await?;
    let stored = keys::stored_formats(&store).await?;
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
            keys::store_formats(&store, None).await?;
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
                )
                .map_err(CliError::Usage)?;
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
            .await?;
            println!(
                "stored for the whole cloud: {}; every node applies it within a second",
                describe(&next)
            );
            Ok(())
        }
    }
}

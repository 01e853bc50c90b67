//! What the CLI trusts besides what Vazhi ships: `--trusted-key` (public keys whose pack and
//! catalog signatures are believed) and `--allow-unsigned` (decision 0014). Set once from the
//! command line, read by every command that imports a pack or reads a catalog.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::Context;
use vazhi_core::download::Catalog;
use vazhi_core::signing::{TrustPolicy, TrustedKeys};

/// The trust options, global to every command.
#[derive(Debug, Clone, clap::Args)]
pub struct TrustArgs {
    /// A public key (64 hex digits) whose pack and catalog signatures are trusted; repeat it,
    /// or give several separated by commas.
    #[arg(
        long = "trusted-key",
        global = true,
        env = "VAZHI_TRUSTED_KEYS",
        value_delimiter = ',',
        value_name = "HEX"
    )]
    keys: Vec<String>,
    /// Accept packs and catalogs that are neither shipped with Vazhi nor signed by a trusted
    /// key. Their text is then shown as exact answers on no authority but yours.
    #[arg(long, global = true, env = "VAZHI_ALLOW_UNSIGNED", value_parser = clap::builder::FalseyValueParser::new())]
    allow_unsigned: bool,
}

static POLICY: OnceLock<TrustPolicy> = OnceLock::new();

/// Sets the process's trust policy from the command line (once, before any command runs).
pub fn init(args: &TrustArgs) -> anyhow::Result<()> {
    let keys = TrustedKeys::from_hex(&args.keys).context("--trusted-key")?;
    let _ = POLICY.set(TrustPolicy {
        keys,
        allow_unsigned: args.allow_unsigned,
    });
    Ok(())
}

/// The process's trust policy (only what Vazhi ships, until [`init`]).
pub fn policy() -> &'static TrustPolicy {
    POLICY.get_or_init(TrustPolicy::shipped_only)
}

/// Reads the catalog in `path`, with its detached signature `path.sig` if there is one,
/// checked against [`policy`].
pub fn load_catalog(path: &Path) -> anyhow::Result<Catalog> {
    let (json, signature) = read_catalog(path)?;
    Catalog::from_json_trusted(&json, signature.as_deref(), policy())
        .with_context(|| format!("catalog {}", path.display()))
}

/// The text of the catalog in `path` and of its detached signature `path.sig` (`None` when
/// there is no such file), unchecked: for an `AppConfig`, which checks them when it needs the
/// catalog.
pub fn read_catalog(path: &Path) -> anyhow::Result<(String, Option<String>)> {
    let json = std::fs::read_to_string(path)
        .with_context(|| format!("reading catalog {}", path.display()))?;
    let mut sig_path = path.as_os_str().to_owned();
    sig_path.push(".sig");
    let signature = match std::fs::read_to_string(&sig_path) {
        Ok(s) => Some(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(e).with_context(|| format!("reading {}", Path::new(&sig_path).display()))
        }
    };
    Ok((json, signature))
}

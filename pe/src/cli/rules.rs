//! `inplace rules show`: the effective migration rules, as TOML.

use std::path::PathBuf;

use crate::migrate::rules::{Overrides, Rules};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Print the rules a capture would use, with a preset's changes applied.
    Show(ShowArgs),
}

#[derive(clap::Args)]
pub struct ShowArgs {
    #[command(flatten)]
    choice: Choice,
}

/// Which rules: the flags `rules show` and `capture` share.
#[derive(clap::Args)]
pub struct Choice {
    /// `windows`, `linux`, or a rules file (default: the preset's `rules`, else by the OS found).
    #[arg(long)]
    pub rules: Option<String>,
    /// A preset whose `[migrate]` table changes the rules (capture also keeps its `[restore]`
    /// table in the store for the first boot).
    #[arg(long)]
    pub preset: Option<PathBuf>,
    /// Only these users (comma-separated names).
    #[arg(long, value_delimiter = ',')]
    pub users: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let Sub::Show(a) = args.command;
    let c = &a.choice;
    let rules = effective(c.rules.as_deref(), None, c.preset.as_deref(), &c.users)?;
    print!("{}", rules.to_toml());
    Ok(0)
}

/// The rules `spec` with the preset's `[migrate]` table and `--users` applied. Without `spec`
/// the preset's `rules` key chooses the base set, else `detected` (the source's OS family).
pub fn effective(
    spec: Option<&str>,
    detected: Option<&str>,
    preset: Option<&std::path::Path>,
    users: &[String],
) -> anyhow::Result<Rules> {
    let mut o = match preset {
        Some(p) => read_preset(p)?.migrate,
        None => Overrides::default(),
    };
    if !users.is_empty() {
        o.users = users.to_vec();
    }
    let spec = spec.or(o.rules.as_deref()).or(detected).ok_or_else(|| {
        anyhow::anyhow!("no rules chosen and no OS detected: pass --rules windows, --rules linux or --rules FILE")
    })?;
    Ok(Rules::load(spec)?.with(&o)?)
}

/// Reads and parses a preset file.
pub fn read_preset(path: &std::path::Path) -> anyhow::Result<crate::preset::Preset> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("reading preset {}: {e}", path.display()))?;
    Ok(crate::preset::Preset::parse(&text, &path.display().to_string())?)
}

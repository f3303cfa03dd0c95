//! `inplace rules show`: the effective migration rules, as TOML.

use std::path::PathBuf;

use crate::migrate::rules::{self, Rules};
use crate::preset::Preset;

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

impl Choice {
    /// The preset given, read and parsed.
    pub fn preset(&self) -> anyhow::Result<Option<Preset>> {
        self.preset.as_deref().map(read_preset).transpose()
    }

    /// The rules chosen: `--rules`, else the preset's, else by `detected` (the source's OS
    /// family); with the preset's `[migrate]` table and `--users` applied.
    pub fn rules(&self, detected: Option<&str>, preset: Option<&Preset>) -> crate::error::Result<Rules> {
        let mut o = preset.map(|p| p.migrate.clone()).unwrap_or_default();
        if !self.users.is_empty() {
            o.users = self.users.clone();
        }
        rules::effective(self.rules.as_deref(), detected, &o)
    }
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let Sub::Show(a) = args.command;
    let c = &a.choice;
    let preset = c.preset()?;
    print!("{}", c.rules(None, preset.as_ref())?.to_toml());
    Ok(0)
}

/// Reads and parses a preset file.
fn read_preset(path: &std::path::Path) -> anyhow::Result<Preset> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("reading preset {}: {e}", path.display()))?;
    Ok(Preset::parse(&text, &path.display().to_string())?)
}

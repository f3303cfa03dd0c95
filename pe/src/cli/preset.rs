//! `inplace preset check`: is a preset valid, and with `--disk`, the plan it would run.
//! `inplace preset sign` / `verify`: the signature a PE built with a preset key asks for
//! (`FILE.sig` beside the preset; `preset_sig`).

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{front, job};
use crate::image::create::{read_key, read_public_key};
use crate::preset_sig;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Check a preset; with --disk, also print the plan the job would run on that disk.
    Check(CheckArgs),
    /// Sign a preset for a PE built with a preset key: writes FILE.sig beside FILE.
    Sign {
        /// The secret key (from `inplace image keygen`) of the PE's preset key.
        #[arg(long, value_name = "KEY")]
        key: PathBuf,
        /// The preset file, signed byte for byte as it is (serve it unchanged).
        file: PathBuf,
    },
    /// Check FILE.sig against a public key, as a PE built with that key does.
    Verify {
        /// The public key (64 hex digits, as `inplace image keygen` prints it).
        #[arg(long, value_name = "PUB")]
        key: PathBuf,
        /// The preset file; its signature is FILE.sig.
        file: PathBuf,
    },
}

#[derive(clap::Args)]
pub struct CheckArgs {
    /// The preset file.
    pub file: PathBuf,
    /// A disk or disk image to plan against (repeat for several; the preset chooses).
    #[arg(long)]
    pub disk: Vec<PathBuf>,
    #[command(flatten)]
    pub common: job::Common,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    match args.command {
        Sub::Check(a) => check(a),
        Sub::Sign { key, file } => {
            let secret = read_key(&key)?;
            let bytes = std::fs::read(&file).with_context(|| format!("reading the preset {}", file.display()))?;
            let out = sig_path(&file);
            std::fs::write(&out, preset_sig::sign(&secret, &bytes)).with_context(|| format!("writing {}", out.display()))?;
            println!("signed {} ({} bytes): {}", file.display(), bytes.len(), out.display());
            Ok(0)
        }
        Sub::Verify { key, file } => {
            let public = read_public_key(&key)?;
            let bytes = std::fs::read(&file).with_context(|| format!("reading the preset {}", file.display()))?;
            let out = sig_path(&file);
            let sig = std::fs::read(&out).with_context(|| format!("reading the signature {}", out.display()))?;
            let (source, sig_source) = (file.display().to_string(), out.display().to_string());
            preset_sig::check(&source, &bytes, &sig_source, preset_sig::Answer::Found(&sig), &public)?;
            println!("ok: {} is signed with {}", file.display(), key.display());
            Ok(0)
        }
    }
}

/// `FILE.sig`.
fn sig_path(file: &Path) -> PathBuf {
    let mut s = file.as_os_str().to_os_string();
    s.push(preset_sig::SUFFIX);
    PathBuf::from(s)
}

fn check(a: CheckArgs) -> anyhow::Result<i32> {
    let preset = job::read_preset(&a.file)?;
    if a.disk.is_empty() {
        println!("preset {}: {:?} is valid", a.file.display(), preset.name);
        return Ok(0);
    }
    let env = job::host_env(&a.disk, Some(&a.file), &a.common)?;
    let planned = front::run(false, |sink, cancel| crate::job::run::dry_run(&preset, &env, sink, cancel))?;
    for l in &planned.lines {
        println!("{l}");
    }
    Ok(0)
}

//! `inplace image …`: create, info, verify, apply, keygen.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, Result};
use clap::{Args as ClapArgs, Subcommand};

use crate::image::apply::{self, Request};
use crate::image::create::{self, CreateOptions};
use crate::image::format::{hex, unhex};
use crate::image::layout::human;
use crate::image::reader::{self, Trust};
use crate::image::stage::{self, Staging};
use crate::image::target::Expect;
use crate::image::verify;
use crate::net::http::HttpOptions;
use crate::progress::Cancel;

#[derive(ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(ClapArgs, Clone)]
struct Common {
    /// Refuse unless the image digest (sha256 over header, manifest and index) is this.
    #[arg(long, value_name = "HEX")]
    pin_sha256: Option<String>,
    /// Refuse unless the image is signed by this ed25519 public key.
    #[arg(long, value_name = "HEX")]
    pin_key: Option<String>,
    /// Seconds to wait for a connection or any read (HTTP).
    #[arg(long, default_value_t = 30.0)]
    http_timeout: f64,
    /// Retries per transfer after the first attempt (HTTP).
    #[arg(long, default_value_t = 8)]
    retries: u32,
    /// First retry delay in seconds; it doubles up to 10 s.
    #[arg(long, default_value_t = 0.5)]
    backoff: f64,
    /// Decoder threads (default: one per CPU).
    #[arg(long)]
    workers: Option<usize>,
}

impl Common {
    fn trust(&self) -> Result<Trust> {
        let pin = |s: &Option<String>, what: &str| -> Result<Option<[u8; 32]>> {
            s.as_deref().map(|v| unhex::<32>(v).ok_or_else(|| anyhow!("{what} {v:?}: expected 64 hex digits"))).transpose()
        };
        Ok(Trust { pin_sha256: pin(&self.pin_sha256, "--pin-sha256")?, pin_key: pin(&self.pin_key, "--pin-key")? })
    }
    fn http(&self) -> HttpOptions {
        HttpOptions {
            timeout: Duration::from_secs_f64(self.http_timeout.max(0.1)),
            retries: self.retries,
            backoff: Duration::from_secs_f64(self.backoff.max(0.0)),
        }
    }
    fn workers(&self) -> usize {
        self.workers.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2))
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Capture a reference disk (or disk image) into an image file.
    Create {
        /// The disk or disk image to capture.
        #[arg(long)]
        from: PathBuf,
        /// Partition numbers to include (default: all), e.g. 1,2.
        #[arg(long, value_delimiter = ',')]
        partitions: Vec<u32>,
        #[arg(long)]
        out: PathBuf,
        /// Logical MiB per chunk (power of two).
        #[arg(long, default_value_t = 4)]
        chunk_mib: u32,
        /// zstd level.
        #[arg(long, default_value_t = 3)]
        level: i32,
        /// The partition that takes the remaining room at lay-down (default: the largest
        /// non-ESP filesystem).
        #[arg(long)]
        grow: Option<u32>,
        /// Keep the disk and partition GUIDs at lay-down instead of fresh ones.
        #[arg(long)]
        pin_guids: bool,
        /// Store the growable filesystem shrunk to its minimum (resize2fs -M / ntfsresize on a
        /// copy), so the image also fits disks smaller than the reference.
        #[arg(long)]
        shrinkable: bool,
        /// Sign with this ed25519 secret key (from `inplace image keygen`).
        #[arg(long)]
        sign_key: Option<PathBuf>,
        #[arg(long)]
        workers: Option<usize>,
    },
    /// Show an image's header and manifest.
    Info {
        image: String,
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        json: bool,
    },
    /// Check every chunk of an image.
    Verify {
        image: String,
        #[command(flatten)]
        common: Common,
    },
    /// Lay an image down on a disk, keeping the store and the partitions named.
    Apply {
        image: String,
        /// The target disk (block device or disk image file).
        #[arg(long)]
        disk: PathBuf,
        /// Partition numbers to keep untouched, e.g. 4,5 (the store is always kept).
        #[arg(long, value_delimiter = ',')]
        keep: Vec<u32>,
        /// The store partition's number (default: found by its locator).
        #[arg(long)]
        store: Option<u32>,
        /// Write. Without it, only the plan is shown.
        #[arg(long)]
        yes: bool,
        /// Refuse unless the target is exactly this many bytes.
        #[arg(long)]
        expect_size: Option<u64>,
        /// Refuse unless the target's serial is this.
        #[arg(long)]
        expect_serial: Option<String>,
        /// Refuse unless the target's GPT disk GUID is this.
        #[arg(long)]
        expect_disk_guid: Option<String>,
        /// Download an HTTP(S) image into this directory and verify it before writing.
        #[arg(long, conflicts_with = "no_stage")]
        stage: Option<PathBuf>,
        /// Stream an HTTP(S) image even when the store could hold it.
        #[arg(long)]
        no_stage: bool,
        /// Skip reading the written data back.
        #[arg(long)]
        no_readback: bool,
        /// Add a UEFI NVRAM boot entry (in the PE, on a real disk).
        #[arg(long)]
        efi_nvram: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Make an ed25519 key pair for signing images.
    Keygen {
        /// Where to write the secret key (64 hex digits).
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn run(args: Args) -> Result<i32> {
    let progress = super::front::printer();
    let cancel = Cancel::new();
    match args.cmd {
        Cmd::Create { from, partitions, out, chunk_mib, level, grow, pin_guids, shrinkable, sign_key, workers } => {
            let sign_key = sign_key.map(|p| create::read_key(&p)).transpose()?;
            let chunk_size = chunk_mib.checked_mul(1 << 20).ok_or_else(|| anyhow!("--chunk-mib {chunk_mib} is too large"))?;
            let o = CreateOptions {
                from,
                partitions,
                out: out.clone(),
                chunk_size,
                level,
                workers: workers.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)),
                grow,
                pin_guids,
                shrinkable,
                sign_key,
            };
            let r = create::create(&o, &progress, &cancel)?;
            for n in &r.notes {
                eprintln!("note: {n}");
            }
            println!(
                "created {}: {} partitions, {} chunks, {} of data in {} (ratio {:.2})",
                out.display(),
                r.manifest.partitions.len(),
                r.chunks,
                human(r.logical_bytes),
                human(r.stored_bytes),
                r.stored_bytes as f64 / r.logical_bytes.max(1) as f64
            );
            println!("sha256 {}", hex(&r.digest));
            Ok(0)
        }
        Cmd::Info { image, common, json } => {
            let img = reader::open(&image, &common.trust()?, &common.http(), &progress, &cancel)?;
            if json {
                let v = serde_json::json!({
                    "digest": img.digest_hex(),
                    "signed_by": img.signed_by.map(|k| hex(&k)),
                    "chunk_size": img.header.chunk_size,
                    "chunks": img.header.chunk_count,
                    "file_len": img.header.file_len,
                    "manifest": img.manifest,
                });
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(0);
            }
            let m = &img.manifest;
            println!("image     {}", img.name);
            println!("sha256    {}", img.digest_hex());
            println!("signed    {}", img.signed_by.map_or("no".to_string(), |k| format!("by {}", hex(&k))));
            println!("created   {} by {} from {}", m.created.unix_time, m.created.tool, m.created.source);
            println!("table     {:?}, {}-byte sectors, boot {:?}", m.table, m.sector_size, m.boot);
            println!("chunks    {} of up to {}, {} stored in {}", img.header.chunk_count, human(u64::from(img.header.chunk_size)), human(img.logical_bytes()), human(img.header.file_len));
            for p in &m.partitions {
                println!(
                    "  {:>3}  {:<10} {:>12} (min {:>12})  {:>12} used  {:?}{}  {}",
                    p.number,
                    p.fs.as_deref().unwrap_or("-"),
                    human(p.size),
                    human(p.min_size),
                    human(p.data_bytes),
                    p.content,
                    if p.grow { " grows" } else { "" },
                    p.name
                );
            }
            Ok(0)
        }
        Cmd::Verify { image, common } => {
            let r = verify::verify(&image, &common.trust()?, &common.http(), common.workers(), &progress, &cancel)?;
            println!(
                "ok: {} chunks, {} of data ({} stored), sha256 {}{}",
                r.chunks,
                human(r.logical_bytes),
                human(r.stored_bytes),
                r.digest,
                r.signed_by.map_or(String::new(), |k| format!(", signed by {k}"))
            );
            Ok(0)
        }
        Cmd::Apply { image, disk, keep, store, yes, expect_size, expect_serial, expect_disk_guid, stage, no_stage, no_readback, efi_nvram, common } => {
            let request = Request {
                image,
                disk,
                keep,
                store,
                trust: common.trust()?,
                http: common.http(),
                workers: common.workers(),
                expect: Expect { size: expect_size, serial: expect_serial, disk_guid: expect_disk_guid },
                readback: !no_readback,
                efi_nvram,
            };
            let staging = match (stage, no_stage) {
                (Some(d), _) => Staging::Dir(d),
                (None, true) => Staging::Never,
                _ => Staging::Auto,
            };
            let mut prepared = apply::prepare(&request, &progress, &cancel)?;
            if !yes {
                eprintln!("note: dry run: nothing was written; add --yes to lay the image down");
                return Ok(0);
            }
            if let Some(dir) = stage::choose(&staging, &mut prepared) {
                stage::stage(&mut prepared, &dir, &progress, &cancel)?;
            }
            let r = apply::lay_down(prepared, &progress, &cancel)?;
            for n in &r.notes {
                eprintln!("note: {n}");
            }
            for x in &r.resized {
                println!("resized: {}", x.line());
            }
            println!("applied: {} partitions, {} written, image sha256 {}", r.placement.placed.len(), human(r.bytes_written), r.digest);
            Ok(0)
        }
        Cmd::Keygen { out } => {
            let public = create::keygen(&out, &progress, &cancel)?;
            println!("{}", hex(&public));
            Ok(0)
        }
    }
}

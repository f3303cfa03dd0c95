//! The PE's network: bring up a NIC with DHCP, then fetch over HTTP(S).
//!
//! - [`link`], [`dhcp`]: the interface and its address.
//! - [`http`]: the one HTTP(S) client (TLS roots, timeouts, ranged requests, error wording).
//! - [`retry`]: backoff between attempts, cancellable.

pub mod dhcp;
pub mod http;
pub mod link;
pub mod retry;

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use crate::error::{Error, Result, Written};
use crate::progress::{Cancel, Sink};
use crate::step::Step;

/// Errors here name the preset step (the PE brings the network up for a preset first);
/// callers for another step move them with [`Error::in_step`].
const STEP: Step = Step::Preset;

/// A configured interface.
#[derive(Debug, Clone)]
pub struct Up {
    pub interface: String,
    pub lease: dhcp::Lease,
}

/// Brings up the first wired interface that gets a DHCP lease: link up, DHCP, address, default
/// route and `/etc/resolv.conf`. Each interface that fails is a warning; a raised `cancel`
/// stops the waits for a link or a lease within half a second.
pub fn bring_up(sys: &Path, timeout: Duration, sink: &dyn Sink, cancel: &Cancel) -> Result<Up> {
    let candidates = link::physical_interfaces(sys);
    if candidates.is_empty() {
        return Err(Error::refused(STEP, "no network interface found")
            .advice("the NIC's driver may be missing from the PE (see kernel-config/modules.txt)"));
    }
    let mut errors = Vec::new();
    for iface in &candidates {
        cancel.check(STEP, Written::Nothing)?;
        let attempt = || -> anyhow::Result<Up> {
            link::set_up(iface)?;
            link::wait_for_carrier(sys, iface, Duration::from_secs(10), cancel)?;
            let mac = link::mac(sys, iface)?;
            let lease = dhcp::obtain(iface, mac, timeout, cancel)?;
            link::configure(iface, lease.address, lease.netmask, lease.router)?;
            write_resolv_conf(&lease.dns)?;
            Ok(Up { interface: iface.clone(), lease })
        };
        match attempt() {
            Ok(up) => return Ok(up),
            Err(e) => {
                cancel.check(STEP, Written::Nothing)?;
                sink.warn(&format!("{iface}: {e:#}"));
                errors.push(format!("{iface}: {e:#}"));
            }
        }
    }
    Err(Error::transient(STEP, format!("no interface got a network address over DHCP ({})", errors.join("; ")))
        .advice("check the cable and the DHCP server"))
}

fn write_resolv_conf(dns: &[Ipv4Addr]) -> anyhow::Result<()> {
    let text: String = dns.iter().map(|d| format!("nameserver {d}\n")).collect();
    std::fs::create_dir_all("/etc").ok();
    std::fs::write("/etc/resolv.conf", text).context("writing /etc/resolv.conf")
}

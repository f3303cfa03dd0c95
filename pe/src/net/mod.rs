//! The PE's network: bring up a NIC with DHCP, then fetch over HTTP(S).

pub mod dhcp;
pub mod http;
pub mod link;

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;

/// A configured interface.
#[derive(Debug, Clone)]
pub struct Up {
    pub interface: String,
    pub lease: dhcp::Lease,
}

/// Brings up the first wired interface that gets a DHCP lease: link up, DHCP, address, default
/// route and `/etc/resolv.conf`.
pub fn bring_up(sys: &Path, timeout: Duration) -> anyhow::Result<Up> {
    let candidates = link::physical_interfaces(sys);
    anyhow::ensure!(
        !candidates.is_empty(),
        "no network interface found: the NIC's driver may be missing from the PE (see kernel-config/modules.txt)"
    );
    let mut errors = Vec::new();
    for iface in &candidates {
        let attempt = || -> anyhow::Result<Up> {
            link::set_up(iface)?;
            link::wait_for_carrier(sys, iface, Duration::from_secs(10))?;
            let mac = link::mac(sys, iface)?;
            let lease = dhcp::obtain(iface, mac, timeout)?;
            link::configure(iface, lease.address, lease.netmask, lease.router)?;
            write_resolv_conf(&lease.dns)?;
            Ok(Up { interface: iface.clone(), lease })
        };
        match attempt() {
            Ok(up) => return Ok(up),
            Err(e) => errors.push(format!("{iface}: {e:#}")),
        }
    }
    anyhow::bail!("no interface got a network address over DHCP ({}); check the cable and the DHCP server", errors.join("; "))
}

fn write_resolv_conf(dns: &[Ipv4Addr]) -> anyhow::Result<()> {
    let text: String = dns.iter().map(|d| format!("nameserver {d}\n")).collect();
    std::fs::create_dir_all("/etc").ok();
    std::fs::write("/etc/resolv.conf", text).context("writing /etc/resolv.conf")
}

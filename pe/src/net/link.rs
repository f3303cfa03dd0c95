//! Interface configuration through ioctls (no shelling out): flags, IPv4 address, netmask and
//! the default route.

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::libc;

use crate::progress::Cancel;

/// Interfaces backed by a device (not `lo`, not virtual), sorted by name.
pub fn physical_interfaces(sys: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(sys.join("class/net"))
        .map(|it| {
            it.flatten()
                .filter(|e| e.path().join("device").exists())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

pub fn mac(sys: &Path, iface: &str) -> anyhow::Result<[u8; 6]> {
    let text = std::fs::read_to_string(sys.join("class/net").join(iface).join("address"))
        .with_context(|| format!("reading the MAC address of {iface}"))?;
    let bytes: Vec<u8> = text.trim().split(':').filter_map(|h| u8::from_str_radix(h, 16).ok()).collect();
    bytes.try_into().map_err(|_| anyhow::anyhow!("{iface} has no Ethernet MAC address ({})", text.trim()))
}

/// Waits up to `limit` for a link on `iface`; gives up early when `cancel` is raised.
pub fn wait_for_carrier(sys: &Path, iface: &str, limit: Duration, cancel: &Cancel) -> anyhow::Result<()> {
    let start = Instant::now();
    let path = sys.join("class/net").join(iface).join("carrier");
    while start.elapsed() < limit {
        anyhow::ensure!(!cancel.is_cancelled(), "stopped on request while waiting for a link on {iface}");
        if std::fs::read_to_string(&path).map(|s| s.trim() == "1").unwrap_or(false) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    anyhow::bail!("no link on {iface} after {} s: is the cable plugged in?", limit.as_secs())
}

fn ifreq(iface: &str) -> anyhow::Result<libc::ifreq> {
    anyhow::ensure!(iface.len() < libc::IFNAMSIZ, "interface name {iface:?} is too long");
    // SAFETY: ifreq is a plain C struct for which all-zero bytes are a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(iface.bytes()) {
        *dst = src as libc::c_char;
    }
    Ok(req)
}

fn sockaddr(addr: Ipv4Addr) -> libc::sockaddr {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr { s_addr: u32::from(addr).to_be() },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in and sockaddr have the same size on Linux; the kernel reads it as
    // sockaddr_in because sin_family is AF_INET.
    unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
}

fn control_socket() -> anyhow::Result<std::net::UdpSocket> {
    std::net::UdpSocket::bind("0.0.0.0:0").context("opening a socket to configure the network")
}

/// `request` is one of the `SIOC*` numbers (their C type differs between libcs).
fn ioctl<T>(request: u64, arg: &mut T, what: &str) -> anyhow::Result<()> {
    let sock = control_socket()?;
    // SAFETY: `arg` is the struct this request reads or writes (ifreq or rtentry), valid and
    // exclusively borrowed for the duration of the call.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), request as libc::Ioctl, arg as *mut T) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| what.to_string());
    }
    Ok(())
}

pub fn set_up(iface: &str) -> anyhow::Result<()> {
    let mut req = ifreq(iface)?;
    ioctl(libc::SIOCGIFFLAGS, &mut req, &format!("reading the flags of {iface}"))?;
    // SAFETY: SIOCGIFFLAGS filled the ifru_flags member of the union.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    ioctl(libc::SIOCSIFFLAGS, &mut req, &format!("bringing {iface} up"))
}

pub fn configure(iface: &str, address: Ipv4Addr, netmask: Ipv4Addr, router: Option<Ipv4Addr>) -> anyhow::Result<()> {
    let mut req = ifreq(iface)?;
    req.ifr_ifru.ifru_addr = sockaddr(address);
    ioctl(libc::SIOCSIFADDR, &mut req, &format!("setting {address} on {iface}"))?;
    let mut req = ifreq(iface)?;
    req.ifr_ifru.ifru_netmask = sockaddr(netmask);
    ioctl(libc::SIOCSIFNETMASK, &mut req, &format!("setting netmask {netmask} on {iface}"))?;
    if let Some(gw) = router {
        // SAFETY: rtentry is a plain C struct for which all-zero bytes are a valid value.
        let mut rt: libc::rtentry = unsafe { std::mem::zeroed() };
        rt.rt_dst = sockaddr(Ipv4Addr::UNSPECIFIED);
        rt.rt_genmask = sockaddr(Ipv4Addr::UNSPECIFIED);
        rt.rt_gateway = sockaddr(gw);
        rt.rt_flags = libc::RTF_UP | libc::RTF_GATEWAY;
        match ioctl(libc::SIOCADDRT, &mut rt, &format!("adding the default route via {gw}")) {
            Err(e) if e.root_cause().downcast_ref::<std::io::Error>().and_then(|e| e.raw_os_error()) == Some(libc::EEXIST) => {}
            other => other?,
        }
    }
    Ok(())
}

//! A DHCPv4 client for one interface: DISCOVER, OFFER, REQUEST, ACK. The packets are built and
//! parsed by `dhcproto`; replies are asked for as broadcasts, since the interface has no
//! address yet.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use anyhow::Context;
use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};
use socket2::{Domain, Protocol, Socket, Type};

use crate::progress::Cancel;

#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    pub address: Ipv4Addr,
    pub netmask: Ipv4Addr,
    pub router: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub server: Ipv4Addr,
}

/// Builds a client message of `kind`.
pub fn request_message(kind: MessageType, mac: [u8; 6], xid: u32, offer: Option<&Lease>) -> Message {
    let mut msg = Message::default();
    msg.set_opcode(Opcode::BootRequest).set_xid(xid).set_flags(Flags::default().set_broadcast()).set_chaddr(&mac);
    let opts = msg.opts_mut();
    opts.insert(DhcpOption::MessageType(kind));
    opts.insert(DhcpOption::ParameterRequestList(vec![
        OptionCode::SubnetMask,
        OptionCode::Router,
        OptionCode::DomainNameServer,
    ]));
    if let Some(o) = offer {
        opts.insert(DhcpOption::RequestedIpAddress(o.address));
        opts.insert(DhcpOption::ServerIdentifier(o.server));
    }
    msg
}

/// The lease in a server reply of `kind` for our `xid`, or `None` for anything else.
pub fn parse_reply(bytes: &[u8], xid: u32, kind: MessageType) -> Option<Lease> {
    let msg = Message::decode(&mut Decoder::new(bytes)).ok()?;
    if msg.opcode() != Opcode::BootReply || msg.xid() != xid {
        return None;
    }
    match msg.opts().get(OptionCode::MessageType) {
        Some(DhcpOption::MessageType(k)) if *k == kind => {}
        _ => return None,
    }
    let netmask = match msg.opts().get(OptionCode::SubnetMask) {
        Some(DhcpOption::SubnetMask(m)) => *m,
        _ => Ipv4Addr::new(255, 255, 255, 0),
    };
    let router = match msg.opts().get(OptionCode::Router) {
        Some(DhcpOption::Router(r)) => r.first().copied(),
        _ => None,
    };
    let dns = match msg.opts().get(OptionCode::DomainNameServer) {
        Some(DhcpOption::DomainNameServer(d)) => d.clone(),
        _ => Vec::new(),
    };
    let server = match msg.opts().get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(s)) => *s,
        _ => msg.siaddr(),
    };
    Some(Lease { address: msg.yiaddr(), netmask, router, dns, server })
}

/// Runs the exchange on `iface`, retrying until `timeout`; gives up within half a second of a
/// raised `cancel`.
pub fn obtain(iface: &str, mac: [u8; 6], timeout: Duration, cancel: &Cancel) -> anyhow::Result<Lease> {
    let sock = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).context("opening the DHCP socket")?;
    sock.set_reuse_address(true)?;
    sock.set_broadcast(true)?;
    sock.bind_device(Some(iface.as_bytes())).with_context(|| format!("binding the DHCP socket to {iface}"))?;
    sock.bind(&SocketAddr::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68)).into()).context("binding UDP port 68")?;
    let sock: std::net::UdpSocket = sock.into();
    sock.set_read_timeout(Some(Duration::from_millis(500)))?;
    let broadcast = SocketAddrV4::new(Ipv4Addr::BROADCAST, 67);
    let xid = u32::from_be_bytes([mac[2], mac[3], mac[4], mac[5]]) ^ std::process::id().rotate_left(16);
    let start = Instant::now();
    let exchange = |kind: MessageType, offer: Option<&Lease>, want: MessageType| -> anyhow::Result<Option<Lease>> {
        let mut buf = Vec::new();
        request_message(kind, mac, xid, offer).encode(&mut Encoder::new(&mut buf))?;
        sock.send_to(&buf, broadcast).with_context(|| format!("sending DHCP {kind:?} on {iface}"))?;
        let until = Instant::now() + Duration::from_secs(2);
        let mut reply = [0u8; 1500];
        while Instant::now() < until {
            anyhow::ensure!(!cancel.is_cancelled(), "stopped on request while waiting for DHCP on {iface}");
            match sock.recv_from(&mut reply) {
                Ok((n, _)) => {
                    if let Some(lease) = parse_reply(&reply[..n], xid, want) {
                        return Ok(Some(lease));
                    }
                }
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) => return Err(e).context("receiving a DHCP reply"),
            }
        }
        Ok(None)
    };
    while start.elapsed() < timeout {
        let Some(offer) = exchange(MessageType::Discover, None, MessageType::Offer)? else { continue };
        if let Some(ack) = exchange(MessageType::Request, Some(&offer), MessageType::Ack)? {
            return Ok(ack);
        }
    }
    anyhow::bail!("no DHCP offer on {iface} within {} s", timeout.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_an_offer() {
        let mac = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
        let offer = Lease {
            address: Ipv4Addr::new(10, 0, 2, 15),
            netmask: Ipv4Addr::new(255, 255, 255, 0),
            router: Some(Ipv4Addr::new(10, 0, 2, 2)),
            dns: vec![Ipv4Addr::new(10, 0, 2, 3)],
            server: Ipv4Addr::new(10, 0, 2, 2),
        };
        let req = request_message(MessageType::Request, mac, 7, Some(&offer));
        assert_eq!(req.opts().get(OptionCode::RequestedIpAddress), Some(&DhcpOption::RequestedIpAddress(offer.address)));
        assert!(req.flags().broadcast());

        // A server's reply, as a server would build it.
        let mut reply = Message::default();
        reply.set_opcode(Opcode::BootReply).set_xid(7).set_yiaddr(offer.address).set_chaddr(&mac);
        reply.opts_mut().insert(DhcpOption::MessageType(MessageType::Offer));
        reply.opts_mut().insert(DhcpOption::SubnetMask(offer.netmask));
        reply.opts_mut().insert(DhcpOption::Router(vec![Ipv4Addr::new(10, 0, 2, 2)]));
        reply.opts_mut().insert(DhcpOption::DomainNameServer(offer.dns.clone()));
        reply.opts_mut().insert(DhcpOption::ServerIdentifier(offer.server));
        let mut bytes = Vec::new();
        reply.encode(&mut Encoder::new(&mut bytes)).unwrap();
        assert_eq!(parse_reply(&bytes, 7, MessageType::Offer), Some(offer));
        assert_eq!(parse_reply(&bytes, 8, MessageType::Offer), None, "another client's transaction");
        assert_eq!(parse_reply(&bytes, 7, MessageType::Ack), None);
        assert_eq!(parse_reply(&bytes[..20], 7, MessageType::Offer), None);
    }
}

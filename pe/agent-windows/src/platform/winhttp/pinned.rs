//! The pinned CA (`report.ca`): its PEM decoded, a chain engine that trusts it alone, and the
//! server's chain checked against it.

use super::{last_error, Handle};
use super::words::describe;
use std::mem::size_of;
use std::ptr::{null, null_mut};
use windows_sys::Win32::Networking::WinHttp::{
    WinHttpQueryOption, WINHTTP_OPTION_SERVER_CERT_CONTEXT,
};
use windows_sys::Win32::Security::Cryptography::{
    CertAddEncodedCertificateToStore, CertCloseStore, CertCreateCertificateChainEngine, CertFreeCertificateChain,
    CertFreeCertificateChainEngine, CertFreeCertificateContext, CertGetCertificateChain, CertOpenStore,
    CERT_CHAIN_CACHE_ONLY_URL_RETRIEVAL, CERT_CHAIN_CONTEXT, CERT_CHAIN_ENGINE_CONFIG, CERT_CHAIN_EXCLUSIVE_ENABLE_CA_FLAG,
    CERT_CHAIN_PARA, CERT_CONTEXT, CERT_STORE_ADD_ALWAYS, CERT_STORE_CREATE_NEW_FLAG, CERT_STORE_PROV_MEMORY,
    CERT_TRUST_INVALID_BASIC_CONSTRAINTS, CERT_TRUST_IS_CYCLIC, CERT_TRUST_IS_EXPLICIT_DISTRUST,
    CERT_TRUST_IS_NOT_SIGNATURE_VALID, CERT_TRUST_IS_NOT_TIME_VALID, CERT_TRUST_IS_NOT_VALID_FOR_USAGE,
    CERT_TRUST_IS_PARTIAL_CHAIN, CERT_TRUST_IS_REVOKED, CERT_TRUST_IS_UNTRUSTED_ROOT, HCERTCHAINENGINE, HCERTSTORE,
    X509_ASN_ENCODING,
};

/// The pinned certificates (`report.ca`), in a chain engine that trusts them alone.
pub(super) struct Pinned {
    der: Vec<Vec<u8>>,
    engine: Engine,
    /// The engine's exclusive roots; dropped after the engine.
    _roots: Store,
}

impl Pinned {
    pub(super) fn new(pem: &str) -> Result<Pinned, String> {
        let der = pem_certificates(pem)?;
        // SAFETY: a new in-memory store: no provider parameter and no legacy CSP.
        let h = unsafe { CertOpenStore(CERT_STORE_PROV_MEMORY, 0, 0, CERT_STORE_CREATE_NEW_FLAG, null()) };
        if h.is_null() {
            return Err(format!("cannot make a certificate store: {}", describe(last_error())));
        }
        let roots = Store(h);
        for (i, d) in der.iter().enumerate() {
            // SAFETY: `roots` is open; `d` is readable for its length; no context is asked back.
            let ok = unsafe {
                CertAddEncodedCertificateToStore(roots.0, X509_ASN_ENCODING, d.as_ptr(), d.len() as u32, CERT_STORE_ADD_ALWAYS, null_mut())
            };
            if ok == 0 {
                return Err(format!("certificate {} of the PEM is not a valid X.509 certificate: {}", i + 1, describe(last_error())));
            }
        }
        let config = CERT_CHAIN_ENGINE_CONFIG {
            cbSize: size_of::<CERT_CHAIN_ENGINE_CONFIG>() as u32,
            hExclusiveRoot: roots.0,
            // A pinned intermediate CA is an anchor too.
            dwExclusiveFlags: CERT_CHAIN_EXCLUSIVE_ENABLE_CA_FLAG,
            ..Default::default()
        };
        let mut engine: HCERTCHAINENGINE = null_mut();
        // Windows 8 and later take the whole structure. Wine (8.0) knows it without its last
        // field, `dwExclusiveFlags`, and refuses any other size: it is asked again with that one.
        let without_flags = std::mem::offset_of!(CERT_CHAIN_ENGINE_CONFIG, dwExclusiveFlags).next_multiple_of(size_of::<usize>());
        for size in [config.cbSize, without_flags as u32] {
            let config = CERT_CHAIN_ENGINE_CONFIG { cbSize: size, ..config };
            // SAFETY: `config` is initialised (whole, whatever size it claims) and its store is
            // open; `engine` is writable.
            if unsafe { CertCreateCertificateChainEngine(&config, &mut engine) } != 0 {
                return Ok(Pinned { der, engine: Engine(engine), _roots: roots });
            }
        }
        Err(format!("Windows cannot make a chain engine that trusts it alone (this needs Windows 8 or later): {}", describe(last_error())))
    }

    /// Whether the certificate the server of `request` showed chains to a pinned one.
    pub(super) fn check(&self, request: &Handle) -> Result<(), String> {
        let mut ctx: *mut CERT_CONTEXT = null_mut();
        let mut size = size_of::<*mut CERT_CONTEXT>() as u32;
        // SAFETY: the request's TLS handshake is done; the option writes one pointer into `ctx`,
        // whose size `size` holds.
        let ok = unsafe {
            WinHttpQueryOption(request.0, WINHTTP_OPTION_SERVER_CERT_CONTEXT, (&mut ctx as *mut *mut CERT_CONTEXT).cast(), &mut size)
        };
        if ok == 0 || ctx.is_null() {
            return Err(format!("WinHTTP does not give the server's certificate: {}", describe(last_error())));
        }
        let cert = Cert(ctx);
        let para = CERT_CHAIN_PARA { cbSize: size_of::<CERT_CHAIN_PARA>() as u32, ..Default::default() };
        let mut chain: *mut CERT_CHAIN_CONTEXT = null_mut();
        // SAFETY: the engine and the certificate are alive; the certificate's own store holds
        // what the server sent (its intermediates); null time is now; `chain` is writable.
        // Cache only: a lab's CA has nothing to fetch, and the timeout must hold.
        let ok = unsafe {
            CertGetCertificateChain(
                self.engine.0,
                cert.0,
                null(),
                (*cert.0).hCertStore,
                &para,
                CERT_CHAIN_CACHE_ONLY_URL_RETRIEVAL,
                null(),
                &mut chain,
            )
        };
        if ok == 0 || chain.is_null() {
            return Err(format!("Windows cannot build its chain: {}", describe(last_error())));
        }
        let chain = Chain(chain);
        // SAFETY: the chain context is alive until `chain` drops.
        let context = unsafe { &*chain.0 };
        let status = context.TrustStatus.dwErrorStatus;
        if status != 0 {
            return Err(trust_errors(status));
        }
        // The engine trusts the pinned certificates alone; this holds even where it would not.
        if !chain_certificates(context).iter().any(|c| self.der.iter().any(|d| d.as_slice() == *c)) {
            return Err("its chain does not contain a pinned certificate".into());
        }
        Ok(())
    }
}

/// The encoded certificates of every element of every simple chain in `chain`.
pub(super) fn chain_certificates(chain: &CERT_CHAIN_CONTEXT) -> Vec<&[u8]> {
    let mut out = Vec::new();
    for i in 0..chain.cChain as usize {
        // SAFETY: `rgpChain` holds `cChain` pointers to simple chains, alive with `chain`.
        let simple = unsafe { &**chain.rgpChain.add(i) };
        for j in 0..simple.cElement as usize {
            // SAFETY: `rgpElement` holds `cElement` pointers to elements, each with a
            // certificate context whose encoding is `cbCertEncoded` bytes, alive with `chain`.
            out.push(unsafe {
                let cert = &*(**simple.rgpElement.add(j)).pCertContext;
                std::slice::from_raw_parts(cert.pbCertEncoded, cert.cbCertEncoded as usize)
            });
        }
    }
    out
}

/// What a chain's error status says, in words.
pub(super) fn trust_errors(status: u32) -> String {
    const WORDS: [(u32, &str); 9] = [
        (CERT_TRUST_IS_UNTRUSTED_ROOT, "it ends at a CA other than the pinned one"),
        (CERT_TRUST_IS_PARTIAL_CHAIN, "its issuer is neither the pinned CA nor a certificate the server sent"),
        (CERT_TRUST_IS_NOT_SIGNATURE_VALID, "a signature in the chain does not verify"),
        (CERT_TRUST_IS_NOT_TIME_VALID, "a certificate in the chain has expired or is not valid yet (check this machine's clock)"),
        (CERT_TRUST_IS_REVOKED, "a certificate in the chain is revoked"),
        (CERT_TRUST_IS_NOT_VALID_FOR_USAGE, "a certificate in the chain is not meant for a server"),
        (CERT_TRUST_INVALID_BASIC_CONSTRAINTS, "a certificate that signs another is not marked as a CA"),
        (CERT_TRUST_IS_CYCLIC, "the chain goes round in a cycle"),
        (CERT_TRUST_IS_EXPLICIT_DISTRUST, "Windows distrusts a certificate in the chain"),
    ];
    let mut said: Vec<&str> = WORDS.iter().filter(|(bit, _)| status & bit != 0).map(|(_, w)| *w).collect();
    if said.is_empty() {
        said.push("the chain does not verify");
    }
    format!("{} (chain status {status:#x})", said.join("; "))
}

/// A certificate store, closed when dropped.
pub(super) struct Store(HCERTSTORE);

impl Drop for Store {
    fn drop(&mut self) {
        // SAFETY: the store came from CertOpenStore and is closed only here.
        unsafe { CertCloseStore(self.0, 0) };
    }
}

/// A chain engine, freed when dropped.
pub(super) struct Engine(HCERTCHAINENGINE);

impl Drop for Engine {
    fn drop(&mut self) {
        // SAFETY: the engine came from CertCreateCertificateChainEngine and is freed only here.
        unsafe { CertFreeCertificateChainEngine(self.0) };
    }
}

/// A chain context, freed when dropped.
pub(super) struct Chain(*mut CERT_CHAIN_CONTEXT);

impl Drop for Chain {
    fn drop(&mut self) {
        // SAFETY: the chain came from CertGetCertificateChain and is freed only here.
        unsafe { CertFreeCertificateChain(self.0) };
    }
}

/// A certificate context, freed when dropped.
pub(super) struct Cert(*mut CERT_CONTEXT);

impl Drop for Cert {
    fn drop(&mut self) {
        // SAFETY: WinHTTP handed this context over to be freed by us, here only.
        unsafe { CertFreeCertificateContext(self.0) };
    }
}

/// The DER certificates of every `CERTIFICATE` block in `pem`.
pub(super) fn pem_certificates(pem: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut block: Option<String> = None;
    for line in pem.lines().map(str::trim) {
        match &mut block {
            None if line == "-----BEGIN CERTIFICATE-----" => block = Some(String::new()),
            None => {}
            Some(b64) if line == "-----END CERTIFICATE-----" => {
                let der = base64(b64).ok_or_else(|| format!("certificate {} of the PEM is not valid base64", out.len() + 1))?;
                out.push(der);
                block = None;
            }
            Some(b64) => b64.push_str(line),
        }
    }
    if block.is_some() {
        return Err(format!("certificate {} of the PEM has no -----END CERTIFICATE----- line", out.len() + 1));
    }
    if out.is_empty() {
        return Err("it holds no -----BEGIN CERTIFICATE----- block".into());
    }
    Ok(out)
}

/// Decodes standard base64 (padding optional, whitespace skipped); `None` when it is not.
pub(super) fn base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits, mut padding) = (0u32, 0u32, 0);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                padding += 1;
                continue;
            }
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            _ => return None,
        };
        if padding > 0 {
            return None;
        }
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // A lone sixth of a byte, or more padding than a group has, is not base64.
    (bits < 6 && padding <= 2).then_some(out)
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_and_refuses() {
        assert_eq!(base64("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64("aGVsbG8").unwrap(), b"hello");
        assert_eq!(base64("aGVs\nbG8h").unwrap(), b"hell\x6f!");
        assert_eq!(base64("").unwrap(), b"");
        assert!(base64("aGV*").is_none());
        assert!(base64("a").is_none());
        assert!(base64("aG=Vs").is_none());
    }

    #[test]
    fn pem_takes_every_certificate_block() {
        let pem = "junk\n-----BEGIN CERTIFICATE-----\naGVs\nbG8=\n-----END CERTIFICATE-----\n\
                   -----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n\
                   -----BEGIN CERTIFICATE-----\r\nd29y\r\nbGQ=\r\n-----END CERTIFICATE-----\r\n";
        assert_eq!(pem_certificates(pem).unwrap(), vec![b"hello".to_vec(), b"world".to_vec()]);
        assert!(pem_certificates("no pem here").unwrap_err().contains("no -----BEGIN CERTIFICATE-----"));
        assert!(pem_certificates("-----BEGIN CERTIFICATE-----\naGVs\n").unwrap_err().contains("no -----END"));
        assert!(pem_certificates("-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----").unwrap_err().contains("base64"));
    }
}

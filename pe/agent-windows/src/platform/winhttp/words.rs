//! WinHTTP's failures and the collector's answers as `PostError`s, in words a lab admin
//! understands.

use super::wide;
use crate::platform::PostError;
use std::ffi::c_void;
use std::ptr::null;
use windows_sys::Win32::Networking::WinHttp::{
    WINHTTP_CALLBACK_STATUS_FLAG_CERT_CN_INVALID, WINHTTP_CALLBACK_STATUS_FLAG_CERT_DATE_INVALID,
    WINHTTP_CALLBACK_STATUS_FLAG_CERT_REVOKED, WINHTTP_CALLBACK_STATUS_FLAG_CERT_REV_FAILED,
    WINHTTP_CALLBACK_STATUS_FLAG_CERT_WRONG_USAGE, WINHTTP_CALLBACK_STATUS_FLAG_INVALID_CA,
    WINHTTP_CALLBACK_STATUS_FLAG_INVALID_CERT, WINHTTP_CALLBACK_STATUS_FLAG_SECURITY_CHANNEL_ERROR,
};
use windows_sys::Win32::System::Diagnostics::Debug::{
    FormatMessageW, FORMAT_MESSAGE_FROM_HMODULE, FORMAT_MESSAGE_FROM_SYSTEM, FORMAT_MESSAGE_IGNORE_INSERTS,
};
use windows_sys::Win32::System::LibraryLoader::GetModuleHandleW;

/// Where a request failed.
pub(super) enum Stage {
    Connect,
    Send,
    Answer,
}

/// A WinHTTP failure as a `PostError`: TLS and URL problems are refused, the rest may pass
/// later. `cert_flags`: what the SECURE_FAILURE callback said (WINHTTP_CALLBACK_STATUS_FLAG_*).
pub(super) fn failed(url: &str, stage: Stage, code: u32, cert_flags: u32) -> PostError {
    const FLAGS: [(u32, &str); 8] = [
        (WINHTTP_CALLBACK_STATUS_FLAG_INVALID_CA, CERT_UNKNOWN_CA),
        (WINHTTP_CALLBACK_STATUS_FLAG_CERT_CN_INVALID, CERT_WRONG_NAME),
        (WINHTTP_CALLBACK_STATUS_FLAG_CERT_DATE_INVALID, CERT_EXPIRED),
        (WINHTTP_CALLBACK_STATUS_FLAG_CERT_REVOKED, "it is revoked"),
        (WINHTTP_CALLBACK_STATUS_FLAG_CERT_REV_FAILED, "its revocation cannot be checked"),
        (WINHTTP_CALLBACK_STATUS_FLAG_INVALID_CERT, "it is not valid"),
        (WINHTTP_CALLBACK_STATUS_FLAG_CERT_WRONG_USAGE, "it is not meant for a server"),
        (WINHTTP_CALLBACK_STATUS_FLAG_SECURITY_CHANNEL_ERROR, "the TLS handshake failed"),
    ];
    let said: Vec<&str> = FLAGS.iter().filter(|(bit, _)| cert_flags & bit != 0).map(|(_, w)| *w).collect();
    if !said.is_empty() {
        return PostError::Refused(format!(
            "the certificate of the collector {url} is refused: {} (WinHTTP error {code})",
            said.join("; ")
        ));
    }
    let why = describe(code);
    match code {
        // What is wrong with the certificate, when the code says it.
        12037 | 12038 | 12044 | 12045 | 12057 | 12169 | 12170 | 12179 => {
            PostError::Refused(format!("the certificate of the collector {url} is refused: {why}"))
        }
        // ERROR_WINHTTP_SECURE_CHANNEL_ERROR, ERROR_WINHTTP_SECURE_FAILURE: TLS failed, the
        // certificate perhaps (Wine says 12157 for any refused certificate).
        12157 | 12175 => PostError::Refused(format!("TLS with the collector {url} failed: {why}")),
        // ERROR_WINHTTP_INVALID_URL, ERROR_WINHTTP_UNRECOGNIZED_SCHEME.
        12005 | 12006 => PostError::Refused(format!("the collector URL {url:?} cannot be used: {why}; check report.url")),
        _ => PostError::Later(match stage {
            Stage::Connect => format!("cannot connect to the collector {url}: {why}"),
            Stage::Send => format!("cannot send the report to the collector {url}: {why}"),
            Stage::Answer => format!("no answer from the collector {url}: {why}"),
        }),
    }
}

pub(super) const PINNED_REFUSED: &str =
    "the handshake failed, or the certificate is not issued for this host name or is out of its dates (its CA is pinned)";
pub(super) const CERT_UNKNOWN_CA: &str = "it is issued by a CA that Windows does not trust (a lab's own CA: pin it with report.ca)";
pub(super) const CERT_WRONG_NAME: &str = "it is not issued for this host name";
pub(super) const CERT_EXPIRED: &str = "it has expired or is not valid yet (check this machine's clock)";

/// An HTTP answer as the result of the POST.
pub(super) fn answer(url: &str, status: u32, said: &str) -> Result<u16, PostError> {
    let said = if said.is_empty() { String::new() } else { format!(" ({said})") };
    let answered = format!("the collector {url} answered HTTP {status}{said}");
    match status {
        200..=299 => Ok(status as u16),
        408 | 429 | 500..=599 => Err(PostError::Later(answered)),
        401 | 403 => Err(PostError::Refused(format!("{answered}: check report.token"))),
        300..=399 => Err(PostError::Refused(format!(
            "{answered}: a redirect, which reports do not follow; set report.url to the address it points to"
        ))),
        _ => Err(PostError::Refused(format!("{answered}: check report.url; it must take a POST of JSON"))),
    }
}

/// The first line of an answer's body, when it is short plain text (not an HTML page).
pub(super) fn first_line(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    if line.starts_with('<') {
        return String::new();
    }
    let mut out: String = line.chars().filter(|c| !c.is_control()).take(200).collect();
    if line.chars().count() > 200 {
        out.push('…');
    }
    out
}

/// A WinHTTP (or Windows) error code in words, with its number.
pub(super) fn describe(code: u32) -> String {
    let words = match code {
        12002 | 10060 => "timed out",
        12007 => "the server name does not resolve",
        12029 | 10061 => "the connection was refused or the host cannot be reached",
        12030 | 10054 => "the connection was closed or reset",
        10065 => "the host cannot be reached",
        12032 => "the request must be sent again",
        12152 => "the answer is not HTTP (check http:// versus https:// and the port)",
        12005 => "the URL is malformed",
        12006 => "only http:// and https:// are supported",
        12037 => CERT_EXPIRED,
        12038 => CERT_WRONG_NAME,
        12044 => "the server asks for a client certificate, which inplace does not have",
        12045 => CERT_UNKNOWN_CA,
        12057 => "its revocation cannot be checked",
        12157 => "the handshake failed or the server's certificate was refused; a lab's own CA must be pinned with report.ca",
        12169 => "it is not valid",
        12170 => "it is revoked",
        12175 => "the server's certificate was refused; a lab's own CA must be pinned with report.ca",
        12179 => "it is not meant for a server",
        _ => {
            let kind = if (12000..13000).contains(&code) { "WinHTTP error" } else { "error" };
            return match system_text(code) {
                Some(text) => format!("{text} ({kind} {code})"),
                None if kind == "error" && code > 0xffff => format!("{kind} {code:#x}"),
                None => format!("{kind} {code}"),
            };
        }
    };
    let kind = if (12000..13000).contains(&code) { "WinHTTP error" } else { "Windows Sockets error" };
    format!("{words} ({kind} {code})")
}

/// Windows' own text for `code`, from winhttp.dll's messages or the system's.
pub(super) fn system_text(code: u32) -> Option<String> {
    let name = wide("winhttp.dll");
    // SAFETY: `name` is NUL-terminated; the handle is not owned (nothing to free).
    let module = unsafe { GetModuleHandleW(name.as_ptr()) };
    let mut flags = FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS;
    if !module.is_null() {
        flags |= FORMAT_MESSAGE_FROM_HMODULE;
    }
    let mut buf = [0u16; 512];
    // SAFETY: `buf` is writable for the length passed; `module` is a loaded module (or null and
    // unused); inserts are ignored, so no arguments are read.
    let n = unsafe { FormatMessageW(flags, module as *const c_void, code, 0, buf.as_mut_ptr(), buf.len() as u32, null()) };
    let text = String::from_utf16_lossy(&buf[..(n as usize).min(buf.len())]);
    let text = text.trim().trim_end_matches('.');
    (!text.is_empty()).then(|| text.to_string())
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_sorted_into_later_and_refused() {
        let u = "http://10.0.0.5:8080/in";
        assert_eq!(answer(u, 204, ""), Ok(204));
        for s in [408, 429, 500, 503] {
            assert!(matches!(answer(u, s, ""), Err(PostError::Later(m)) if m.contains(&format!("answered HTTP {s}"))), "{s}");
        }
        for s in [301, 400, 401, 403, 404] {
            assert!(matches!(answer(u, s, ""), Err(PostError::Refused(m)) if m.contains(&format!("answered HTTP {s}"))), "{s}");
        }
        assert_eq!(
            answer(u, 403, "unknown token"),
            Err(PostError::Refused("the collector http://10.0.0.5:8080/in answered HTTP 403 (unknown token): check report.token".into()))
        );
    }

    #[test]
    fn winhttp_errors_are_sorted_and_worded() {
        let u = "https://collector.lab/in";
        let refused_at = format!("cannot connect to the collector {u}: the connection was refused");
        assert!(matches!(failed(u, Stage::Connect, 12029, 0), PostError::Later(m) if m.starts_with(&refused_at)));
        assert!(matches!(failed(u, Stage::Answer, 12002, 0), PostError::Later(m) if m.contains("timed out (WinHTTP error 12002)")));
        assert!(matches!(failed(u, Stage::Answer, 10060, 0), PostError::Later(m) if m.contains("timed out (Windows Sockets error 10060)")));
        for code in [12175, 12157, 12044, 12045, 12057, 12169, 12038] {
            assert!(matches!(failed(u, Stage::Connect, code, 0), PostError::Refused(m) if m.contains("certificate")), "{code}");
        }
        assert!(matches!(failed(u, Stage::Connect, 12045, 0), PostError::Refused(m) if m.contains("report.ca")));
        // Windows' general 12175 with the callback's reasons.
        let flags = WINHTTP_CALLBACK_STATUS_FLAG_INVALID_CA | WINHTTP_CALLBACK_STATUS_FLAG_CERT_CN_INVALID;
        assert_eq!(
            failed(u, Stage::Connect, 12175, flags),
            PostError::Refused(format!(
                "the certificate of the collector {u} is refused: {CERT_UNKNOWN_CA}; {CERT_WRONG_NAME} (WinHTTP error 12175)"
            ))
        );
        // One without words of ours: Windows' text or the number.
        assert!(describe(12019).contains("WinHTTP error 12019"));
    }

    #[test]
    fn body_lines_are_short_and_plain() {
        assert_eq!(first_line(b"\n  unknown job id\nmore"), "unknown job id");
        assert_eq!(first_line(b"<html><body>403</body></html>"), "");
        assert_eq!(first_line(&[b'x'; 300]).chars().count(), 201);
    }
}

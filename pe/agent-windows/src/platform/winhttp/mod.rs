//! The report client on Windows: one JSON `POST` through WinHTTP, which every Windows has, so
//! the exe carries no TLS library. With a pinned CA (`report.ca`), WinHTTP is told to accept an
//! unknown CA (it still checks the host name and the dates) and the server's certificate is then
//! chained against the pinned certificates alone, before the body goes out.

mod pinned;
mod words;

use super::PostError;
use self::pinned::Pinned;
use self::words::{answer, describe, failed, first_line, Stage, PINNED_REFUSED};
use std::ffi::c_void;
use std::mem::size_of;
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use windows_sys::Win32::Foundation::GetLastError;
use windows_sys::Win32::Networking::WinHttp::{
    WinHttpCloseHandle, WinHttpConnect, WinHttpCrackUrl, WinHttpOpen, WinHttpOpenRequest, WinHttpQueryHeaders, WinHttpReadData, WinHttpReceiveResponse, WinHttpSendRequest, WinHttpSetOption,
    WinHttpSetStatusCallback, WinHttpSetTimeouts, WinHttpWriteData, SECURITY_FLAG_IGNORE_UNKNOWN_CA, URL_COMPONENTS,
    WINHTTP_ACCESS_TYPE_AUTOMATIC_PROXY, WINHTTP_ACCESS_TYPE_DEFAULT_PROXY, WINHTTP_CALLBACK_FLAG_SECURE_FAILURE,
    WINHTTP_CALLBACK_STATUS_SECURE_FAILURE, WINHTTP_DISABLE_REDIRECTS, WINHTTP_FLAG_SECURE, WINHTTP_INTERNET_SCHEME_HTTP,
    WINHTTP_INTERNET_SCHEME_HTTPS, WINHTTP_OPTION_DISABLE_FEATURE, WINHTTP_OPTION_RECEIVE_RESPONSE_TIMEOUT,
    WINHTTP_OPTION_SECURITY_FLAGS, WINHTTP_QUERY_FLAG_NUMBER, WINHTTP_QUERY_STATUS_CODE,
};

/// How much of an answer's body is read (for the collector's words on a refusal).
const BODY_KEPT: usize = 4096;

/// POSTs `body` (JSON) to `url` (http:// or https://) with `Content-Type: application/json`,
/// `Authorization: Bearer <token>` when given; a 2xx answer is Ok. `ca_pem`: when given, the
/// server's certificate must chain to this CA (PEM, one or more certificates) instead of the
/// Windows root store. `timeout` bounds connect, send and receive each.
pub fn post_json(
    url: &str,
    token: Option<&str>,
    ca_pem: Option<&str>,
    body: &[u8],
    timeout: Duration,
) -> Result<u16, PostError> {
    let target = crack(url)?;
    if token.is_some_and(|t| t.contains(['\r', '\n'])) {
        return Err(PostError::Refused(format!("the token for the collector {url} (report.token) contains a line break")));
    }
    let len = u32::try_from(body.len())
        .map_err(|_| PostError::Refused(format!("a report of {} bytes is too large to send to the collector {url}", body.len())))?;
    // The pinned CA is made ready before anything goes out, so a bad one is told as such. It
    // means nothing to http://.
    let pinned = match ca_pem.filter(|_| target.secure) {
        Some(pem) => Some(Pinned::new(pem).map_err(|why| {
            PostError::Refused(format!("the pinned CA (report.ca) for the collector {url} cannot be used: {why}"))
        })?),
        None => None,
    };

    let session = open_session().map_err(|code| PostError::Later(format!("cannot start WinHTTP: {}", describe(code))))?;
    let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX).max(1);
    // SAFETY: `session` is an open session handle.
    if unsafe { WinHttpSetTimeouts(session.0, ms, ms, ms, ms) } == 0 {
        return Err(PostError::Later(format!("cannot set WinHTTP's timeouts: {}", describe(last_error()))));
    }
    // SAFETY: `session` is open; `target.host` is NUL-terminated and outlives the call.
    let connect = Handle::new(unsafe { WinHttpConnect(session.0, target.host.as_ptr(), target.port, 0) })
        .map_err(|code| failed(url, Stage::Connect, code, 0))?;
    // Why WinHTTP refused a certificate (WINHTTP_CALLBACK_STATUS_FLAG_*): Windows tells only a
    // status callback, the call itself fails with a general error. Declared before the request
    // handle, so it outlives every callback.
    let cert_flags = AtomicU32::new(0);
    let verb = wide("POST");
    let flags = if target.secure { WINHTTP_FLAG_SECURE } else { 0 };
    // SAFETY: `connect` is open; the verb and the object name are NUL-terminated and outlive the
    // call; null version, referrer and accept types ask for WinHTTP's defaults.
    let request = Handle::new(unsafe {
        WinHttpOpenRequest(connect.0, verb.as_ptr(), target.object.as_ptr(), null(), null(), null(), flags)
    })
    .map_err(|code| failed(url, Stage::Connect, code, 0))?;
    // SAFETY: `request` is open; `on_secure_failure` matches WINHTTP_STATUS_CALLBACK and only
    // reads its arguments. Without it (it returns WINHTTP_INVALID_STATUS_CALLBACK) the error
    // codes alone are told.
    unsafe { WinHttpSetStatusCallback(request.0, Some(on_secure_failure), WINHTTP_CALLBACK_FLAG_SECURE_FAILURE, 0) };
    // A redirect would carry the report elsewhere (as a GET, for a 301 or 302): the 3xx is
    // reported instead.
    request.set(WINHTTP_OPTION_DISABLE_FEATURE, WINHTTP_DISABLE_REDIRECTS).map_err(|code| failed(url, Stage::Connect, code, 0))?;
    // The wait for the answer's headers has a timeout of its own (90 s on Windows, none in Wine).
    request.set(WINHTTP_OPTION_RECEIVE_RESPONSE_TIMEOUT, ms as u32).map_err(|code| failed(url, Stage::Connect, code, 0))?;
    if pinned.is_some() {
        // Only the unknown CA is let through here; `Pinned::check` decides on the chain.
        request.set(WINHTTP_OPTION_SECURITY_FLAGS, SECURITY_FLAG_IGNORE_UNKNOWN_CA).map_err(|code| failed(url, Stage::Connect, code, 0))?;
    }

    let mut headers = String::from("Content-Type: application/json\r\n");
    if let Some(t) = token {
        headers.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    let headers: Vec<u16> = headers.encode_utf16().collect();
    // The request line and headers, announcing the body's length; the body follows below.
    let context = &cert_flags as *const AtomicU32 as usize;
    // SAFETY: `request` is open; `headers` is valid for the length passed; no optional data;
    // `context` is the address `on_secure_failure` is given, alive while `request` is.
    if unsafe { WinHttpSendRequest(request.0, headers.as_ptr(), headers.len() as u32, null(), 0, len, context) } == 0 {
        let (code, flags) = (last_error(), cert_flags.load(Ordering::SeqCst));
        if pinned.is_some() && flags == 0 && matches!(code, 12157 | 12175) {
            // Not the CA, then: WinHTTP was told to let an unknown one through.
            return Err(PostError::Refused(format!("TLS with the collector {url} failed: {PINNED_REFUSED} (WinHTTP error {code})")));
        }
        return Err(failed(url, Stage::Connect, code, flags));
    }
    if let Some(pinned) = &pinned {
        // The handshake is done. A server that fails the check makes the POST Refused, not
        // delivered, and never gets the body; the request line and headers (with the token)
        // have gone out, which WinHTTP's synchronous mode cannot hold back. Had the body gone
        // too, the count would not suffer: the collector de-duplicates envelopes by id, and the
        // batch is sent again once the certificate is right.
        pinned.check(&request).map_err(|why| {
            PostError::Refused(format!("the certificate of the collector {url} does not chain to the pinned CA (report.ca): {why}"))
        })?;
    }
    request.write_all(body).map_err(|code| failed(url, Stage::Send, code, 0))?;
    // SAFETY: `request` is open and its request has been sent; the reserved argument is null.
    if unsafe { WinHttpReceiveResponse(request.0, null_mut()) } == 0 {
        return Err(failed(url, Stage::Answer, last_error(), 0));
    }
    let status = request.status().map_err(|code| failed(url, Stage::Answer, code, 0))?;
    let said = if (200..300).contains(&status) { String::new() } else { first_line(&request.read_some(BODY_KEPT)) };
    answer(url, status, &said)
}

/// The parts of the URL that WinHTTP is handed, NUL-terminated.
struct Target {
    host: Vec<u16>,
    port: u16,
    /// Path and query.
    object: Vec<u16>,
    secure: bool,
}

/// Splits `url` with `WinHttpCrackUrl`.
fn crack(url: &str) -> Result<Target, PostError> {
    let malformed = |why: &str| {
        PostError::Refused(format!("the collector URL {url:?} is not a valid http:// or https:// URL: {why}; check report.url"))
    };
    if url.contains('\0') {
        return Err(malformed("it contains a NUL character"));
    }
    let wide_url = wide(url);
    let mut parts = URL_COMPONENTS {
        dwStructSize: size_of::<URL_COMPONENTS>() as u32,
        // Non-zero lengths with null pointers: point into `wide_url`.
        dwSchemeLength: u32::MAX,
        dwHostNameLength: u32::MAX,
        dwUrlPathLength: u32::MAX,
        dwExtraInfoLength: u32::MAX,
        ..Default::default()
    };
    // SAFETY: `wide_url` is NUL-terminated (length 0 says so) and outlives every pointer that
    // `parts` receives into it; `parts` is initialised with its size.
    if unsafe { WinHttpCrackUrl(wide_url.as_ptr(), 0, 0, &mut parts) } == 0 {
        return Err(malformed(&describe(last_error())));
    }
    let secure = match parts.nScheme {
        WINHTTP_INTERNET_SCHEME_HTTPS => true,
        WINHTTP_INTERNET_SCHEME_HTTP => false,
        _ => return Err(malformed("only http:// and https:// are supported")),
    };
    let piece = |ptr: *mut u16, len: u32| -> Vec<u16> {
        if ptr.is_null() || len == 0 {
            return Vec::new();
        }
        // SAFETY: WinHttpCrackUrl set `ptr` and `len` to a part of `wide_url`, which is alive.
        unsafe { std::slice::from_raw_parts(ptr, len as usize) }.to_vec()
    };
    let mut host = piece(parts.lpszHostName, parts.dwHostNameLength);
    if host.is_empty() {
        return Err(malformed("it names no host"));
    }
    host.push(0);
    let mut object = piece(parts.lpszUrlPath, parts.dwUrlPathLength);
    if object.is_empty() {
        object.push(u16::from(b'/'));
    }
    // The query goes to the server; a fragment does not.
    let extra = piece(parts.lpszExtraInfo, parts.dwExtraInfoLength);
    object.extend(extra.iter().take_while(|&&c| c != u16::from(b'#')));
    object.push(0);
    Ok(Target { host, port: parts.nPort, object, secure })
}

/// Adds the flags of a WINHTTP_CALLBACK_STATUS_SECURE_FAILURE to the `AtomicU32` whose
/// address is the request's context.
unsafe extern "system" fn on_secure_failure(_: *mut c_void, context: usize, status: u32, info: *mut c_void, len: u32) {
    if status != WINHTTP_CALLBACK_STATUS_SECURE_FAILURE || context == 0 || info.is_null() || (len as usize) < size_of::<u32>() {
        return;
    }
    // SAFETY: WinHTTP passes a DWORD of flags for this status; `context` is the address of
    // `post_json`'s `cert_flags`, which outlives the request handle.
    unsafe { (*(context as *const AtomicU32)).fetch_or(info.cast::<u32>().read_unaligned(), Ordering::SeqCst) };
}

/// A WinHTTP session: the system's and the user's proxy settings where WinHTTP knows them
/// (Windows 8.1 and later), else WinHTTP's own default (`netsh winhttp`).
fn open_session() -> Result<Handle, u32> {
    let agent = wide("inplace-agent");
    let mut error = 0;
    for access in [WINHTTP_ACCESS_TYPE_AUTOMATIC_PROXY, WINHTTP_ACCESS_TYPE_DEFAULT_PROXY] {
        // SAFETY: `agent` is NUL-terminated and outlives the call; these access types take no
        // proxy name or bypass list; flags 0 is a synchronous session.
        match Handle::new(unsafe { WinHttpOpen(agent.as_ptr(), access, null(), null(), 0) }) {
            Ok(h) => return Ok(h),
            Err(code) => error = code,
        }
    }
    Err(error)
}

/// A WinHTTP handle (session, connection or request), closed when dropped.
struct Handle(*mut c_void);

impl Handle {
    /// Takes what a WinHTTP call returned; null is its failure, with the thread's last error.
    fn new(h: *mut c_void) -> Result<Handle, u32> {
        if h.is_null() {
            Err(last_error())
        } else {
            Ok(Handle(h))
        }
    }

    fn set(&self, option: u32, value: u32) -> Result<(), u32> {
        // SAFETY: the handle is open; the option reads a u32 from `value`, alive for the call.
        let ok = unsafe { WinHttpSetOption(self.0, option, (&value as *const u32).cast(), size_of::<u32>() as u32) };
        if ok == 0 {
            Err(last_error())
        } else {
            Ok(())
        }
    }

    fn write_all(&self, mut body: &[u8]) -> Result<(), u32> {
        while !body.is_empty() {
            let mut n = 0u32;
            let chunk = u32::try_from(body.len()).unwrap_or(u32::MAX);
            // SAFETY: the request is open and sent; `body` is readable for `chunk` bytes; `n`
            // is writable.
            if unsafe { WinHttpWriteData(self.0, body.as_ptr().cast(), chunk, &mut n) } == 0 {
                return Err(last_error());
            }
            if n == 0 {
                return Err(12030); // ERROR_WINHTTP_CONNECTION_ERROR: nothing more was taken
            }
            body = &body[(n as usize).min(body.len())..];
        }
        Ok(())
    }

    /// The answer's status code.
    fn status(&self) -> Result<u32, u32> {
        let mut status = 0u32;
        let mut size = size_of::<u32>() as u32;
        // SAFETY: the request has its answer; `status` and `size` are writable and `size` holds
        // the buffer's length; a null name and index ask for the status line's code.
        let ok = unsafe {
            WinHttpQueryHeaders(
                self.0,
                WINHTTP_QUERY_STATUS_CODE | WINHTTP_QUERY_FLAG_NUMBER,
                null(),
                (&mut status as *mut u32).cast(),
                &mut size,
                null_mut(),
            )
        };
        if ok == 0 {
            Err(last_error())
        } else {
            Ok(status)
        }
    }

    /// Up to `limit` bytes of the answer's body; what cannot be read is left.
    fn read_some(&self, limit: usize) -> Vec<u8> {
        let mut out = vec![0u8; limit];
        let mut have = 0;
        while have < limit {
            let mut n = 0u32;
            // SAFETY: the request has its answer; `out[have..]` is writable for the length passed.
            let ok = unsafe { WinHttpReadData(self.0, out[have..].as_mut_ptr().cast(), (limit - have) as u32, &mut n) };
            if ok == 0 || n == 0 {
                break;
            }
            have += n as usize;
        }
        out.truncate(have.min(limit));
        out
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle came from WinHttpOpen, WinHttpConnect or WinHttpOpenRequest and is
        // closed only here; handles are dropped child first.
        unsafe { WinHttpCloseHandle(self.0) };
    }
}


fn last_error() -> u32 {
    // SAFETY: reads the calling thread's last error; no arguments.
    unsafe { GetLastError() }
}

/// `s` as UTF-16 with a final NUL.
fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(Some(0)).collect()
}


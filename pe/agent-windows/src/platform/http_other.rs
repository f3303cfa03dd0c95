//! The stand-in for the report client: the agent sends reports only as `inplace.exe` on
//! Windows (through WinHTTP); the Linux side of the project has its own client.

use super::PostError;
use std::time::Duration;

/// Always refused here: sending needs WinHTTP.
pub fn post_json(_url: &str, _token: Option<&str>, _ca_pem: Option<&str>, _body: &[u8], _timeout: Duration) -> Result<u16, PostError> {
    Err(PostError::Refused("sending reports needs WinHTTP: inplace.exe on Windows".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posting_is_refused_without_winhttp() {
        let r = post_json("http://127.0.0.1:9/in", None, None, b"[]", Duration::from_secs(1));
        assert_eq!(r, Err(PostError::Refused("sending reports needs WinHTTP: inplace.exe on Windows".into())));
    }
}

//! The first boot's envelopes, as `docs/reporting.schema.json` has them: the same fields as
//! the PE's, with `origin: first-boot`. Their ids are fixed when they are numbered (and kept in
//! the spool), so an envelope sent again is one a collector drops.

use crate::hash::hex;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::{SystemTime, UNIX_EPOCH};

/// The envelope's schema version.
pub const VERSION: u32 = 1;

/// The sequence number of an envelope of the spool (0 when it has none).
pub fn seq(e: &Value) -> u64 {
    e["seq"].as_u64().unwrap_or(0)
}

/// An envelope for `event`, of `kind`, numbered `seq`.
pub fn first_boot(job_id: &str, machine: &Value, seq: u64, kind: &str, event: Value, now: SystemTime) -> Value {
    let time = rfc3339(now);
    let id = hex(&Sha256::digest(format!("{job_id}\0{seq}\0first-boot\0{time}\0{event}").as_bytes())[..16]);
    json!({
        "version": VERSION,
        "id": id,
        "job_id": job_id,
        "machine": machine,
        "seq": seq,
        "time": time,
        "origin": "first-boot",
        "kind": kind,
        "event": event,
    })
}

/// `t` in RFC 3339, UTC, with milliseconds (`2026-12-02T11:36:28.123Z`).
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Days to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_in_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_millis(951_782_400_007)), "2000-02-29T00:00:00.007Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(1_796_211_388)), "2026-12-02T11:36:28.000Z");
    }

    #[test]
    fn an_envelope_has_every_field_and_a_32_digit_id() {
        let m = json!({"serial": null, "uuid": "u", "mac": "52:54:00:12:34:56"});
        let e = first_boot("ab", &m, 7, "log", json!({"event": "log", "message": "up"}), UNIX_EPOCH);
        assert_eq!(seq(&e), 7);
        assert_eq!(e["origin"], "first-boot");
        assert_eq!(e["id"].as_str().unwrap().len(), 32);
        let other = first_boot("ab", &m, 8, "log", json!({"event": "log", "message": "up"}), UNIX_EPOCH);
        assert_ne!(e["id"], other["id"]);
    }
}

//! Byte counts for people: shown (`human`, `human_size`) and typed (`parse_size`).

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// `1.5 GiB`, `300 MiB`, `512 B`: exact enough for a technician, with the byte count when it
/// is not a whole number of MiB.
pub fn human(bytes: u64) -> String {
    if bytes >= GIB && bytes % (GIB / 10) == 0 || bytes >= 10 * GIB {
        format!("{:.1} GiB", bytes as f64 / GIB as f64)
    } else if bytes >= MIB && bytes % MIB == 0 {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= MIB {
        format!("{:.1} MiB ({bytes} bytes)", bytes as f64 / MIB as f64)
    } else {
        format!("{bytes} bytes")
    }
}

/// `1.5 GiB`-style sizes, one decimal, for narrow screens.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{bytes} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

/// A value a person typed that is not what it should be; the message says what is expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadValue(pub String);

/// `20G`, `512M`, `1.5T`, `123456` (K, M, G, T are powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, BadValue> {
    let t = s.trim();
    let t = t.strip_suffix("iB").or_else(|| t.strip_suffix('B')).unwrap_or(t);
    let (num, mult) = match t.chars().last() {
        Some(c @ ('K' | 'k' | 'M' | 'm' | 'G' | 'g' | 'T' | 't')) => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                _ => 40,
            };
            (&t[..t.len() - 1], 1u64 << shift)
        }
        _ => (t, 1),
    };
    let bad = || BadValue(format!("{s:?} is not a size; use e.g. 20G, 512M or a byte count"));
    if let Ok(n) = num.parse::<u64>() {
        return n.checked_mul(mult).ok_or_else(bad);
    }
    let f: f64 = num.parse().map_err(|_| bad())?;
    if !f.is_finite() || f <= 0.0 || f * mult as f64 > u64::MAX as f64 / 2.0 {
        return Err(bad());
    }
    Ok((f * mult as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_typed() {
        assert_eq!(parse_size("20G"), Ok(20 << 30));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("1.5K"), Ok(1536));
        assert_eq!(parse_size("77"), Ok(77));
        assert!(parse_size("x").unwrap_err().to_string().contains("is not a size"));
        assert!(parse_size("99999999999T").is_err());
        assert!(parse_size("-1G").is_err());
    }

    #[test]
    fn sizes_shown() {
        assert_eq!(human(1 << 30), "1024 MiB");
        assert_eq!(human(20 << 30), "20.0 GiB");
        assert_eq!(human(300 << 20), "300 MiB");
        assert_eq!(human(512), "512 bytes");
        assert_eq!(human_size(1536 << 20), "1.5 GiB");
        assert_eq!(human_size(12), "12 B");
    }
}

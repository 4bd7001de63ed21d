//! Go's `time.Duration` text: `time.ParseDuration` and `Duration.String`.
//!
//! kubeseal's `--timeout`, the controller's `--key-renew-period`, `--key-ttl`, `--read-timeout`,
//! `--write-timeout` and `--lease-duration`, and `kseal install --timeout` all take Go durations
//! (`720h0m0s`, `1.5h`, `90s`, `250ms`), so that a flag copied from a Bitnami manifest or a
//! kubectl habit means the same here. Parsing follows Go's algorithm exactly: integer
//! nanoseconds, a fraction scaled without floating-point drift in the integer part, and the
//! same overflow limit (about 292 years either way).

use std::fmt;
use std::time::Duration;

/// Why a text is not a Go duration. The messages name what was expected, never the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationError {
    /// Not of the form `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+` (also: empty).
    Invalid,
    /// A number without its unit, as in `10`.
    MissingUnit,
    /// A unit other than ns, us, µs, ms, s, m or h (Go has no `d`).
    UnknownUnit,
    /// Beyond what Go's 64-bit nanosecond count holds.
    Overflow,
    /// A negative duration where only non-negative ones make sense.
    Negative,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Invalid => "expected a Go duration such as 720h0m0s, 1.5h, 90s or 250ms",
            Self::MissingUnit => "missing unit (ns, us, ms, s, m, h)",
            Self::UnknownUnit => "unknown unit (ns, us, ms, s, m, h)",
            Self::Overflow => "duration out of range",
            Self::Negative => "duration must not be negative",
        })
    }
}

impl std::error::Error for DurationError {}

const NANOS_PER_SEC: u64 = 1_000_000_000;
const LIMIT: u64 = 1 << 63;

fn unit_nanos(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => NANOS_PER_SEC,
        "m" => 60 * NANOS_PER_SEC,
        "h" => 3_600 * NANOS_PER_SEC,
        _ => return None,
    })
}

/// Go's `time.ParseDuration`: the signed number of nanoseconds.
pub fn parse(s: &str) -> Result<i64, DurationError> {
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(DurationError::Invalid);
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let b = rest.as_bytes();
        if !(b[0] == b'.' || b[0].is_ascii_digit()) {
            return Err(DurationError::Invalid);
        }
        // [0-9]*
        let int_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let mut whole: u64 = 0;
        for &c in &b[..int_len] {
            if whole > LIMIT / 10 {
                return Err(DurationError::Invalid);
            }
            whole = whole * 10 + u64::from(c - b'0');
            if whole > LIMIT {
                return Err(DurationError::Invalid);
            }
        }
        rest = &rest[int_len..];
        // (\.[0-9]*)?
        let (mut frac, mut scale, mut frac_len) = (0u64, 1f64, 0usize);
        if rest.starts_with('.') {
            rest = &rest[1..];
            let digits = rest.bytes().take_while(|c| c.is_ascii_digit()).count();
            let mut overflow = false;
            for c in rest[..digits].bytes() {
                if overflow || frac > (LIMIT - 1) / 10 {
                    overflow = true;
                    continue;
                }
                let next = frac * 10 + u64::from(c - b'0');
                if next > LIMIT {
                    overflow = true;
                    continue;
                }
                frac = next;
                scale *= 10.0;
            }
            frac_len = digits;
            rest = &rest[digits..];
        }
        if int_len == 0 && frac_len == 0 {
            return Err(DurationError::Invalid);
        }
        // The unit: everything up to the next number.
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        if unit_len == 0 {
            return Err(DurationError::MissingUnit);
        }
        let unit = unit_nanos(&rest[..unit_len]).ok_or(DurationError::UnknownUnit)?;
        rest = &rest[unit_len..];
        if whole > LIMIT / unit {
            return Err(DurationError::Overflow);
        }
        let mut v = whole * unit;
        if frac > 0 {
            // Go: v += uint64(float64(f) * (float64(unit) / scale))
            v += (frac as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(DurationError::Overflow);
            }
        }
        total += v;
        if total > LIMIT {
            return Err(DurationError::Overflow);
        }
    }
    if neg {
        // -(1<<63) is representable.
        return Ok((total as i64).wrapping_neg());
    }
    if total > LIMIT - 1 {
        return Err(DurationError::Overflow);
    }
    Ok(total as i64)
}

/// [`parse`] for durations that cannot be negative (timeouts).
pub fn parse_non_negative(s: &str) -> Result<Duration, DurationError> {
    let n = parse(s)?;
    u64::try_from(n)
        .map(Duration::from_nanos)
        .map_err(|_| DurationError::Negative)
}

/// Go's `Duration.String`: `0s`, `250ms`, `1.5s`, `1m30s`, `720h0m0s`.
pub fn format(nanos: i64) -> String {
    let neg = nanos < 0;
    let mut u = nanos.unsigned_abs();
    // Built back to front, as Go does.
    let mut out: Vec<char> = Vec::with_capacity(24);
    out.push('s');
    if u < NANOS_PER_SEC {
        let prec = match u {
            0 => {
                return "0s".to_string();
            }
            1..=999 => {
                out.push('n');
                0
            }
            1_000..=999_999 => {
                out.push('\u{b5}');
                3
            }
            _ => {
                out.push('m');
                6
            }
        };
        u = push_fraction(&mut out, u, prec);
        push_int(&mut out, u);
    } else {
        u = push_fraction(&mut out, u, 9);
        push_int(&mut out, u % 60);
        u /= 60;
        if u > 0 {
            out.push('m');
            push_int(&mut out, u % 60);
            u /= 60;
            if u > 0 {
                out.push('h');
                push_int(&mut out, u);
            }
        }
    }
    if neg {
        out.push('-');
    }
    out.iter().rev().collect()
}

/// [`format`] for a `std::time::Duration` (saturating at Go's limit).
pub fn format_std(d: Duration) -> String {
    format(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Pushes the fraction of `v / 10^prec` (reversed, trailing zeros and a bare `.` omitted) and
/// returns the integer part.
fn push_fraction(out: &mut Vec<char>, mut v: u64, prec: u32) -> u64 {
    let mut print = false;
    for _ in 0..prec {
        let digit = (v % 10) as u8;
        print = print || digit != 0;
        if print {
            out.push(char::from(b'0' + digit));
        }
        v /= 10;
    }
    if print {
        out.push('.');
    }
    v
}

fn push_int(out: &mut Vec<char>, mut v: u64) {
    if v == 0 {
        out.push('0');
    }
    while v > 0 {
        out.push(char::from(b'0' + (v % 10) as u8));
        v /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn parses_what_go_parses() {
        for (text, want) in [
            ("0", 0),
            ("+0", 0),
            ("-0", 0),
            ("5s", 5 * S),
            ("30s", 30 * S),
            ("1478s", 1478 * S),
            ("-5s", -5 * S),
            ("+5s", 5 * S),
            ("5.0s", 5 * S),
            ("5.6s", 5 * S + 600_000_000),
            ("5.s", 5 * S),
            (".5s", S / 2),
            ("1.0s", S),
            ("1.004s", S + 4_000_000),
            ("100.00100s", 100 * S + 1_000_000),
            ("10ns", 10),
            ("11us", 11_000),
            ("12\u{b5}s", 12_000),
            ("12\u{3bc}s", 12_000),
            ("13ms", 13_000_000),
            ("14s", 14 * S),
            ("15m", 15 * 60 * S),
            ("16h", 16 * 3600 * S),
            ("3h30m", (3 * 3600 + 30 * 60) * S),
            ("10.5s4m", 4 * 60 * S + 10 * S + S / 2),
            ("-2m3.4s", -(2 * 60 * S + 3 * S + 400_000_000)),
            (
                "1h2m3s4ms5us6ns",
                3600 * S + 2 * 60 * S + 3 * S + 4_000_000 + 5_000 + 6,
            ),
            ("39h9m14.425s", (39 * 3600 + 9 * 60 + 14) * S + 425_000_000),
            ("52763797000ns", 52_763_797_000),
            ("0.3333333333333333333h", 20 * 60 * S),
            ("9007199254740993ns", (1 << 53) + 1),
            ("9223372036854775807ns", i64::MAX),
            ("9223372036.854775807s", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("-9223372036.854775808s", i64::MIN),
            ("0.100000000000000000000h", 6 * 60 * S),
            ("0.830103483285477580700h", 49 * 60 * S + 48_372_539_827),
            ("720h0m0s", 720 * 3600 * S),
            ("87600h0m0s", 87600 * 3600 * S),
        ] {
            assert_eq!(parse(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn refuses_what_go_refuses() {
        for (text, want) in [
            ("", DurationError::Invalid),
            ("3", DurationError::MissingUnit),
            ("-", DurationError::Invalid),
            ("s", DurationError::Invalid),
            (".", DurationError::Invalid),
            ("-.", DurationError::Invalid),
            (".s", DurationError::Invalid),
            ("+.s", DurationError::Invalid),
            ("1d", DurationError::UnknownUnit),
            ("\u{85}\u{85}", DurationError::Invalid),
            ("9223372036854775808ns", DurationError::Overflow),
            ("9223372036854775.808us", DurationError::Overflow),
            ("9223372036854ms775us808ns", DurationError::Overflow),
            ("-9223372036854775809ns", DurationError::Invalid),
        ] {
            assert_eq!(parse(text), Err(want), "{text:?}");
        }
        assert_eq!(parse_non_negative("-1s"), Err(DurationError::Negative));
        assert_eq!(parse_non_negative("1.5m"), Ok(Duration::from_secs(90)));
    }

    #[test]
    fn formats_as_go_does() {
        for (nanos, want) in [
            (0, "0s"),
            (1, "1ns"),
            (1_100, "1.1\u{b5}s"),
            (2_200_000, "2.2ms"),
            (3_300_000_000, "3.3s"),
            (4 * 60 * S + 5 * S, "4m5s"),
            (4 * 60 * S + 5 * S + 1_000_000, "4m5.001s"),
            (5 * 3600 * S + 6 * 60 * S + 7 * S + 1_000_000, "5h6m7.001s"),
            (8 * 60 * S + 1, "8m0.000000001s"),
            (720 * 3600 * S, "720h0m0s"),
            (i64::MAX, "2562047h47m16.854775807s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
            (-S / 2, "-500ms"),
        ] {
            assert_eq!(format(nanos), want, "{nanos}");
        }
        assert_eq!(format_std(Duration::from_secs(300)), "5m0s");
    }

    #[test]
    fn errors_never_quote_the_input() {
        for text in ["hunter2", "12x", "99999999999999999999h"] {
            let message = parse(text).unwrap_err().to_string();
            assert!(!message.contains(text), "{message}");
        }
    }
}

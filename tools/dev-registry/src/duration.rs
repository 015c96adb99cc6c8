//! Go `time.Duration` syntax: parsing (`"1m30s"`, `"500ms"`) and formatting (`Duration.String()`).
//!
//! Consul reads every duration in a request with Go's `time.ParseDuration` and prints
//! check intervals with `Duration.String()`, so both directions have to match Go exactly
//! (reference §1.3 "Duration format").

use std::fmt::Write as _;
use std::time::Duration;

/// Nanoseconds per unit, as in Go's `unitMap`. There is no `d` unit.
const UNITS: [(&str, u64); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// A string that Go's `time.ParseDuration` rejects.
///
/// Go words some failures differently (`missing unit`, `unknown unit`); Consul's
/// documentation and the reference samples show `invalid duration` for all of them,
/// which is what is reported here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("time: invalid duration {}", go_quote(.input))]
pub struct InvalidDuration {
    /// The rejected input, verbatim.
    pub input: String,
}

/// Parses a Go duration string into signed nanoseconds.
///
/// Accepts `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+` and the bare `"0"`, exactly like Go.
///
/// # Errors
///
/// [`InvalidDuration`] for an empty string, a number without a unit, an unknown unit
/// or an overflow.
pub fn parse_nanos(input: &str) -> Result<i64, InvalidDuration> {
    let invalid = || InvalidDuration {
        input: input.to_owned(),
    };
    let (negative, mut rest) = match input.as_bytes().first() {
        Some(b'-') => (true, &input[1..]),
        Some(b'+') => (false, &input[1..]),
        _ => (false, input),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (whole, after) = rest.split_at(digits);
        let (fraction, after) = match after.strip_prefix('.') {
            Some(after) => {
                let n = after.bytes().take_while(u8::is_ascii_digit).count();
                after.split_at(n)
            }
            None => ("", after),
        };
        if whole.is_empty() && fraction.is_empty() {
            return Err(invalid());
        }
        let unit_len = after
            .char_indices()
            .find(|&(_, c)| c == '.' || c.is_ascii_digit())
            .map_or(after.len(), |(i, _)| i);
        let (unit, after) = after.split_at(unit_len);
        let &(_, scale) = UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .ok_or_else(invalid)?;
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| invalid())?
        };
        let mut value = whole.checked_mul(u128::from(scale)).ok_or_else(invalid)?;
        if !fraction.is_empty() {
            // Go computes the fraction in float64 too; nanosecond-exact up to hours.
            let digits = fraction.len().min(18);
            let numerator: f64 = fraction[..digits].parse().map_err(|_| invalid())?;
            let denominator = 10f64.powi(i32::try_from(digits).map_err(|_| invalid())?);
            // Truncation towards zero is what Go's uint64(float64) conversion does.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let extra = (numerator * (scale as f64 / denominator)) as u128;
            value += extra;
        }
        total = total.checked_add(value).ok_or_else(invalid)?;
        if total > 1 << 63 {
            return Err(invalid());
        }
        rest = after;
    }
    if negative {
        // -(1<<63) is the one value representable only when negative.
        i64::try_from(total)
            .map(|t| -t)
            .or_else(|_| (total == 1 << 63).then_some(i64::MIN).ok_or_else(invalid))
    } else {
        i64::try_from(total).map_err(|_| invalid())
    }
}

/// Parses a Go duration that must not be negative, as used for command-line flags.
///
/// # Errors
///
/// [`InvalidDuration`] when the string does not parse or is negative.
pub fn parse(input: &str) -> Result<Duration, InvalidDuration> {
    let nanos = parse_nanos(input)?;
    u64::try_from(nanos)
        .map(Duration::from_nanos)
        .map_err(|_| InvalidDuration {
            input: input.to_owned(),
        })
}

/// Formats a duration like Go's `Duration.String()`: `"10s"`, `"1m0s"`, `"1.5ms"`, `"0s"`.
pub fn format(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    let mut out = String::new();
    if nanos < 1_000_000_000 {
        let (value, precision, unit) = match nanos {
            0 => return "0s".to_owned(),
            1..=999 => (nanos, 0, "ns"),
            1_000..=999_999 => (nanos, 3, "µs"),
            _ => (nanos, 6, "ms"),
        };
        let scale = 10u128.pow(precision);
        let _ = write!(out, "{}", value / scale);
        push_fraction(&mut out, value % scale, precision);
        out.push_str(unit);
        return out;
    }
    let seconds = nanos / 1_000_000_000;
    let minutes = seconds / 60;
    let hours = minutes / 60;
    if hours > 0 {
        let _ = write!(out, "{hours}h");
    }
    if minutes > 0 {
        let _ = write!(out, "{}m", minutes % 60);
    }
    let _ = write!(out, "{}", seconds % 60);
    push_fraction(&mut out, nanos % 1_000_000_000, 9);
    out.push('s');
    out
}

/// Appends `.ddd` for a fraction of `10^precision`, trailing zeros dropped (Go's `fmtFrac`).
fn push_fraction(out: &mut String, fraction: u128, precision: u32) {
    if fraction == 0 {
        return;
    }
    let digits = format!("{fraction:0width$}", width = precision as usize);
    out.push('.');
    out.push_str(digits.trim_end_matches('0'));
}

/// Quotes a string the way Go's `strconv.Quote` does for the characters that matter here.
pub(crate) fn go_quote(input: &str) -> String {
    let mut out = String::with_capacity(input.len() + 2);
    out.push('"');
    for c in input.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_go_accepts() {
        let cases = [
            ("0", 0),
            ("-0", 0),
            ("10s", 10_000_000_000),
            ("1m30s", 90_000_000_000),
            ("1.5h", 5_400_000_000_000),
            ("500ms", 500_000_000),
            ("55000ms", 55_000_000_000),
            ("1us", 1_000),
            ("1µs", 1_000),
            ("3ns", 3),
            (".5s", 500_000_000),
            ("1.s", 1_000_000_000),
            ("-5s", -5_000_000_000),
            ("+5s", 5_000_000_000),
            ("1h2m3s4ms", 3_723_004_000_000),
        ];
        for (input, nanos) in cases {
            assert_eq!(parse_nanos(input), Ok(nanos), "{input}");
        }
    }

    #[test]
    fn rejects_what_go_rejects_with_the_quoted_input() {
        for input in [
            "",
            "10",
            "10 seconds",
            "1d",
            "s",
            ".s",
            "-",
            "1.5",
            "10S",
            "5m 3s",
        ] {
            let err = parse_nanos(input).expect_err(input);
            assert_eq!(
                err.to_string(),
                format!("time: invalid duration {}", go_quote(input))
            );
        }
        assert_eq!(
            parse_nanos("10 seconds").unwrap_err().to_string(),
            r#"time: invalid duration "10 seconds""#
        );
    }

    #[test]
    fn rejects_overflow() {
        assert!(parse_nanos("9999999999h").is_err());
        assert_eq!(parse_nanos("-2562047h47m16.854775808s"), Ok(i64::MIN));
        assert!(parse_nanos("2562047h47m16.854775808s").is_err());
    }

    #[test]
    fn formats_like_go_duration_string() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(3), "3ns"),
            (Duration::from_nanos(1_500), "1.5µs"),
            (Duration::from_micros(1_500), "1.5ms"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_secs(10), "10s"),
            (Duration::from_millis(1_500), "1.5s"),
            (Duration::from_secs(60), "1m0s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(3_600), "1h0m0s"),
            (Duration::from_secs(5_400), "1h30m0s"),
        ];
        for (duration, text) in cases {
            assert_eq!(format(duration), text);
        }
    }

    #[test]
    fn parse_and_format_round_trip() {
        for text in ["1h2m3.5s", "10s", "2m0s", "250ms"] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
    }

    #[test]
    fn unsigned_parse_refuses_negative_values() {
        assert!(parse("-1s").is_err());
        assert_eq!(parse("1m").unwrap(), Duration::from_secs(60));
    }
}

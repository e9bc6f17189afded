//! Resource quantities as upstream's `resource.Quantity`: parsing (`500m`, `1Gi`,
//! `2e3`, `0.5`), exact comparison, addition and subtraction, and the canonical text
//! `Quantity.String()` prints (`1500m`, `2Gi`, `1k`).
//!
//! Invariants:
//! - A value is held as a count of nano-units (10^-9) in an `i128`: upstream rounds every
//!   parsed value up (away from zero) to nano precision, so comparisons here are exact
//!   where upstream's `Cmp` is. Values beyond the `i128` range (far past anything a
//!   resource list holds) saturate instead of overflowing.
//! - A BinarySI value is capped at 2^63-1 units and one between 0 and 1 is DecimalSI, as
//!   upstream's parser does.
//! - The format of a sum is the first non-zero addend's (upstream's `Add`).

use serde_json::Value;
use std::cmp::Ordering;
use std::fmt;

/// How a quantity prints (upstream's `resource.Format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `e3`-style exponents.
    DecimalExponent,
    /// `Ki`, `Mi`, ... suffixes.
    BinarySI,
    /// `m`, `k`, `M`, ... suffixes.
    DecimalSI,
}

/// One quantity: a value in nano-units and the format it prints in.
#[derive(Clone, Debug)]
pub struct Quantity {
    nano: i128,
    pub format: Format,
    /// The text it was parsed from, when upstream's parser keeps it (its fast path
    /// keeps text already in canonical form, and a few forms it takes for canonical:
    /// `1.500`, `+3`, `1E6`); `String()` prints it as given.
    text: Option<Box<str>>,
}

const NANO: i128 = 1_000_000_000;
/// The saturation bound: sums of saturated values stay representable.
const LIMIT: i128 = i128::MAX / 4;
/// The most significant digits kept while parsing (more cannot matter below `LIMIT`).
const DIGITS: usize = 36;

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nano == other.nano
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    /// Upstream's `Cmp`: by value, whatever the formats.
    fn cmp(&self, other: &Self) -> Ordering {
        self.nano.cmp(&other.nano)
    }
}

impl Default for Quantity {
    fn default() -> Self {
        Quantity::zero()
    }
}

impl Quantity {
    /// Zero, DecimalSI (upstream's `resource.Quantity{Format: DecimalSI}`).
    pub fn zero() -> Quantity {
        Quantity { nano: 0, format: Format::DecimalSI, text: None }
    }

    /// An integer count (upstream's `NewQuantity(n, DecimalSI)`).
    pub fn from_int(n: i64) -> Quantity {
        Quantity { nano: i128::from(n) * NANO, format: Format::DecimalSI, text: None }
    }

    /// Parse upstream's quantity syntax; None when it is not one.
    pub fn parse(text: &str) -> Option<Quantity> {
        let parts = split(text)?;
        let (base, exponent, parsed_format) = suffix_value(parts.suffix)?;
        let keeps_text = keeps_text(&parts, exponent, parsed_format);
        let mut format = parsed_format;
        let mut nano = magnitude(parts.num, parts.denom, base, exponent)?;
        if format == Format::BinarySI {
            nano = nano.min(i128::from(i64::MAX) * NANO);
            if nano > 0 && nano < NANO {
                format = Format::DecimalSI;
            }
        }
        Some(Quantity {
            nano: if parts.negative { -nano } else { nano },
            format,
            text: keeps_text.then(|| text.into()),
        })
    }

    /// A quantity as a resource list holds it in JSON (a string, or a bare number).
    pub fn from_json(v: &Value) -> Option<Quantity> {
        match v {
            Value::String(s) => Quantity::parse(s.trim()),
            Value::Number(n) => Quantity::parse(&n.to_string()),
            _ => None,
        }
    }

    /// The text it was parsed from, when that text is already upstream's canonical
    /// form (what `String()` prints).
    pub fn as_given(&self) -> Option<&str> {
        self.text.as_deref()
    }

    /// The value in nano-units (10^-9).
    pub fn nano(&self) -> i128 {
        self.nano
    }

    pub fn is_zero(&self) -> bool {
        self.nano == 0
    }

    /// -1, 0 or 1 (upstream's `Sign`).
    pub fn sign(&self) -> i32 {
        self.nano.signum() as i32
    }

    /// Add `other` (upstream's `Add`: a zero takes the other's format).
    pub fn add(&mut self, other: &Quantity) {
        if self.is_zero() {
            self.format = other.format;
        }
        self.text = None;
        self.nano = (self.nano + other.nano).clamp(-LIMIT, LIMIT);
    }

    /// Subtract `other` (upstream's `Sub`).
    pub fn sub(&mut self, other: &Quantity) {
        if self.is_zero() {
            self.format = other.format;
        }
        self.text = None;
        self.nano = (self.nano - other.nano).clamp(-LIMIT, LIMIT);
    }

    /// Round away from zero to whole units (upstream's `RoundUp(0)`).
    pub fn round_up_units(&mut self) {
        self.round_up_to(NANO);
    }

    /// Round away from zero to thousandths (upstream's `RoundUp(-3)`, which
    /// `SetDefaults_ResourceList` applies to every value of a resource list).
    pub fn round_up_milli(&mut self) {
        self.round_up_to(NANO / 1000);
    }

    fn round_up_to(&mut self, unit: i128) {
        let rem = self.nano % unit;
        if rem != 0 {
            self.text = None;
            self.nano += rem.signum() * unit - rem;
        }
    }

    /// The canonical text as a JSON string.
    pub fn to_json(&self) -> Value {
        Value::String(self.to_string())
    }
}

/// `text` parsed as upstream's `ParseQuantity` parses it, printed as Go's `%#v` prints
/// the `resource.Quantity` (upstream shows the struct, not its text, as the bad value of
/// some field errors): `resource.Quantity{i:resource.int64Amount{value:500, scale:-3},
/// d:resource.infDecAmount{Dec:(*inf.Dec)(nil)}, s:"500m", Format:"DecimalSI"}`. None
/// when upstream would take its arbitrary-precision path (its print holds a pointer).
/// With `milli`, the value as `RoundUp(-3)` leaves it (a resource list's, defaulted).
pub fn go_struct(text: &str, milli: bool) -> Option<String> {
    let p = split(text)?;
    let (_, exponent, format) = suffix_value(p.suffix)?;
    let digits = (p.num.len() + p.denom.len()) as i64;
    let (mut scale, mantissa, precision) = match format {
        Format::BinarySI if exponent >= 0 && p.denom.is_empty() => {
            let precision = 15 - p.num.len() as i64 - (exponent as f32 * 3.0 / 10.0) as i64 - 1;
            (0i64, 1i64.checked_shl(exponent as u32)?, precision)
        }
        Format::BinarySI => return None,
        _ => (i64::from(exponent), 1, 18 - digits),
    };
    scale -= p.denom.len() as i64;
    if precision < 0 || scale < -9 {
        return None;
    }
    let value: i64 = format!("{}{}", p.num, p.denom).parse().ok()?;
    let mut value = value.checked_mul(mantissa)?;
    if p.negative {
        value = -value;
    }
    let mut kept = if keeps_text(&p, exponent, format) { text } else { "" };
    if milli && scale < -3 {
        let divisor = 10i64.checked_pow((-3 - scale) as u32).unwrap_or(i64::MAX);
        let (q, r) = (value / divisor, value % divisor);
        value = q + r.signum();
        scale = -3;
        kept = "";
    }
    let name = match format {
        Format::DecimalSI => "DecimalSI",
        Format::BinarySI => "BinarySI",
        Format::DecimalExponent => "DecimalExponent",
    };
    Some(format!(
        "resource.Quantity{{i:resource.int64Amount{{value:{value}, scale:{scale}}}, d:resource.infDecAmount{{Dec:(*inf.Dec)(nil)}}, s:{kept:?}, Format:{name:?}}}"
    ))
}

/// A quantity's text split as upstream's `parseQuantityString` splits it: sign, digits
/// before the point (leading zeros dropped, "0" when none), digits after it, suffix.
struct Parts<'a> {
    negative: bool,
    num: &'a str,
    denom: &'a str,
    suffix: &'a str,
}

fn split(s: &str) -> Option<Parts<'_>> {
    let b = s.as_bytes();
    let negative = *b.first()? == b'-';
    let mut pos = usize::from(matches!(b[0], b'-' | b'+'));
    while pos < b.len() && b[pos] == b'0' {
        pos += 1;
    }
    let digits_from = |mut at: usize| {
        while at < b.len() && b[at].is_ascii_digit() {
            at += 1;
        }
        at
    };
    let start = pos;
    pos = digits_from(pos);
    let num = if pos == start { "0" } else { &s[start..pos] };
    let mut parts = Parts { negative, num, denom: "", suffix: "" };
    if pos < b.len() && b[pos] == b'.' {
        let end = digits_from(pos + 1);
        parts.denom = &s[pos + 1..end];
        pos = end;
    }
    let suffix_start = pos;
    while pos < b.len() && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < b.len() && matches!(b[pos], b'-' | b'+') {
        pos += 1;
    }
    if digits_from(pos) != b.len() {
        return None;
    }
    parts.suffix = &s[suffix_start..];
    Some(parts)
}

/// Whether upstream's parser keeps the text (its int64 fast path, for text it takes
/// to be canonical already).
fn keeps_text(p: &Parts<'_>, exponent: i32, format: Format) -> bool {
    let digits = p.num.len() + p.denom.len();
    if format == Format::BinarySI {
        let precision = 15 - p.num.len() as i64 - (exponent as f32 * 3.0 / 10.0) as i64 - 1;
        if !p.denom.is_empty() || precision < 0 {
            return false;
        }
        let Ok(value) = p.num.parse::<i64>() else { return false };
        let fits = value.checked_mul(1i64 << exponent).is_some();
        return fits && exponent % 10 == 0 && value & 7 != 0;
    }
    let scale = i64::from(exponent) - p.denom.len() as i64;
    if digits > 18 || scale < -9 {
        return false;
    }
    let shifted = format!("{}{}", p.num, p.denom);
    scale % 3 == 0 && !shifted.ends_with("000") && !shifted.starts_with('0')
}

/// Base, exponent and format of a suffix.
fn suffix_value(suffix: &str) -> Option<(u32, i32, Format)> {
    let decimal = |e| Some((10, e, Format::DecimalSI));
    let binary = |e| Some((2, e, Format::BinarySI));
    match suffix {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        _ => {
            let digits = suffix.strip_prefix(['e', 'E'])?;
            let unsigned = digits.strip_prefix(['+', '-']).unwrap_or(digits);
            if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // Past this the value is zero-rounded-up or saturated anyway.
            let e: i64 =
                digits.parse().unwrap_or(if digits.starts_with('-') { -1000 } else { 1000 });
            Some((10, e.clamp(-1000, 1000) as i32, Format::DecimalExponent))
        }
    }
}

/// The magnitude in nano-units of `int.frac` times `base^exponent`, rounded up.
fn magnitude(int: &str, frac: &str, base: u32, exponent: i32) -> Option<i128> {
    let all = format!("{int}{frac}");
    let digits = all.trim_start_matches('0');
    if digits.is_empty() {
        return Some(0);
    }
    let kept = &digits[..digits.len().min(DIGITS)];
    let dropped = &digits[kept.len()..];
    let mut scale = 9 - frac.len() as i64 + dropped.len() as i64;
    let mut value: i128 = kept.parse().ok()?;
    let mut sticky = dropped.bytes().any(|b| b != b'0');
    if base == 2 {
        value = value.checked_mul(1i128 << exponent).unwrap_or(LIMIT);
    } else {
        scale += i64::from(exponent);
    }
    if scale >= 0 {
        if !dropped.is_empty() && scale > 0 {
            return Some(LIMIT);
        }
        let factor = 10i128.checked_pow(scale.min(60) as u32).unwrap_or(LIMIT);
        return Some(value.checked_mul(factor).unwrap_or(LIMIT).min(LIMIT));
    }
    let shift = -scale;
    if shift > 38 {
        return Some(1);
    }
    let divisor = 10i128.pow(shift as u32);
    sticky |= value % divisor != 0;
    Some(value / divisor + i128::from(sticky))
}

impl fmt::Display for Quantity {
    /// Upstream's canonical `String()`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(text) = &self.text {
            return f.write_str(text);
        }
        if self.nano == 0 {
            return f.write_str("0");
        }
        let binary = self.format == Format::BinarySI
            && self.nano.abs() >= 1024 * NANO
            && self.nano % NANO == 0;
        if binary {
            let (mut amount, mut power) = (self.nano / NANO, 0);
            while power < 6 && amount % 1024 == 0 {
                amount /= 1024;
                power += 1;
            }
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][power];
            return write!(f, "{amount}{suffix}");
        }
        let (mut amount, mut exponent) = (self.nano, -9i32);
        while amount % 10 == 0 {
            amount /= 10;
            exponent += 1;
        }
        let r = exponent.rem_euclid(3);
        amount *= 10i128.pow(r as u32);
        exponent -= r;
        let si = match exponent {
            -9 => Some("n"),
            -6 => Some("u"),
            -3 => Some("m"),
            0 => Some(""),
            3 => Some("k"),
            6 => Some("M"),
            9 => Some("G"),
            12 => Some("T"),
            15 => Some("P"),
            18 => Some("E"),
            _ => None,
        };
        match (self.format, si) {
            (Format::DecimalExponent, _) | (_, None) if exponent != 0 => {
                write!(f, "{amount}e{exponent}")
            }
            (_, suffix) => write!(f, "{amount}{}", suffix.unwrap_or("")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Upstream v1.21's answers (`kubectl create` of a pod whose extended resource is
    /// each text): the `%#v` of the parsed, defaulted `resource.Quantity`.
    #[test]
    fn go_struct_prints_what_upstream_prints() {
        let cases = [
            ("500m", 500, -3, "500m", "DecimalSI"),
            ("0.5", 5, -1, "", "DecimalSI"),
            ("1.5", 15, -1, "", "DecimalSI"),
            ("1500m", 1500, -3, "1500m", "DecimalSI"),
            ("1e-1", 1, -1, "", "DecimalExponent"),
            ("100u", 1, -3, "", "DecimalSI"),
            ("0.0005k", 5, -1, "", "DecimalSI"),
            ("12.50", 1250, -2, "", "DecimalSI"),
            ("-1.5", -15, -1, "", "DecimalSI"),
        ];
        for (text, value, scale, kept, format) in cases {
            let want = format!(
                "resource.Quantity{{i:resource.int64Amount{{value:{value}, scale:{scale}}}, d:resource.infDecAmount{{Dec:(*inf.Dec)(nil)}}, s:\"{kept}\", Format:\"{format}\"}}"
            );
            assert_eq!(go_struct(text, true).as_deref(), Some(want.as_str()), "{text}");
        }
    }

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap_or_else(|| panic!("{s} parses"))
    }

    #[test]
    fn canonical_text_is_upstreams() {
        for (given, canonical) in [
            ("4", "4"),
            ("4000m", "4"),
            ("500m", "500m"),
            ("0.5", "500m"),
            ("1.5", "1500m"),
            ("1Gi", "1Gi"),
            ("1024Mi", "1Gi"),
            ("1536Ki", "1536Ki"),
            ("1000", "1k"),
            ("1500", "1500"),
            ("2e3", "2e3"),
            ("1E6", "1E6"),
            ("1000000", "1M"),
            ("1024Mi", "1Gi"),
            ("512", "512"),
            ("100Ki", "100Ki"),
            ("0.5Ki", "512"),
            ("0", "0"),
            ("0Gi", "0"),
            ("-1", "-1"),
            ("-500m", "-500m"),
            ("1n", "1n"),
            ("0.0000000001", "1n"),
            ("12345678901234", "12345678901234"),
            ("1M", "1M"),
            ("10M", "10M"),
            ("100M", "100M"),
            ("1000M", "1G"),
            ("+3", "+3"),
            ("1.500", "1.500"),
            ("007", "007"),
            ("1.0", "1"),
        ] {
            assert_eq!(q(given).to_string(), canonical, "{given}");
        }
    }

    #[test]
    fn malformed_quantities_are_refused() {
        for bad in ["", "1x", "1.2.3", "1Ki2", "1e", "--1", "1 "] {
            assert!(Quantity::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn comparison_is_by_value_whatever_the_format() {
        assert_eq!(q("1").cmp(&q("1000m")), Ordering::Equal);
        assert_eq!(q("1Ki").cmp(&q("1024")), Ordering::Equal);
        assert!(q("1G") < q("1Gi"));
        assert!(q("500m") < q("4"));
        assert!(q("0.0000000001") > q("0"), "rounded up to 1n as upstream");
    }

    #[test]
    fn sums_keep_the_first_non_zero_format() {
        let mut sum = Quantity::zero();
        sum.add(&q("1Gi"));
        sum.add(&q("1Gi"));
        assert_eq!(sum.to_string(), "2Gi");
        let mut cpu = q("500m");
        cpu.add(&q("500m"));
        assert_eq!(cpu.to_string(), "1");
        cpu.sub(&q("1"));
        assert!(cpu.is_zero());
    }

    #[test]
    fn huge_values_saturate_instead_of_overflowing() {
        let big = q("9e99");
        assert!(big > q("8Ei"));
        let mut sum = big.clone();
        sum.add(&big);
        assert!(sum >= big);
    }

    #[test]
    fn rounding_up_to_whole_units() {
        let mut v = q("1500m");
        v.round_up_units();
        assert_eq!(v.to_string(), "2");
    }
}

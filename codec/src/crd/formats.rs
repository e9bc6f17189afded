//! String formats of custom resource schemas, as upstream's kube-openapi `strfmt`
//! registry accepts them for CRDs.
//!
//! [`effective_format`] applies upstream's rule that only a fixed set of formats is
//! checked (others are ignored, per type); [`check`] tells whether a string is valid for
//! a checked format. Format names compare with dashes removed (`date-time` is
//! `datetime`). A few checkers approximate Go's parsers (noted at each).

use super::regex::Regex;
use std::net::{Ipv4Addr, Ipv6Addr};

/// String formats upstream (v1.35) checks; any other string format is ignored.
const STRING_FORMATS: &[&str] = &[
    "bsonobjectid",
    "uri",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "cidr",
    "mac",
    "uuid",
    "uuid3",
    "uuid4",
    "uuid5",
    "isbn",
    "isbn10",
    "isbn13",
    "creditcard",
    "ssn",
    "hexcolor",
    "rgbcolor",
    "byte",
    "password",
    "date",
    "duration",
    "datetime",
    "k8sshortname",
    "k8slongname",
];

/// The format a schema node is checked with (dash-free for strings), or `None` when
/// upstream strips it: strings keep only the known string formats, integers `int32`
/// and `int64`, numbers `float` and `double`.
pub fn effective_format(type_: &str, format: &str) -> Option<String> {
    if format.is_empty() {
        return None;
    }
    match type_ {
        "" | "string" => {
            let norm = format.replace('-', "");
            STRING_FORMATS.contains(&norm.as_str()).then_some(norm)
        }
        "integer" => matches!(format, "int32" | "int64").then(|| format.to_string()),
        "number" => matches!(format, "float" | "double").then(|| format.to_string()),
        _ => None,
    }
}

fn re(p: &str, s: &str) -> bool {
    Regex::new(p).is_ok_and(|r| r.is_match(s))
}

/// Whether `s` is valid for the (effective, dash-free) string format `f`. Formats that
/// are not string formats accept everything.
pub fn check(f: &str, s: &str) -> bool {
    match f {
        "bsonobjectid" => s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit()),
        "uri" => is_request_uri(s),
        "email" => is_email(s),
        "hostname" => is_hostname(s),
        "ipv4" => parse_ip(s).is_some() && s.contains('.'),
        "ipv6" => parse_ip(s).is_some() && s.contains(':'),
        "cidr" => is_cidr(s),
        "mac" => is_mac(s),
        "uuid" => re("(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$", s),
        "uuid3" => re("(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}$", s),
        "uuid4" => {
            re("(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$", s)
        }
        "uuid5" => {
            re("(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$", s)
        }
        "ssn" => re(r"^\d{3}[- ]?\d{2}[- ]?\d{4}$", s),
        "hexcolor" => re("^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$", s),
        "byte" => re(
            r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})$",
            s,
        ),
        "date" => is_date(s),
        "datetime" => is_date_time(s),
        "duration" => is_duration(s),
        "k8sshortname" => s.len() <= 63 && is_dns_label(s),
        "k8slongname" => s.len() <= 253 && !s.is_empty() && s.split('.').all(is_dns_label),
        // isbn, isbn10, isbn13, creditcard, rgbcolor, password: not checked here.
        _ => true,
    }
}

fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    let ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty() && ok(&b[0]) && ok(&b[b.len() - 1]) && b.iter().all(|c| ok(c) || *c == b'-')
}

/// Go's `url.ParseRequestURI` (approximated): an absolute URI with a scheme, or an
/// absolute path; no spaces or control characters.
fn is_request_uri(s: &str) -> bool {
    if s.is_empty() || s.chars().any(|c| c.is_control() || c == ' ') {
        return false;
    }
    if s.starts_with('/') {
        return true;
    }
    let Some((scheme, _)) = s.split_once(':') else { return false };
    let mut cs = scheme.chars();
    cs.next().is_some_and(|c| c.is_ascii_alphabetic())
        && cs.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Go's `mail.ParseAddress` (approximated): `local@domain`, optionally as
/// `Name <local@domain>`.
fn is_email(s: &str) -> bool {
    let addr = match (s.find('<'), s.strip_suffix('>')) {
        (Some(i), Some(rest)) => &rest[i + 1..],
        _ => s.trim(),
    };
    let Some((local, domain)) = addr.rsplit_once('@') else { return false };
    let bad = |c: char| c.is_whitespace() || c.is_control() || "<>()[]\\,;:\"@".contains(c);
    !local.is_empty()
        && !domain.is_empty()
        && !local.chars().any(bad)
        && !domain.chars().any(bad)
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && !domain.contains("..")
}

/// upstream's hostname pattern; `\p{L}`/`\p{S}` are approximated by ASCII letters, the
/// ASCII symbols `$+<=>^`|~` and any non-ASCII character.
fn is_hostname(s: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || "$+<=>^`|~".contains(c) || !c.is_ascii();
    let letter = |c: char| c.is_ascii_alphabetic() || !c.is_ascii();
    if s.len() > 255 || s.split('.').any(|p| p.len() > 63) {
        return false;
    }
    let chars: Vec<char> = s.chars().collect();
    // First form: one label, `w(-?w{0,62})?`.
    let single = !chars.is_empty() && word(chars[0]) && {
        let rest = &chars[1..];
        let rest = rest.strip_prefix(&['-']).unwrap_or(rest);
        rest.len() <= 62 && rest.iter().all(|&c| word(c)) && !(chars.len() == 2 && chars[1] == '-')
    };
    if single {
        return true;
    }
    // Second form: (w([w-]{0,61}w)?\.)+ letter{2,63}.
    let Some((head, tld)) = s.rsplit_once('.') else { return false };
    let tld_ok = (2..=63).contains(&tld.chars().count()) && tld.chars().all(letter);
    tld_ok
        && head.split('.').all(|l| {
            let cs: Vec<char> = l.chars().collect();
            !cs.is_empty()
                && cs.len() <= 63
                && word(cs[0])
                && word(cs[cs.len() - 1])
                && cs.iter().all(|&c| word(c) || c == '-')
        })
}

/// Go's `ParseIPSloppy`: IPv4 dotted quads (leading zeros allowed) or IPv6.
fn parse_ip(s: &str) -> Option<()> {
    if s.contains(':') {
        return s.parse::<Ipv6Addr>().ok().map(|_| ());
    }
    let parts: Vec<&str> = s.split('.').collect();
    let octet = |p: &&str| !p.is_empty() && p.len() <= 3 && p.parse::<u8>().is_ok();
    (parts.len() == 4 && parts.iter().all(octet)).then_some(())
}

fn is_cidr(s: &str) -> bool {
    let Some((ip, bits)) = s.split_once('/') else { return false };
    let max = if ip.contains(':') { 128 } else { 32 };
    parse_ip(ip).is_some()
        && !bits.is_empty()
        && bits.bytes().all(|b| b.is_ascii_digit())
        && bits.parse::<u32>().is_ok_and(|b| b <= max)
        && (ip.contains(':') || ip.parse::<Ipv4Addr>().is_ok() || ip.split('.').count() == 4)
}

/// Go's `net.ParseMAC`: 6, 8 or 20 octets as `xx:xx`, `xx-xx` or `xxxx.xxxx`.
fn is_mac(s: &str) -> bool {
    let hex = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit());
    let groups = |sep: char, n: usize| -> Option<usize> {
        let parts: Vec<&str> = s.split(sep).collect();
        parts.iter().all(|p| hex(p, n)).then_some(parts.len())
    };
    let octets = if s.contains(':') {
        groups(':', 2)
    } else if s.contains('-') {
        groups('-', 2)
    } else {
        groups('.', 4).map(|n| n * 2)
    };
    matches!(octets, Some(6 | 8 | 20))
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        2 if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Go's `time.Parse("2006-01-02", s)`.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| {
        let p = &s[r];
        p.bytes().all(|c| c.is_ascii_digit()).then(|| p.parse::<u32>().ok()).flatten()
    };
    match (num(0..4), num(5..7), num(8..10)) {
        (Some(y), Some(m), Some(d)) => (1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m),
        _ => false,
    }
}

/// upstream's `IsDateTime`: a date, `t`, then `hh:mm:ss`, optional fraction and `z` or
/// an offset (case-insensitive).
fn is_date_time(s: &str) -> bool {
    if s.len() < 4 {
        return false;
    }
    let lower = s.to_lowercase();
    let mut parts = lower.split('t');
    let (Some(date), Some(time)) = (parts.next(), parts.next()) else { return false };
    if !is_date(date) {
        return false;
    }
    let tb = time.as_bytes();
    let dd = |i: usize| tb.get(i..i + 2).is_some_and(|p| p.iter().all(u8::is_ascii_digit));
    if !(dd(0) && tb.get(2) == Some(&b':') && dd(3) && tb.get(5) == Some(&b':') && dd(6)) {
        return false;
    }
    let ok_ranges = &time[0..2] <= "23" && &time[3..5] <= "59" && &time[6..8] <= "59";
    ok_ranges && re(r"^(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))$", &time[8..])
}

/// Go's `time.ParseDuration`, or upstream's looser `<n> <unit>` forms.
fn is_duration(s: &str) -> bool {
    if re(r"^[-+]?(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$", s) || s == "0" {
        return true;
    }
    let units: &[&[&str]] = &[
        &["ns", "nano"],
        &["us", "µs", "micro"],
        &["ms", "milli"],
        &["s", "sec"],
        &["m", "min"],
        &["h", "hr", "hour"],
        &["d", "day"],
        &["w", "wk", "week"],
    ];
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        let start = i;
        while i < chars.len() && (chars[i].is_ascii_alphabetic() || chars[i] == 'µ') {
            i += 1;
        }
        let unit: String = chars[start..i].iter().collect::<String>().to_lowercase();
        if !unit.is_empty()
            && units.iter().any(|vs| {
                let last = vs.len() - 1;
                vs.iter().enumerate().any(|(k, v)| (k == last && unit.starts_with(v)) || unit == *v)
            })
        {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripping_follows_type() {
        assert_eq!(effective_format("string", "date-time").as_deref(), Some("datetime"));
        assert_eq!(effective_format("string", "int32"), None);
        assert_eq!(effective_format("integer", "int32").as_deref(), Some("int32"));
        assert_eq!(effective_format("integer", "uuid"), None);
        assert_eq!(effective_format("number", "double").as_deref(), Some("double"));
        assert_eq!(effective_format("object", "uuid"), None);
    }

    #[test]
    fn string_formats() {
        let yes = [
            ("uuid", "123e4567-e89b-12d3-a456-426614174000"),
            ("ipv4", "10.0.0.1"),
            ("ipv4", "010.0.0.1"),
            ("ipv6", "::1"),
            ("cidr", "10.0.0.0/8"),
            ("cidr", "fd00::/64"),
            ("mac", "00:1a:2b:3c:4d:5e"),
            ("hostname", "example.com"),
            ("hostname", "localhost"),
            ("email", "a@b.c"),
            ("byte", "aGVsbG8="),
            ("date", "2024-02-29"),
            ("datetime", "2024-01-02T03:04:05Z"),
            ("datetime", "2024-01-02T03:04:05.123+01:00"),
            ("duration", "1h30m"),
            ("duration", "3 days"),
            ("uri", "https://example.com/x"),
            ("k8sshortname", "abc-1"),
        ];
        for (f, s) in yes {
            assert!(check(f, s), "{f} {s}");
        }
        let no = [
            ("uuid", "nope"),
            ("ipv4", "::1"),
            ("ipv4", "1.2.3"),
            ("ipv6", "1.2.3.4"),
            ("cidr", "10.0.0.0/33"),
            ("mac", "00:1a"),
            ("hostname", "-bad"),
            ("email", "nope"),
            ("byte", "!!"),
            ("date", "2023-02-29"),
            ("datetime", "2024-01-02 03:04:05"),
            ("datetime", "2024-01-02T25:04:05Z"),
            ("duration", "soon"),
            ("uri", "relative/path"),
            ("k8sshortname", "ABC"),
        ];
        for (f, s) in no {
            assert!(!check(f, s), "{f} {s}");
        }
    }
}

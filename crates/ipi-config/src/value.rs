//! Param types, param values, durations and dates.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::NaiveDate;

use crate::Error;

/// The declared type of a param or of a step output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParamType {
    /// Any string.
    String,
    /// A 64-bit signed integer.
    Int,
    /// A 64-bit float; integers are accepted too.
    Float,
    /// `true` or `false`.
    Bool,
    /// A calendar day: `YYYY-MM-DD`, `today` or `yesterday`.
    Date,
    /// A location: a path, `file://`, `s3://` or `memory://` URL.
    Url,
    /// A span of time such as `1d`, `12h`, `30m`, `45s` or `1d12h`.
    Duration,
}

impl ParamType {
    /// Every type, in the order they are documented.
    pub const ALL: [ParamType; 7] = [
        ParamType::String,
        ParamType::Int,
        ParamType::Float,
        ParamType::Bool,
        ParamType::Date,
        ParamType::Url,
        ParamType::Duration,
    ];

    /// The name used in pipeline files (`type = "int"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Int => "int",
            ParamType::Float => "float",
            ParamType::Bool => "bool",
            ParamType::Date => "date",
            ParamType::Url => "url",
            ParamType::Duration => "duration",
        }
    }

    /// How a value of this type is written, for error messages.
    pub(crate) fn hint(self) -> &'static str {
        match self {
            ParamType::String => "a string",
            ParamType::Int => "an integer such as 200",
            ParamType::Float => "a number such as 0.5",
            ParamType::Bool => "true or false",
            ParamType::Date => "YYYY-MM-DD, today or yesterday",
            ParamType::Url => "a path or URL such as s3://bucket/prefix",
            ParamType::Duration => "a duration such as 1d, 12h, 30m, 45s or 1d12h",
        }
    }

    /// Parse a value of this type from its command-line text
    /// (`--param k=v`). `today` resolves to the given day.
    pub fn parse_value(self, text: &str, today: NaiveDate) -> Result<ParamValue, String> {
        let bad = || format!("expected {}, got `{text}`", self.hint());
        match self {
            ParamType::String => Ok(ParamValue::String(text.to_owned())),
            ParamType::Url if text.is_empty() => Err(bad()),
            ParamType::Url => Ok(ParamValue::Url(text.to_owned())),
            ParamType::Int => text.trim().parse().map(ParamValue::Int).map_err(|_| bad()),
            ParamType::Float => text.trim().parse().map(ParamValue::Float).map_err(|_| bad()),
            ParamType::Bool => match text.trim() {
                "true" => Ok(ParamValue::Bool(true)),
                "false" => Ok(ParamValue::Bool(false)),
                _ => Err(bad()),
            },
            ParamType::Date => parse_date(text.trim(), today).map(ParamValue::Date),
            ParamType::Duration => parse_duration(text.trim()).map(ParamValue::Duration),
        }
    }
}

impl fmt::Display for ParamType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ParamType {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        ParamType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| Error::UnknownParamType { name: s.to_owned() })
    }
}

/// A resolved param value (or step-output placeholder).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ParamValue {
    /// A `string` param.
    String(String),
    /// An `int` param.
    Int(i64),
    /// A `float` param.
    Float(f64),
    /// A `bool` param.
    Bool(bool),
    /// A `date` param, with `today`/`yesterday` already resolved.
    Date(NaiveDate),
    /// A `url` param.
    Url(String),
    /// A `duration` param.
    Duration(Duration),
}

impl ParamValue {
    /// The type of this value.
    pub fn param_type(&self) -> ParamType {
        match self {
            ParamValue::String(_) => ParamType::String,
            ParamValue::Int(_) => ParamType::Int,
            ParamValue::Float(_) => ParamType::Float,
            ParamValue::Bool(_) => ParamType::Bool,
            ParamValue::Date(_) => ParamType::Date,
            ParamValue::Url(_) => ParamType::Url,
            ParamValue::Duration(_) => ParamType::Duration,
        }
    }

    /// The value as TOML, as it is substituted for an exact
    /// `"${params.NAME}"` string: ints stay integers, floats floats,
    /// bools booleans, dates become TOML local dates, and URLs and
    /// durations become strings (`"1d12h"`).
    pub fn to_toml(&self) -> toml::Value {
        match self {
            ParamValue::String(s) | ParamValue::Url(s) => toml::Value::String(s.clone()),
            ParamValue::Int(i) => toml::Value::Integer(*i),
            ParamValue::Float(x) => toml::Value::Float(*x),
            ParamValue::Bool(b) => toml::Value::Boolean(*b),
            ParamValue::Date(d) => toml::Value::Datetime(date_to_toml(*d)),
            ParamValue::Duration(d) => toml::Value::String(format_duration(*d)),
        }
    }
}

/// Formats the value as it is written into a longer string, and as
/// `--param` accepts it back.
impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::String(s) | ParamValue::Url(s) => f.write_str(s),
            ParamValue::Int(i) => write!(f, "{i}"),
            ParamValue::Float(x) => write!(f, "{x:?}"),
            ParamValue::Bool(b) => write!(f, "{b}"),
            ParamValue::Date(d) => write!(f, "{}", d.format("%Y-%m-%d")),
            ParamValue::Duration(d) => f.write_str(&format_duration(*d)),
        }
    }
}

/// A TOML local date for a calendar day.
pub(crate) fn date_to_toml(d: NaiveDate) -> toml::value::Datetime {
    use chrono::Datelike as _;
    toml::value::Datetime {
        date: Some(toml::value::Date {
            // A NaiveDate from `parse_date` has a four-digit year.
            year: u16::try_from(d.year()).unwrap_or(0),
            month: u8::try_from(d.month()).unwrap_or(0),
            day: u8::try_from(d.day()).unwrap_or(0),
        }),
        time: None,
        offset: None,
    }
}

/// Parse `YYYY-MM-DD`, `today` or `yesterday` (relative to `today`).
pub(crate) fn parse_date(text: &str, today: NaiveDate) -> Result<NaiveDate, String> {
    match text {
        "today" => Ok(today),
        "yesterday" => {
            today.pred_opt().ok_or_else(|| "no day before the first representable".to_owned())
        }
        _ => {
            let ok = text.len() == 10
                && text.bytes().enumerate().all(|(i, b)| match i {
                    4 | 7 => b == b'-',
                    _ => b.is_ascii_digit(),
                });
            ok.then(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok())
                .flatten()
                .ok_or_else(|| format!("expected {}, got `{text}`", ParamType::Date.hint()))
        }
    }
}

/// Parse a duration such as `1d`, `12h`, `30m`, `45s` or `1d12h`.
///
/// Units are `d` (days), `h`, `m` and `s`, each used at most once and
/// in that order. Whitespace and fractions are not accepted.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(ipi_config::parse_duration("1d12h"), Ok(Duration::from_secs(129_600)));
/// assert!(ipi_config::parse_duration("12").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = |why: &str| {
        format!(
            "invalid duration `{text}`: {why}; expected something like \
             1d, 12h, 30m, 45s or 1d12h"
        )
    };
    if text.is_empty() {
        return Err(bad("it is empty"));
    }
    const UNITS: [(u8, u64); 4] = [(b'd', 86_400), (b'h', 3_600), (b'm', 60), (b's', 1)];
    let mut total: u64 = 0;
    let mut next_unit = 0;
    let mut number: Option<u64> = None;
    for b in text.bytes() {
        if b.is_ascii_digit() {
            let n = number
                .unwrap_or(0)
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(b - b'0')))
                .ok_or_else(|| bad("it is too large"))?;
            number = Some(n);
            continue;
        }
        let Some(n) = number.take() else {
            return Err(bad("a unit must follow a number"));
        };
        let Some(pos) = UNITS.iter().position(|&(u, _)| u == b) else {
            return Err(bad("units are d, h, m and s"));
        };
        if pos < next_unit {
            return Err(bad("units must be in the order d, h, m, s, once each"));
        }
        next_unit = pos + 1;
        total = n
            .checked_mul(UNITS[pos].1)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(|| bad("it is too large"))?;
    }
    if number.is_some() {
        return Err(bad("the last number has no unit"));
    }
    Ok(Duration::from_secs(total))
}

/// Format a duration the way [`parse_duration`] reads it (`1d12h`, `0s`).
/// Fractions of a second are dropped.
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        let n = secs / size;
        secs %= size;
        if n > 0 {
            out.push_str(&n.to_string());
            out.push_str(unit);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn durations() {
        let ok = |s: &str, secs: u64| {
            assert_eq!(parse_duration(s), Ok(Duration::from_secs(secs)), "{s}")
        };
        ok("1d", 86_400);
        ok("12h", 43_200);
        ok("30m", 1_800);
        ok("45s", 45);
        ok("0s", 0);
        ok("1d12h", 129_600);
        ok("1h30m15s", 5_415);
        for bad in ["", "1", "d", "1x", "1h1d", "1d1d", "1.5h", " 1d", "1d ", "-1d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should fail");
        }
        assert!(parse_duration("99999999999999999999d").is_err());
        assert!(parse_duration("999999999999999d").is_err());
        let msg = parse_duration("1x").unwrap_err();
        assert_eq!(
            msg,
            "invalid duration `1x`: units are d, h, m and s; expected \
             something like 1d, 12h, 30m, 45s or 1d12h"
        );
    }

    #[test]
    fn duration_round_trip() {
        for s in ["1d", "12h", "1d12h", "1h30m15s", "0s", "2d45s"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
    }

    #[test]
    fn param_type_names() {
        for t in ParamType::ALL {
            assert_eq!(t.as_str().parse::<ParamType>().unwrap(), t);
            assert_eq!(t.to_string(), t.as_str());
        }
        assert!("integer".parse::<ParamType>().is_err());
    }

    #[test]
    fn parse_values() {
        let today = day("2024-03-10");
        let p = |t: ParamType, s: &str| t.parse_value(s, today);
        assert_eq!(p(ParamType::Int, "200"), Ok(ParamValue::Int(200)));
        assert!(p(ParamType::Int, "abc").is_err());
        assert_eq!(p(ParamType::Float, "0.5"), Ok(ParamValue::Float(0.5)));
        assert_eq!(p(ParamType::Bool, "true"), Ok(ParamValue::Bool(true)));
        assert!(p(ParamType::Bool, "yes").is_err());
        assert_eq!(p(ParamType::Date, "yesterday"), Ok(ParamValue::Date(day("2024-03-09"))));
        assert_eq!(p(ParamType::Date, "2024-02-29"), Ok(ParamValue::Date(day("2024-02-29"))));
        assert!(p(ParamType::Date, "2023-02-29").is_err());
        assert!(p(ParamType::Date, "2024-3-1").is_err());
        assert!(p(ParamType::Url, "").is_err());
        assert_eq!(
            p(ParamType::Duration, "2d"),
            Ok(ParamValue::Duration(Duration::from_secs(172_800)))
        );
    }

    #[test]
    fn display_and_toml() {
        let d = ParamValue::Date(day("2024-03-10"));
        assert_eq!(d.to_string(), "2024-03-10");
        assert_eq!(d.to_toml().to_string(), "2024-03-10");
        assert_eq!(ParamValue::Float(1.0).to_string(), "1.0");
        assert_eq!(
            ParamValue::Duration(Duration::from_secs(90)).to_toml(),
            toml::Value::String("1m30s".into())
        );
        assert_eq!(ParamValue::Int(3).to_toml(), toml::Value::Integer(3));
    }
}

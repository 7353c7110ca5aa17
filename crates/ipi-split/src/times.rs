//! Input times as UTC microseconds, whatever they were written as:
//! timestamps with a zone, naive timestamps or text read in
//! `assume_timezone`, RFC 3339 text with any offset.

use chrono::{DateTime, NaiveDateTime};
use polars::prelude::*;

use crate::config::{LocalZone, Localized};
use crate::error::{Error, Result};

/// The `timestamp` column as UTC µs (`None`: missing, unreadable, or skipped
/// by a daylight-saving change), and how many naive times were read in the
/// assumed zone.
#[derive(Debug, Default)]
pub(crate) struct Times {
    pub us: Vec<Option<i64>>,
    /// Naive times read in the assumed zone.
    pub naive: u64,
    /// Of those, the ones the zone repeats (the earlier instant was taken).
    pub ambiguous: u64,
    /// Of those, the ones the zone skips (left out).
    pub skipped: u64,
}

impl Times {
    fn local(&mut self, zone: LocalZone, local: NaiveDateTime) -> Option<i64> {
        self.naive += 1;
        match zone.to_utc(local) {
            Localized::Single(us) => Some(us),
            Localized::Ambiguous(us) => {
                self.ambiguous += 1;
                Some(us)
            }
            Localized::Skipped => {
                self.skipped += 1;
                None
            }
        }
    }
}

/// What to tell someone whose input has naive times and no zone for them.
pub(crate) fn naive_refused(what: &str) -> String {
    format!(
        "{what} has no time zone, so it could mean any instant; set assume_timezone (--assume-timezone) to the zone the times were written in: an IANA name like America/New_York, or an offset like +05:30"
    )
}

/// The column's values as UTC µs. `column` is a `Datetime(µs, UTC)`, a
/// naive `Datetime(µs)` or text (see `run::read`).
pub(crate) fn utc_micros(column: &Column, zone: Option<LocalZone>, url: &str) -> Result<Times> {
    let mut times = Times { us: Vec::with_capacity(column.len()), ..Times::default() };
    match column.dtype() {
        DataType::Datetime(TimeUnit::Microseconds, Some(_)) => {
            let ca = column.datetime().map_err(Error::polars("timestamp"))?;
            times.us.extend(ca.physical().iter());
        }
        DataType::Datetime(TimeUnit::Microseconds, None) => {
            let Some(zone) = zone else {
                return Err(Error::input(url, naive_refused("column `timestamp`")));
            };
            let ca = column.datetime().map_err(Error::polars("timestamp"))?;
            for us in ca.physical().iter() {
                let local = us.and_then(DateTime::from_timestamp_micros).map(|t| t.naive_utc());
                let utc = local.and_then(|local| times.local(zone, local));
                times.us.push(utc);
            }
        }
        DataType::String => {
            let ca = column.str().map_err(Error::polars("timestamp"))?;
            for text in ca.iter() {
                let utc = match text.map(parse_text) {
                    None | Some(Text::Bad) => None,
                    Some(Text::Instant(us)) => Some(us),
                    Some(Text::Naive(local)) => {
                        let Some(zone) = zone else {
                            let value = text.unwrap_or_default();
                            return Err(Error::input(
                                url,
                                naive_refused(&format!("`timestamp` value `{value}`")),
                            ));
                        };
                        times.local(zone, local)
                    }
                };
                times.us.push(utc);
            }
        }
        other => {
            return Err(Error::input(url, format!("column `timestamp` is {other}, not a time")));
        }
    }
    Ok(times)
}

/// A time written as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Text {
    /// With an offset: UTC µs.
    Instant(i64),
    /// Without one.
    Naive(NaiveDateTime),
    /// Not a date-time we read.
    Bad,
}

/// `2018-11-12T10:00:00Z`, `2018-11-12 10:00:00.5+05:30`,
/// `2018-11-12 10:00:00 -0330` (instants) or `2018-11-12T10:00:00`,
/// `2018-11-12 10:00:00.123` (naive).
pub(crate) fn parse_text(text: &str) -> Text {
    let text = text.trim();
    // Anything after the seconds that can start an offset.
    let has_offset = text.get(19..).is_some_and(|tail| tail.contains(['+', '-', 'Z', 'z']));
    if has_offset {
        if let Ok(t) = DateTime::parse_from_rfc3339(text) {
            return Text::Instant(t.timestamp_micros());
        }
        for format in
            ["%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f %#z"]
        {
            if let Ok(t) = DateTime::parse_from_str(text, format) {
                return Text::Instant(t.timestamp_micros());
            }
        }
        return Text::Bad;
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Text::Naive(t);
        }
    }
    Text::Bad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instant(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text).unwrap().timestamp_micros()
    }

    #[test]
    fn text_times_with_and_without_offsets() {
        let z = instant("2018-11-12T10:00:00Z");
        for text in [
            "2018-11-12T10:00:00Z",
            "2018-11-12 10:00:00Z",
            "2018-11-12T15:45:00+05:45",
            "2018-11-12 06:30:00-03:30",
            "2018-11-12 15:30:00 +0530",
            " 2018-11-12T10:00:00.000000+00:00 ",
        ] {
            assert_eq!(parse_text(text), Text::Instant(z), "{text}");
        }
        let naive = NaiveDateTime::parse_from_str("2018-11-12 10:00:00", "%Y-%m-%d %H:%M:%S");
        for text in ["2018-11-12T10:00:00", "2018-11-12 10:00:00", "2018-11-12 10:00:00.000"] {
            assert_eq!(parse_text(text), Text::Naive(naive.unwrap()), "{text}");
        }
        for text in ["", "2018-11-12", "yesterday", "2018-11-12T10:00:00+99:00", "12/Nov/2018"] {
            assert_eq!(parse_text(text), Text::Bad, "{text}");
        }
    }
}

//! `SplitConfig`: the `split` step's table in a pipeline file, and the
//! `ipi-pipeline split` flags; plus the boundary arithmetic.

use chrono::{DateTime, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// Split the `events` dataset into out-of-time train, validation and test
/// windows. Give either `train_end` and `validation_end` (instants), or
/// `validation` and `test` (durations back from the end of the data).
///
/// ```toml
/// [steps.split]
/// uses = "split"
/// input = "${steps.ingest.output}"
/// validation = "1d"
/// test = "1d"
/// output = "${params.store}/splits/${params.date}"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitConfig {
    /// What to split: a local path or a `file://`, `s3://` or `memory://`
    /// URL of a committed `events` dataset, or of a Parquet or CSV file (or
    /// a directory of them) with `timestamp`, `entity` and `ip` columns.
    pub input: String,
    /// Where to write `train/`, `validation/` and `test/` (committed
    /// datasets) and `_manifest.json`: a local path or a `file://`, `s3://`
    /// or `memory://` URL.
    pub output: String,
    /// The first instant that is not training data: RFC 3339 with an
    /// offset (`2018-11-11T00:00:00Z`, `2018-11-10T19:00:00-05:00`), or,
    /// with `timezone`, a local date-time (`2018-11-10T19:00:00`) or date
    /// (`2018-11-11`, its midnight).
    #[serde(default)]
    pub train_end: Option<String>,
    /// The first instant of the test window (before `gap`); same forms as
    /// `train_end`.
    #[serde(default)]
    pub validation_end: Option<String>,
    /// The IANA zone (`America/New_York`) in which `train_end` and
    /// `validation_end` are local times, daylight saving included. A time
    /// that the zone skips is an error; one that it repeats means the
    /// earlier instant.
    #[serde(default)]
    pub timezone: Option<String>,
    /// How to read input times that carry no time zone (naive CSV text,
    /// Parquet timestamps without a zone): the IANA zone (`Europe/Paris`,
    /// daylight saving included) or fixed offset (`+05:30`) they were
    /// written in. Without it such inputs are refused. A local time that
    /// the zone repeats means the earlier instant; one that it skips is
    /// dropped and counted.
    #[serde(default)]
    pub assume_timezone: Option<String>,
    /// The validation window's length (`1d`, `12h`), ending where the test
    /// window starts (less `gap`). Use with `test`.
    #[serde(default)]
    pub validation: Option<String>,
    /// The test window's length, ending just after the last event.
    #[serde(default)]
    pub test: Option<String>,
    /// A duration left out between train and validation and between
    /// validation and test; its rows are dropped and counted.
    #[serde(default)]
    pub gap: Option<String>,
    /// Seed of the training rows' shuffle: the same seed and input give
    /// the same order.
    #[serde(default)]
    pub seed: u64,
    /// Drop validation and test rows whose entity never appears in train
    /// (they are counted either way).
    #[serde(default)]
    pub drop_unseen_entities: bool,
    /// Also write `OUTPUT/<split>.csv`: headerless `entity,ip` lines, the
    /// format SageMaker's IP Insights trains on.
    #[serde(default)]
    pub sagemaker_csv: bool,
}

/// The windows, in UTC microseconds: train `< train_end`, validation
/// `[validation_start, validation_end)`, test `>= test_start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    pub train_end: i64,
    pub validation_start: i64,
    pub validation_end: i64,
    pub test_start: i64,
}

/// How the boundaries are given, once parsed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mode {
    /// Known before reading the data.
    Explicit(Bounds),
    /// `validation` and `test` lengths and `gap`, in µs, back from the end.
    FromEnd { validation: i64, test: i64, gap: i64 },
}

impl SplitConfig {
    /// A configuration with duration windows and every option off.
    pub fn from_end(input: &str, output: &str, validation: &str, test: &str) -> SplitConfig {
        SplitConfig {
            input: input.into(),
            output: output.into(),
            train_end: None,
            validation_end: None,
            timezone: None,
            assume_timezone: None,
            validation: Some(validation.into()),
            test: Some(test.into()),
            gap: None,
            seed: 0,
            drop_unseen_entities: false,
            sagemaker_csv: false,
        }
    }

    /// A configuration with explicit boundaries and every option off.
    pub fn explicit(
        input: &str,
        output: &str,
        train_end: &str,
        validation_end: &str,
    ) -> SplitConfig {
        SplitConfig {
            train_end: Some(train_end.into()),
            validation_end: Some(validation_end.into()),
            validation: None,
            test: None,
            ..SplitConfig::from_end(input, output, "", "")
        }
    }

    /// Every problem with the settings, as (field, why); empty when usable.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        match self.mode() {
            Ok(_) => Vec::new(),
            Err(problems) => problems,
        }
    }

    pub(crate) fn mode(&self) -> Result<Mode, Vec<(&'static str, String)>> {
        let mut problems = Vec::new();
        for (field, url) in [("input", &self.input), ("output", &self.output)] {
            if let Err(e) = ipi_storage::Location::parse(url) {
                problems.push((field, e.to_string()));
            }
        }
        if let Err(why) = self.local_zone() {
            problems.push(("assume_timezone", why));
        }
        let mut duration = |field: &'static str, value: &Option<String>| -> Option<i64> {
            let text = value.as_deref()?;
            match ipi_config::parse_duration(text) {
                Ok(d) => i64::try_from(d.as_micros()).ok().or_else(|| {
                    problems.push((field, format!("`{text}` is too long")));
                    None
                }),
                Err(e) => {
                    problems.push((field, e));
                    None
                }
            }
        };
        let gap = duration("gap", &self.gap).unwrap_or(0);
        let validation = duration("validation", &self.validation);
        let test = duration("test", &self.test);
        for (field, d) in [("validation", validation), ("test", test)] {
            if d == Some(0) {
                problems.push((field, "must be longer than 0s".into()));
            }
        }
        let explicit = self.train_end.is_some() || self.validation_end.is_some();
        let from_end = self.validation.is_some() || self.test.is_some();
        let zone = match self.timezone.as_deref().map(str::parse::<chrono_tz::Tz>) {
            None => None,
            Some(Ok(zone)) => Some(zone),
            Some(Err(_)) => {
                problems.push((
                    "timezone",
                    format!(
                        "`{}` is not an IANA zone",
                        self.timezone.as_deref().unwrap_or_default()
                    ),
                ));
                None
            }
        };
        let mode = match (explicit, from_end) {
            (true, true) => {
                problems.push((
                    "train_end",
                    "give either train_end and validation_end, or validation and test, not both"
                        .into(),
                ));
                None
            }
            (false, false) => {
                problems.push((
                    "train_end",
                    "give either train_end and validation_end, or validation and test".into(),
                ));
                None
            }
            (true, false) => {
                let mut instant = |field: &'static str, value: &Option<String>| match value {
                    None => {
                        problems.push((field, "is required with explicit boundaries".into()));
                        None
                    }
                    Some(text) => match parse_instant(text, zone) {
                        Ok(us) => Some(us),
                        Err(why) => {
                            problems.push((field, why));
                            None
                        }
                    },
                };
                let train_end = instant("train_end", &self.train_end);
                let validation_end = instant("validation_end", &self.validation_end);
                match (train_end, validation_end) {
                    (Some(train_end), Some(validation_end)) => {
                        let bounds = Bounds {
                            train_end,
                            validation_start: train_end.saturating_add(gap),
                            validation_end,
                            test_start: validation_end.saturating_add(gap),
                        };
                        if bounds.validation_start >= bounds.validation_end {
                            problems.push((
                                "validation_end",
                                "must come after train_end (plus gap): the validation window is empty".into(),
                            ));
                        }
                        Some(Mode::Explicit(bounds))
                    }
                    _ => None,
                }
            }
            (false, true) => {
                if self.timezone.is_some() {
                    problems
                        .push(("timezone", "applies only to train_end and validation_end".into()));
                }
                for (field, value) in [("validation", &self.validation), ("test", &self.test)] {
                    if value.is_none() {
                        problems.push((field, "is required with duration windows".into()));
                    }
                }
                match (validation, test) {
                    (Some(validation), Some(test)) => Some(Mode::FromEnd { validation, test, gap }),
                    _ => None,
                }
            }
        };
        match mode {
            Some(mode) if problems.is_empty() => Ok(mode),
            _ => Err(problems),
        }
    }
}

impl SplitConfig {
    /// `assume_timezone`, parsed.
    pub(crate) fn local_zone(&self) -> Result<Option<LocalZone>, String> {
        self.assume_timezone.as_deref().map(LocalZone::parse).transpose()
    }
}

/// The zone naive input times are read in (`assume_timezone`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LocalZone {
    /// An IANA zone, daylight saving included.
    Named(chrono_tz::Tz),
    /// A fixed offset from UTC.
    Fixed(FixedOffset),
}

/// A naive time read in a [`LocalZone`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Localized {
    /// The one instant it names, in UTC µs.
    Single(i64),
    /// It happens twice (clocks go back): the earlier instant.
    Ambiguous(i64),
    /// The zone skips it (clocks go forward).
    Skipped,
}

impl LocalZone {
    /// An IANA zone name (`America/New_York`, `UTC`) or an offset
    /// (`+05:30`, `-0330`, `+05`, `Z`).
    pub(crate) fn parse(text: &str) -> Result<LocalZone, String> {
        if let Ok(zone) = text.parse::<chrono_tz::Tz>() {
            return Ok(LocalZone::Named(zone));
        }
        parse_offset(text).map(LocalZone::Fixed).ok_or_else(|| {
            format!("`{text}` is neither an IANA zone (America/New_York) nor an offset (+05:30)")
        })
    }

    /// The UTC instant of a local time in this zone.
    pub(crate) fn to_utc(self, local: NaiveDateTime) -> Localized {
        let result = match self {
            LocalZone::Named(zone) => {
                zone.from_local_datetime(&local).map(|t| t.timestamp_micros())
            }
            LocalZone::Fixed(offset) => {
                offset.from_local_datetime(&local).map(|t| t.timestamp_micros())
            }
        };
        match result {
            LocalResult::Single(us) => Localized::Single(us),
            LocalResult::Ambiguous(earlier, _) => Localized::Ambiguous(earlier),
            LocalResult::None => Localized::Skipped,
        }
    }
}

impl std::fmt::Display for LocalZone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LocalZone::Named(zone) => write!(f, "{zone}"),
            LocalZone::Fixed(offset) => write!(f, "{offset}"),
        }
    }
}

/// `Z`, `±HH`, `±HHMM` or `±HH:MM`, at most 23:59 either way.
fn parse_offset(text: &str) -> Option<FixedOffset> {
    if text == "Z" || text == "z" {
        return FixedOffset::east_opt(0);
    }
    let (sign, rest) = match (text.strip_prefix('+'), text.strip_prefix('-')) {
        (Some(rest), _) => (1, rest),
        (_, Some(rest)) => (-1, rest),
        _ => return None,
    };
    let digits: Vec<i32> = match rest.as_bytes() {
        [h1, h2] => vec![*h1, *h2],
        [h1, h2, m1, m2] | [h1, h2, b':', m1, m2] => vec![*h1, *h2, *m1, *m2],
        _ => return None,
    }
    .into_iter()
    .map(|b| b.is_ascii_digit().then(|| i32::from(b - b'0')))
    .collect::<Option<_>>()?;
    let hours = digits[0] * 10 + digits[1];
    let minutes = if digits.len() == 4 { digits[2] * 10 + digits[3] } else { 0 };
    if hours > 23 || minutes > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
}

impl Mode {
    /// The windows for data whose last event is at `max_us`.
    pub(crate) fn bounds(self, max_us: i64) -> Bounds {
        match self {
            Mode::Explicit(bounds) => bounds,
            Mode::FromEnd { validation, test, gap } => {
                let end = max_us.saturating_add(1);
                let test_start = end.saturating_sub(test);
                let validation_end = test_start.saturating_sub(gap);
                let validation_start = validation_end.saturating_sub(validation);
                Bounds {
                    train_end: validation_start.saturating_sub(gap),
                    validation_start,
                    validation_end,
                    test_start,
                }
            }
        }
    }
}

/// `text` as UTC microseconds: RFC 3339 with an offset when `zone` is
/// `None`; a naive date-time or date in `zone` otherwise.
pub(crate) fn parse_instant(text: &str, zone: Option<chrono_tz::Tz>) -> Result<i64, String> {
    let Some(zone) = zone else {
        return DateTime::parse_from_rfc3339(text).map(|t| t.timestamp_micros()).map_err(|e| {
            format!("`{text}` is not an RFC 3339 instant with an offset ({e}); give one like 2018-11-11T00:00:00Z, or set timezone")
        });
    };
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f"))
        .or_else(|_| NaiveDate::parse_from_str(text, "%Y-%m-%d").map(|d| d.and_time(Default::default())))
        .map_err(|_| {
            format!("`{text}` is not a local date-time like 2018-11-10T19:00:00 (with timezone, leave the offset out)")
        })?;
    match zone.from_local_datetime(&naive) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => {
            Ok(t.with_timezone(&Utc).timestamp_micros())
        }
        LocalResult::None => {
            Err(format!("`{text}` does not exist in {zone} (skipped by a daylight-saving change)"))
        }
    }
}

/// UTC microseconds as RFC 3339 (`2018-11-11T00:00:00Z`).
pub(crate) fn rfc3339(us: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(us)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| format!("{us}µs"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_instant_in_three_spellings() {
        let z = parse_instant("2018-11-11T00:00:00Z", None).unwrap();
        assert_eq!(parse_instant("2018-11-10T19:00:00-05:00", None).unwrap(), z);
        assert_eq!(
            parse_instant("2018-11-10T19:00:00", Some(chrono_tz::America::New_York)).unwrap(),
            z
        );
        // Before the DST change, New York is UTC-4.
        assert_eq!(
            parse_instant("2018-11-03T20:00:00", Some(chrono_tz::America::New_York)).unwrap(),
            parse_instant("2018-11-04T00:00:00Z", None).unwrap()
        );
        // 01:30 happens twice that night: the earlier (EDT) instant wins.
        assert_eq!(
            parse_instant("2018-11-04T01:30:00", Some(chrono_tz::America::New_York)).unwrap(),
            parse_instant("2018-11-04T05:30:00Z", None).unwrap()
        );
        assert!(parse_instant("2018-03-11T02:30:00", Some(chrono_tz::America::New_York)).is_err());
        assert!(parse_instant("2018-11-11T00:00:00", None).is_err());
    }

    #[test]
    fn problems_name_every_bad_field() {
        let mut config = SplitConfig::explicit("in", "out", "2018-11-12T00:00:00Z", "nope");
        config.gap = Some("1x".into());
        let fields: Vec<&str> = config.problems().iter().map(|p| p.0).collect();
        assert_eq!(fields, ["gap", "validation_end"]);
        let mut config = SplitConfig::from_end("in", "out", "1d", "0s");
        config.timezone = Some("Mars/Olympus".into());
        let fields: Vec<&str> = config.problems().iter().map(|p| p.0).collect();
        assert_eq!(fields, ["test", "timezone", "timezone"]);
        assert!(SplitConfig::from_end("in", "out", "1d", "2d").problems().is_empty());
        let reversed =
            SplitConfig::explicit("in", "out", "2018-11-12T00:00:00Z", "2018-11-11T00:00:00Z");
        assert_eq!(reversed.problems()[0].0, "validation_end");
    }

    #[test]
    fn assumed_zones_are_iana_names_or_offsets() {
        let named = LocalZone::parse("America/New_York").unwrap();
        assert_eq!(named, LocalZone::Named(chrono_tz::America::New_York));
        let east = |s: i32| LocalZone::Fixed(FixedOffset::east_opt(s).unwrap());
        assert_eq!(LocalZone::parse("+05:30").unwrap(), east(19_800));
        assert_eq!(LocalZone::parse("+0530").unwrap(), east(19_800));
        assert_eq!(LocalZone::parse("-03:30").unwrap(), east(-12_600));
        assert_eq!(LocalZone::parse("+05").unwrap(), east(18_000));
        assert_eq!(LocalZone::parse("Z").unwrap(), east(0));
        assert_eq!(LocalZone::parse("UTC").unwrap(), LocalZone::Named(chrono_tz::UTC));
        for bad in ["+5:30", "+05:3", "+24:00", "05:30", "+05:30:00", "Mars/Olympus", "", "+0:530"]
        {
            assert!(LocalZone::parse(bad).is_err(), "{bad}");
        }
        let mut config = SplitConfig::from_end("in", "out", "1d", "1d");
        config.assume_timezone = Some("Nowhere/Special".into());
        assert_eq!(config.problems()[0].0, "assume_timezone");
        config.assume_timezone = Some("+05:45".into());
        assert!(config.problems().is_empty());
    }

    #[test]
    fn local_times_become_utc_instants_across_a_dst_change() {
        let local = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").unwrap();
        let utc = |s: &str| parse_instant(s, None).unwrap();
        let ny = LocalZone::parse("America/New_York").unwrap();
        // EDT (UTC-4) before the change, EST (UTC-5) after.
        assert_eq!(
            ny.to_utc(local("2018-11-03T20:00:00")),
            Localized::Single(utc("2018-11-04T00:00:00Z"))
        );
        assert_eq!(
            ny.to_utc(local("2018-11-04T03:00:00")),
            Localized::Single(utc("2018-11-04T08:00:00Z"))
        );
        // 01:30 happens twice: the earlier (EDT) instant.
        assert_eq!(
            ny.to_utc(local("2018-11-04T01:30:00")),
            Localized::Ambiguous(utc("2018-11-04T05:30:00Z"))
        );
        // 02:30 never happens when clocks go forward.
        assert_eq!(ny.to_utc(local("2018-03-11T02:30:00")), Localized::Skipped);
        let kathmandu = LocalZone::parse("+05:45").unwrap();
        assert_eq!(
            kathmandu.to_utc(local("2018-11-04T05:45:00")),
            Localized::Single(utc("2018-11-04T00:00:00Z"))
        );
    }

    #[test]
    fn from_end_windows_are_back_to_back() {
        let mode = SplitConfig::from_end("in", "out", "1d", "2d").mode().unwrap();
        let day = 86_400_000_000;
        let b = mode.bounds(10 * day - 1);
        assert_eq!(
            (b.train_end, b.validation_start, b.validation_end, b.test_start),
            (7 * day, 7 * day, 8 * day, 8 * day)
        );
    }
}

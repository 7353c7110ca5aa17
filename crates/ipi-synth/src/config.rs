//! `SynthConfig`: the `synth` step's table in a pipeline file, and the
//! `ipi-pipeline synth` flags.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Generate login traffic with labelled attacks.
///
/// ```toml
/// [steps.synth]
/// uses   = "synth"
/// users  = 10000
/// days   = 10
/// seed   = 7
/// output = "${params.store}/synth"
/// attacks = { random_ip = 2.0, credential_stuffing = 0.5 }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynthConfig {
    /// How many users, named `user_0` to `user_{users-1}` as in SageMaker's
    /// generator. Any number from 1 to 100,000,000.
    #[serde(default = "default_users")]
    pub users: u64,
    /// Days of traffic, ending at `end_date` (1 to 3,660). Each user's
    /// activity scales with it: about 31.5 logins a day on average, heavy
    /// tailed (up to 1,000 a day). A log file holds at least 8 users, so
    /// very long windows make large files, each built in memory.
    #[serde(default = "default_days")]
    pub days: u32,
    /// The seed: the same seed and settings give the same bytes, whatever
    /// the thread count.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Where to write: a path, `file://`, `s3://` or `memory://` URL.
    /// Below it: `logs/` (or `events/`), `labels/` and `_manifest.json`.
    pub output: String,
    /// The first day after the window (UTC midnight); the window is
    /// `[end_date - days, end_date)`. Default 2018-11-14, as SageMaker's.
    #[serde(default = "default_end_date")]
    pub end_date: NaiveDate,
    /// `log` (Apache combined access logs, the default) or `parquet` (the
    /// `events` dataset that ingesting those logs with the login filter
    /// would give, written directly).
    #[serde(default)]
    pub format: OutputFormat,
    /// Gzip the log files (`access-NNNNN.log.gz`, one gzip member per
    /// file). Logs only.
    #[serde(default)]
    pub gzip: bool,
    /// Write every timestamp in this offset (`+0000`, `-0500`, `+0530`)
    /// instead of in each user's own offset (from the user's IANA zone,
    /// daylight saving included). The instants are the same either way.
    #[serde(default)]
    pub server_offset: Option<String>,
    /// How often each attack happens; see [`AttackRates`].
    #[serde(default)]
    pub attacks: AttackRates,
    /// The share of log lines that are not successful logins (other pages,
    /// assets, failed logins, redirects, errors), 0.0 to 0.95. Ingest's
    /// login filter (GET /login_success, status 200) drops exactly these.
    #[serde(default = "default_other_traffic")]
    pub other_traffic: f64,
    /// An ip2asn TSV (`start_u32 end_u32 asn country description`, the
    /// iptoasn.com format, plain or gzip) to use instead of the table
    /// generated from the seed.
    #[serde(default)]
    pub asn_file: Option<String>,
    /// Worker threads (default: rayon's, one per core). The output does not
    /// depend on it.
    #[serde(default)]
    pub threads: Option<usize>,
    /// Users per log file, rounded up to a multiple of 8 (a household is
    /// never split), at most 100,000. Default: enough users for about
    /// 100,000 lines (23 MB) a file. Files are assembled in memory, a few
    /// per thread at a time, so large values cost memory.
    #[serde(default)]
    pub users_per_file: Option<u64>,
}

/// The output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputFormat {
    /// Apache combined access logs under `logs/`.
    #[default]
    Log,
    /// The `events` dataset under `events/`: only the login lines, as
    /// ingest with the login filter would write them.
    Parquet,
}

/// Attack rates, in attack logins per 1,000 normal logins (so 1.0 is 0.1 %
/// of the traffic). Every attack is a successful `GET /login_success` that
/// is also a row of the `labels` dataset. Set a kind to 0 to leave it out;
/// the normal traffic does not change with the rates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttackRates {
    /// A known user from a uniformly random network of the table, as the
    /// SageMaker notebook tests. Default 2.0.
    #[serde(default = "default_random_ip")]
    pub random_ip: f64,
    /// Botnets of 200 to 500 hosting-network addresses that each log in to
    /// many accounts within a few hours. Default 1.0.
    #[serde(default = "default_other_attack")]
    pub credential_stuffing: f64,
    /// A login from another continent 1 to 30 minutes after one of the
    /// user's own. Default 1.0.
    #[serde(default = "default_other_attack")]
    pub impossible_travel: f64,
    /// A login from another ISP in the user's own country, at the user's
    /// usual hours: the hard case. Default 1.0.
    #[serde(default = "default_other_attack")]
    pub same_country_isp: f64,
    /// A mobile-carrier (CGNAT) address of the user's country that the user
    /// never used, half the time from the user's own carrier. Default 1.0.
    #[serde(default = "default_other_attack")]
    pub cgnat: f64,
}

impl Default for AttackRates {
    fn default() -> Self {
        AttackRates {
            random_ip: default_random_ip(),
            credential_stuffing: default_other_attack(),
            impossible_travel: default_other_attack(),
            same_country_isp: default_other_attack(),
            cgnat: default_other_attack(),
        }
    }
}

impl AttackRates {
    /// No attacks at all.
    pub fn none() -> AttackRates {
        AttackRates {
            random_ip: 0.0,
            credential_stuffing: 0.0,
            impossible_travel: 0.0,
            same_country_isp: 0.0,
            cgnat: 0.0,
        }
    }

    /// The rates in [`crate::AttackKind::ALL`] order.
    pub fn by_kind(&self) -> [f64; 5] {
        [
            self.random_ip,
            self.credential_stuffing,
            self.impossible_travel,
            self.same_country_isp,
            self.cgnat,
        ]
    }
}

impl SynthConfig {
    /// A config with every optional setting at its default.
    pub fn new(users: u64, days: u32, seed: u64, output: impl Into<String>) -> SynthConfig {
        SynthConfig {
            users,
            days,
            seed,
            output: output.into(),
            end_date: default_end_date(),
            format: OutputFormat::default(),
            gzip: false,
            server_offset: None,
            attacks: AttackRates::default(),
            other_traffic: default_other_traffic(),
            asn_file: None,
            threads: None,
            users_per_file: None,
        }
    }

    /// Checks serde cannot express, as (field, problem) pairs; empty when
    /// the config is usable.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if !(1..=MAX_USERS).contains(&self.users) {
            problems.push(("users", format!("{} is outside 1 to {MAX_USERS}", self.users)));
        }
        if !(1..=MAX_DAYS).contains(&self.days) {
            problems.push(("days", format!("{} is outside 1 to {MAX_DAYS}", self.days)));
        } else if self
            .start_date()
            .is_none_or(|d| d < NaiveDate::from_ymd_opt(1970, 1, 2).unwrap_or_default())
            || self.end_date.year_ce().1 > 9998
        {
            problems.push((
                "end_date",
                format!(
                    "the window {} days before {} must lie between 1970-01-02 and 9998-12-31",
                    self.days, self.end_date
                ),
            ));
        }
        if let Err(e) = ipi_storage::Location::parse(&self.output) {
            problems.push(("output", e.to_string()));
        }
        if let Some(offset) = &self.server_offset
            && parse_offset(offset).is_none()
        {
            problems.push((
                "server_offset",
                format!("`{offset}` is not an offset like +0000, -0500 or +0530 (at most ±1400)"),
            ));
        }
        let names =
            ["random_ip", "credential_stuffing", "impossible_travel", "same_country_isp", "cgnat"];
        for (name, rate) in names.iter().zip(self.attacks.by_kind()) {
            if !(0.0..=1000.0).contains(&rate) {
                problems.push((
                    "attacks",
                    format!(
                        "{name} = {rate} is outside 0 to 1000 (attacks per 1,000 normal logins)"
                    ),
                ));
            }
        }
        if !(0.0..=0.95).contains(&self.other_traffic) {
            problems
                .push(("other_traffic", format!("{} is outside 0.0 to 0.95", self.other_traffic)));
        }
        if self.gzip && self.format == OutputFormat::Parquet {
            problems
                .push(("gzip", "applies to logs only; Parquet is compressed already".to_owned()));
        }
        if let Some(file) = &self.asn_file
            && let Err(e) = ipi_storage::Location::parse(file)
        {
            problems.push(("asn_file", e.to_string()));
        }
        if let Some(threads) = self.threads
            && !(1..=1024).contains(&threads)
        {
            problems.push(("threads", format!("{threads} is outside 1 to 1024")));
        }
        if let Some(users) = self.users_per_file
            && !(1..=100_000).contains(&users)
        {
            problems.push(("users_per_file", format!("{users} is outside 1 to 100,000")));
        }
        problems
    }

    /// The first day of the window, if it exists.
    pub fn start_date(&self) -> Option<NaiveDate> {
        self.end_date.checked_sub_days(chrono::Days::new(u64::from(self.days)))
    }
}

use chrono::Datelike as _;

/// The most users a run takes (ids and per-user statistics are kept as
/// 32-bit numbers).
pub const MAX_USERS: u64 = 100_000_000;
/// The longest window, in days.
pub const MAX_DAYS: u32 = 3660;

/// `+HHMM` or `-HHMM` as minutes east of UTC, at most ±14:00.
pub fn parse_offset(text: &str) -> Option<i16> {
    let bytes = text.as_bytes();
    if bytes.len() != 5 || !bytes[1..].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sign = match bytes[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digit = |i: usize| i16::from(bytes[i] - b'0');
    let (hours, minutes) = (digit(1) * 10 + digit(2), digit(3) * 10 + digit(4));
    let total = hours * 60 + minutes;
    (minutes < 60 && total <= 14 * 60).then_some(sign * total)
}

fn default_users() -> u64 {
    1000
}

fn default_days() -> u32 {
    10
}

fn default_seed() -> u64 {
    1
}

fn default_end_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2018, 11, 14).unwrap_or_default()
}

fn default_other_traffic() -> f64 {
    0.3
}

fn default_random_ip() -> f64 {
    2.0
}

fn default_other_attack() -> f64 {
    1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_in_and_unknown_fields_are_refused() {
        let config: SynthConfig = serde_json::from_str(r#"{"output": "memory://t/x"}"#).unwrap();
        assert_eq!(config, SynthConfig::new(1000, 10, 1, "memory://t/x"));
        assert!(config.problems().is_empty());
        assert!(serde_json::from_str::<SynthConfig>(r#"{"output": "x", "userz": 3}"#).is_err());
        let partial: SynthConfig =
            serde_json::from_str(r#"{"output": "x", "attacks": {"cgnat": 0}}"#).unwrap();
        assert_eq!(partial.attacks.cgnat, 0.0);
        assert_eq!(partial.attacks.random_ip, 2.0);
    }

    #[test]
    fn problems_name_every_bad_field() {
        let mut config = SynthConfig::new(0, 0, 1, "");
        config.server_offset = Some("+25:00".into());
        config.attacks.cgnat = -1.0;
        config.other_traffic = 1.0;
        config.threads = Some(0);
        config.gzip = true;
        config.format = OutputFormat::Parquet;
        let fields: Vec<&str> = config.problems().iter().map(|p| p.0).collect();
        assert_eq!(
            fields,
            [
                "users",
                "days",
                "output",
                "server_offset",
                "attacks",
                "other_traffic",
                "gzip",
                "threads"
            ]
        );
        let mut early = SynthConfig::new(1, 10, 1, "x");
        early.end_date = NaiveDate::from_ymd_opt(1970, 1, 5).unwrap();
        assert_eq!(early.problems()[0].0, "end_date");
    }

    #[test]
    fn offsets_parse() {
        assert_eq!(parse_offset("+0000"), Some(0));
        assert_eq!(parse_offset("-0500"), Some(-300));
        assert_eq!(parse_offset("+0545"), Some(345));
        assert_eq!(parse_offset("+1400"), Some(840));
        for bad in ["0000", "+000", "+1460", "+1401", "Z", "+05:30"] {
            assert_eq!(parse_offset(bad), None, "{bad}");
        }
    }
}

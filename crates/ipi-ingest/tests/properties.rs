//! Property tests of the line parser:
//!
//! * `parse(format(event)) == event` for events drawn at random, written the
//!   way Apache writes them (escapes included), in every layout;
//! * no input, however odd, makes the parser panic.
//!
//! The second property doubles as the parser's fuzz target: set
//! `IPI_FUZZ_SECONDS=600` (and build with `--release`) to run it for ten
//! minutes instead of the default case count:
//!
//! ```text
//! IPI_FUZZ_SECONDS=600 cargo test --release -p ipi-ingest --test properties -- --ignored fuzz
//! ```

use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, FixedOffset, TimeZone, Timelike};
use ipi_ingest::parse::{Decode, LineFormat, parse_line, parse_line_with};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// An event as the parser should see it.
#[derive(Debug, Clone)]
struct Event {
    vhost: Option<String>,
    client: String,
    user: Option<String>,
    timestamp_us: i64,
    offset_minutes: i16,
    method: String,
    path: String,
    protocol: String,
    status: u16,
    bytes: Option<u64>,
    referer: Option<String>,
    user_agent: Option<String>,
}

/// Apache's escaping of quoted fields: `"` and `\` are backslashed, control
/// bytes become `\xhh`.
fn escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

fn format_line(e: &Event, format: LineFormat) -> String {
    let offset = FixedOffset::east_opt(i32::from(e.offset_minutes) * 60).unwrap();
    let local: DateTime<FixedOffset> = offset.timestamp_micros(e.timestamp_us).single().unwrap();
    let sign = if e.offset_minutes < 0 { '-' } else { '+' };
    let abs = e.offset_minutes.unsigned_abs();
    let time = format!(
        "{:02}/{}/{:04}:{:02}:{:02}:{:02} {sign}{:02}{:02}",
        local.day(),
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
            [local.month0() as usize],
        local.year(),
        local.hour(),
        local.minute(),
        local.second(),
        abs / 60,
        abs % 60
    );
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let mut line = String::new();
    if let Some(vhost) = &e.vhost {
        line.push_str(vhost);
        line.push(' ');
    }
    line.push_str(&format!(
        "{} - {} [{time}] \"{} {} {}\" {} {}",
        e.client,
        dash(&e.user),
        e.method,
        escape(&e.path),
        e.protocol,
        e.status,
        e.bytes.map_or("-".into(), |b| b.to_string())
    ));
    if format != LineFormat::Common {
        line.push_str(&format!(
            " \"{}\" \"{}\"",
            e.referer.as_deref().map_or("-".into(), escape),
            e.user_agent.as_deref().map_or("-".into(), escape)
        ));
    }
    line
}

fn ipv4() -> impl Strategy<Value = String> {
    any::<u32>().prop_map(|a| std::net::Ipv4Addr::from(a).to_string())
}

fn client() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => ipv4(),
        1 => any::<u128>().prop_map(|a| std::net::Ipv6Addr::from(a).to_string()),
    ]
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_.@-]{1,24}".prop_filter("`-` means none", |s| s != "-")
}

/// Free text with quotes, backslashes, controls and non-ASCII.
fn text() -> impl Strategy<Value = String> {
    "[ -~éß中\"\\\\\u{1}\t]{0,40}".prop_filter("`-` means none", |s| s != "-")
}

fn event() -> impl Strategy<Value = Event> {
    (
        (
            proptest::option::of("[a-z]{1,10}\\.example:[0-9]{2,4}"),
            client(),
            proptest::option::of(token()),
        ),
        // 1990 to 2100, and offsets from -14:00 to +14:00.
        (631_152_000i64..4_102_444_800i64, -840i16..=840),
        (
            "[A-Z]{3,7}",
            "/[^ \"\\\\]{0,30}",
            prop_oneof![Just("HTTP/1.0"), Just("HTTP/1.1"), Just("HTTP/2.0")],
        ),
        (100u16..=599, proptest::option::of(0u64..u64::MAX / 2)),
        (proptest::option::of(text()), proptest::option::of(text())),
    )
        .prop_map(
            |(
                (vhost, client, user),
                (seconds, offset),
                (method, path, protocol),
                (status, bytes),
                (referer, user_agent),
            )| Event {
                vhost,
                client,
                user,
                timestamp_us: seconds * 1_000_000,
                offset_minutes: offset,
                method,
                path,
                protocol: protocol.to_owned(),
                status,
                bytes,
                referer,
                user_agent,
            },
        )
}

fn check_round_trip(e: &Event, format: LineFormat) -> Result<(), TestCaseError> {
    let line = format_line(e, format);
    let r = parse_line(line.as_bytes(), format)
        .map_err(|reject| TestCaseError::fail(format!("{reject}: {line}")))?;
    prop_assert_eq!(r.vhost.as_deref(), e.vhost.as_deref(), "{}", line);
    prop_assert_eq!(&r.client, &e.client);
    prop_assert_eq!(r.user.as_deref(), e.user.as_deref());
    prop_assert_eq!(r.timestamp_us, e.timestamp_us);
    prop_assert_eq!(r.tz_offset_minutes, e.offset_minutes);
    prop_assert_eq!(r.method.as_deref(), Some(e.method.as_str()));
    prop_assert_eq!(r.path.as_deref(), Some(e.path.as_str()));
    prop_assert_eq!(r.protocol.as_deref(), Some(e.protocol.as_str()));
    prop_assert_eq!(r.status, Some(e.status));
    prop_assert_eq!(r.bytes, e.bytes);
    if format != LineFormat::Common {
        prop_assert_eq!(r.referer.as_deref(), e.referer.as_deref());
        prop_assert_eq!(r.user_agent.as_deref(), e.user_agent.as_deref());
    }
    Ok(())
}

proptest! {
    #![proptest_config(Config { cases: 2000, ..Config::default() })]

    #[test]
    fn combined_round_trips(mut e in event()) {
        e.vhost = None;
        check_round_trip(&e, LineFormat::Combined)?;
        check_round_trip(&e, LineFormat::Auto)?;
    }

    #[test]
    fn common_round_trips(mut e in event()) {
        e.vhost = None;
        check_round_trip(&e, LineFormat::Common)?;
    }

    #[test]
    fn vhost_combined_round_trips(mut e in event()) {
        e.vhost.get_or_insert_with(|| "site.example:443".into());
        check_round_trip(&e, LineFormat::VhostCombined)?;
        check_round_trip(&e, LineFormat::Auto)?;
    }
}

/// Lines near valid ones: a valid line with bytes flipped, cut, or spliced.
fn mutated_line() -> impl Strategy<Value = Vec<u8>> {
    (
        event(),
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(e, flips, cut)| {
            let mut line = format_line(&e, LineFormat::Combined).into_bytes();
            for (at, byte) in flips {
                let i = at.index(line.len());
                line[i] = byte;
            }
            let keep = cut.index(line.len() + 1);
            line.truncate(keep.max(line.len() * 3 / 4));
            line
        })
}

fn never_panics(line: &[u8]) {
    let nothing = Decode {
        request: false,
        referer: false,
        user_agent: false,
        vhost: false,
        forwarded_for: false,
    };
    for format in
        [LineFormat::Common, LineFormat::Combined, LineFormat::VhostCombined, LineFormat::Auto]
    {
        let full = parse_line(line, format);
        // Decoding fewer fields never changes what is accepted.
        assert_eq!(
            parse_line_with(line, format, nothing)
                .map(|r| (r.timestamp_us, r.status))
                .map_err(|e| e.code()),
            full.as_ref().map(|r| (r.timestamp_us, r.status)).map_err(|e| e.code()),
        );
        if let Ok(r) = full {
            // Whatever parses is in range.
            assert!(r.tz_offset_minutes.abs() <= 840);
            assert!(r.status.is_some_and(|s| (100..=999).contains(&s)));
        }
    }
}

/// Feed odd lines to the parser for at least `budget` (one round if zero),
/// a fresh runner, so fresh random inputs, each round.
fn fuzz(cases: u32, budget: Duration) {
    let start = Instant::now();
    let strategy = prop_oneof![
        3 => mutated_line(),
        1 => proptest::collection::vec(any::<u8>(), 0..300),
    ];
    let seen = std::cell::Cell::new(0u64);
    loop {
        TestRunner::new(fuzz_config(cases))
            .run(&strategy, |line| {
                seen.set(seen.get() + 1);
                never_panics(&line);
                Ok(())
            })
            .unwrap();
        if start.elapsed() >= budget {
            break;
        }
    }
    eprintln!("fuzzed {} lines in {:.0?}", seen.get(), start.elapsed());
}

/// The fuzz runs' config: no failure file (a failure panics with the input
/// shrunk to a minimal case, which is what to paste into a regression test).
fn fuzz_config(cases: u32) -> Config {
    Config { cases, failure_persistence: None, ..Config::default() }
}

#[test]
fn odd_input_never_panics() {
    fuzz(3000, Duration::ZERO);
}

/// The long fuzz run; see the module docs.
#[test]
#[ignore = "runs for IPI_FUZZ_SECONDS (default 600); run by hand"]
fn fuzz_parser_for_a_while() {
    let seconds =
        std::env::var("IPI_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(600);
    fuzz(100_000, Duration::from_secs(seconds));
}

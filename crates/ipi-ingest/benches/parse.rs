//! Parse throughput, one thread: `cargo bench -p ipi-ingest --bench parse`.
//!
//! Prints nanoseconds per line and MB/s for the line parser alone
//! (`parse_line_with`) and for the whole chunk path (`parse_chunk`: parse,
//! filter, and build the Arrow columns of every UTC day), once with every
//! column kept and once with `--keep=` (what IP Insights needs). The
//! process-level comparison with the peers is `bench/ingest.sh`.
//!
//! The lines are `combined` login events like those of the peers' generator
//! (`../shared/peers/make_login_log.py`); `IPI_BENCH_LOG=path` reads the
//! first 64 MB of a real log instead.

use std::fmt::Write as _;
use std::io::Read as _;
use std::time::Instant;

use ipi_ingest::Filter;
use ipi_ingest::batch::{
    EntityExtractor, InputKind, Keep, ParseSettings, RowSettings, parse_chunk,
};
use ipi_ingest::parse::{Decode, LineFormat, parse_line_with};
use ipi_ingest::source::Chunker;

const BYTES: usize = 64 << 20;
const CHUNK: usize = 4 << 20;

fn synthetic() -> Vec<u8> {
    let mut text = String::with_capacity(BYTES + 4096);
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut i = 0u64;
    while text.len() < BYTES {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let (day, h, m, s) = (4 + i % 10, x % 24, (x >> 8) % 60, (x >> 16) % 60);
        writeln!(
            text,
            "{}.{}.{}.{} - user_{} [{day:02}/Nov/2018:{h:02}:{m:02}:{s:02} +0000] \
             \"GET /login_success HTTP/1.1\" 200 476 \"-\" \"Mozilla/5.0 (Macintosh; Intel Mac OS X \
             10_12_6) AppleWebKit/555.33 (KHTML, like Gecko) Chrome/1.1.1111.100 Safari/555.355\"",
            (x >> 24) % 223 + 1,
            (x >> 32) % 256,
            (x >> 40) % 256,
            (x >> 48) % 256,
            x % 10_000,
        )
        .unwrap();
        i += 1;
    }
    text.into_bytes()
}

fn input() -> Vec<u8> {
    match std::env::var_os("IPI_BENCH_LOG") {
        Some(path) => {
            let file = std::fs::File::open(&path).expect("IPI_BENCH_LOG is readable");
            let mut bytes = Vec::with_capacity(BYTES);
            file.take(BYTES as u64).read_to_end(&mut bytes).expect("IPI_BENCH_LOG is readable");
            let end = memchr::memrchr(b'\n', &bytes).map_or(0, |i| i + 1);
            bytes.truncate(end);
            bytes
        }
        None => synthetic(),
    }
}

/// The best of `rounds` timings of `f`, in seconds.
fn best(rounds: usize, mut f: impl FnMut()) -> f64 {
    (0..rounds)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn report(name: &str, seconds: f64, lines: usize, bytes: usize) {
    println!(
        "{name:<28} {:>7.1} ns/line {:>7.0} MB/s",
        seconds * 1e9 / lines as f64,
        bytes as f64 / 1e6 / seconds
    );
}

fn main() {
    // `cargo bench -p ipi-ingest --bench parse -- keep` runs only the cases
    // whose name holds `keep` (for profiling one of them).
    let only: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| name.contains(o.as_str()));
    let bytes = input();
    let lines = memchr::memchr_iter(b'\n', &bytes).count();
    println!("{} lines, {:.1} MB, one thread, best of 5", lines, bytes.len() as f64 / 1e6);

    let seconds = best(if wanted("parse_line_with") { 5 } else { 0 }, || {
        let mut ok = 0usize;
        for line in bytes.split(|&b| b == b'\n') {
            ok += usize::from(parse_line_with(line, LineFormat::Auto, Decode::ALL).is_ok());
        }
        std::hint::black_box(ok);
    });
    if wanted("parse_line_with") {
        report("parse_line_with (all)", seconds, lines, bytes.len());
    }

    // Cut as an ingest cuts its input.
    let mut chunker = Chunker::new(bytes.as_slice(), CHUNK);
    let mut chunks = Vec::new();
    while let Some(chunk) = chunker.next_chunk().expect("reading memory") {
        chunks.push(chunk);
    }
    let filter = Filter {
        method: vec!["GET".into()],
        path_prefix: Some("/login_success".into()),
        status: vec![200],
    };
    let entity = EntityExtractor::User;
    for (name, keep) in [
        ("parse_chunk (every column)", Keep::ALL),
        ("parse_chunk (--keep=)", Keep::from_names::<&str>(&[]).unwrap()),
    ] {
        if !wanted(name) {
            continue;
        }
        let settings = ParseSettings {
            input: InputKind::Log(LineFormat::Auto),
            rows: RowSettings {
                source: "file:///var/log/access.log",
                filter: &filter,
                keep,
                entity: &entity,
            },
        };
        let seconds = best(5, || {
            let rows: u64 = chunks.iter().map(|c| parse_chunk(c, &settings).counts.rows).sum();
            std::hint::black_box(rows);
        });
        report(name, seconds, lines, bytes.len());
    }
}

//! Parse log files and count records and rejects by reason:
//! `cargo run --release -p ipi-ingest --example parse_count -- combined FILE...`

use std::collections::BTreeMap;

use ipi_ingest::parse::{LineFormat, parse_line};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let format = match args.next().as_deref() {
        Some("common") => LineFormat::Common,
        Some("vhost_combined") => LineFormat::VhostCombined,
        Some("combined") => LineFormat::Combined,
        _ => LineFormat::Auto,
    };
    for file in args {
        let bytes = std::fs::read(&file)?;
        let (mut ok, mut reasons) = (0u64, BTreeMap::<String, (u64, usize)>::new());
        for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
            if line.is_empty() && i > 0 {
                continue;
            }
            match parse_line(line, format) {
                Ok(_) => ok += 1,
                Err(reject) => reasons.entry(reject.to_string()).or_insert((0, i + 1)).0 += 1,
            }
        }
        println!("{file}: {ok} parsed");
        for (reason, (count, first)) in reasons {
            println!("  {count:>6}  {reason}  (first at line {first})");
        }
    }
    Ok(())
}

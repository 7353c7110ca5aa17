//! Run the generator from the command line, for timing and for a look at
//! the data:
//!
//! ```text
//! cargo run --release -p ipi-synth --example synth -- \
//!     --users 10000 --days 10 --seed 1 --output /tmp/synth [--gzip] [--parquet]
//!     [--threads N] [--server-offset +0000] [--asn-file ip2asn-v4-u32.tsv.gz]
//!     [--other-traffic 0.3] [--no-attacks] [--json]
//! ```

use std::process::ExitCode;

use ipi_synth::{AttackRates, OutputFormat, SynthConfig, synth};

fn usage() -> ExitCode {
    eprintln!(
        "usage: synth --users N --days D --seed S --output URL [--gzip] [--parquet] [--threads N] \
         [--server-offset +HHMM] [--asn-file URL] [--other-traffic X] [--end-date YYYY-MM-DD] \
         [--no-attacks] [--json]"
    );
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut config = SynthConfig::new(1000, 10, 1, "");
    let mut json = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_default();
        let ok = match arg.as_str() {
            "--users" => value().parse().map(|v| config.users = v).is_ok(),
            "--days" => value().parse().map(|v| config.days = v).is_ok(),
            "--seed" => value().parse().map(|v| config.seed = v).is_ok(),
            "--output" => {
                config.output = value();
                true
            }
            "--threads" => value().parse().map(|v| config.threads = Some(v)).is_ok(),
            "--server-offset" => {
                config.server_offset = Some(value());
                true
            }
            "--asn-file" => {
                config.asn_file = Some(value());
                true
            }
            "--other-traffic" => value().parse().map(|v| config.other_traffic = v).is_ok(),
            "--end-date" => value().parse().map(|v| config.end_date = v).is_ok(),
            "--gzip" => {
                config.gzip = true;
                true
            }
            "--parquet" => {
                config.format = OutputFormat::Parquet;
                true
            }
            "--no-attacks" => {
                config.attacks = AttackRates::none();
                true
            }
            "--json" => {
                json = true;
                true
            }
            _ => false,
        };
        if !ok {
            eprintln!("bad argument: {arg}");
            return usage();
        }
    }
    if config.output.is_empty() {
        return usage();
    }
    match synth(&config, None).await {
        Ok(summary) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&summary).unwrap_or_default());
            } else {
                print!("{}", summary.to_table());
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/*!
Seeded synthetic login traffic with labelled attacks: access logs to
train on, to benchmark with, and to measure detection against.

# Brief overview

[`synth`] writes, below its `output`:

* `logs/access-NNNNN.log[.gz]`: Apache combined-format lines, one file per
  block of consecutive users (grouped by user in id order, each user's
  lines in time order), with successful logins (`GET /login_success`, 200)
  and other traffic (other paths, methods and statuses) mixed in; or, with
  `format = "parquet"`, `events/`: the `events` dataset that ingesting
  those logs with the login filter would give;
* `labels/`: one row per attack line (`timestamp`, `entity`, `ip`,
  `attack_kind`), partitioned `date=YYYY-MM-DD` by UTC day;
* `_manifest.json`: the config and the [`SynthSummary`].

The model: an address table ([`space::AddressSpace`]) of networks from
/24 to /12, each with an AS, a country and a kind (residential, mobile
with CGNAT, hosting, corporate), generated from the seed or read from an
ip2asn file. Users live in households (which share a home address that
changes with DHCP leases), work at offices (which share NAT addresses)
near home in the table, carry a phone on a carrier's CGNAT pool, and have
a time zone, a daily activity curve, a heavy-tailed number of logins
(Pareto, as SageMaker's generator) and trips (a Beta travel share).
Attacks ([`AttackKind`]) are drawn from their own streams, so the normal
traffic does not change with the attack rates. The same seed and settings
give the same bytes at any thread count.

# Example

```
use ipi_synth::{SynthConfig, synth};

# #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
# async fn main() -> Result<(), Box<dyn std::error::Error>> {
let config = SynthConfig::new(20, 2, 7, "memory://doc-synth/run");
let summary = synth(&config, None).await?;
assert_eq!(summary.users, 20);
assert_eq!(summary.lines, summary.login_lines + summary.other_lines);
assert_eq!(summary.logs.as_deref(), Some("memory://doc-synth/run/logs"));
println!("{}", summary.to_table());
# Ok(())
# }
```
*/

pub mod attack;
mod clock;
pub mod config;
pub mod error;
pub mod geo;
mod model;
mod output;
mod rng;
mod run;
pub mod space;
mod stats;
mod traffic;

pub use attack::AttackKind;
pub use config::{AttackRates, OutputFormat, SynthConfig};
pub use error::{Error, Result};
pub use run::{AttackCounts, ProgressFn, SynthSummary, synth};
pub use stats::{Quantiles, SynthStats};

//! The run's statistics, gathered block by block in bounded memory (two
//! numbers per user, plus a sample of the addresses for the shared-address
//! share).

use std::collections::HashMap;

use serde::Serialize;

use crate::model::BlockStats;

/// Quantiles of a per-user count (nearest rank), with the mean.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Quantiles {
    pub p10: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
    pub mean: f64,
}

impl Quantiles {
    /// The quantiles of `values` (sorted in place).
    pub fn of(values: &mut [u32]) -> Quantiles {
        if values.is_empty() {
            return Quantiles::default();
        }
        values.sort_unstable();
        let n = values.len();
        let at = |q: f64| u64::from(values[((q * n as f64).ceil() as usize).clamp(1, n) - 1]);
        Quantiles {
            p10: at(0.10),
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: u64::from(values[n - 1]),
            mean: values.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64,
        }
    }
}

/// How the generated traffic looks, in the terms used to compare it with
/// SageMaker's generator.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SynthStats {
    /// Login lines (normal and attack) per user.
    pub events_per_user: Quantiles,
    /// Distinct addresses of each user's login lines.
    pub distinct_ips_per_user: Quantiles,
    /// Share of normal logins made from a network visited while travelling
    /// (SageMaker's counterpart: its "travel" draws, a uniformly random
    /// row, whose expected share is E[Beta(1, 30)] = 3.2 %).
    pub travel_share: f64,
    /// Share of login lines whose address has login lines of two or more
    /// users (households, offices, CGNAT, botnets, and chance).
    pub shared_address_share: f64,
    /// The share of addresses `shared_address_share` was computed on: 1.0
    /// up to 20,000 users, then a hash-chosen 2⁻ᵏ of the addresses (every
    /// user of a chosen address is counted, so the share stays unbiased).
    pub shared_address_sample: f64,
}

#[derive(Debug, Clone, Copy)]
struct AddressUse {
    first_user: u32,
    shared: bool,
    lines: u64,
}

/// Folds block statistics in block order.
#[derive(Debug, Default)]
pub struct StatsAccumulator {
    logins: Vec<u32>,
    distinct: Vec<u32>,
    normal_logins: u64,
    travel_logins: u64,
    addresses: HashMap<u32, AddressUse>,
}

impl StatsAccumulator {
    pub fn add(&mut self, block: &BlockStats) {
        for &(logins, distinct) in &block.per_user {
            self.logins.push(logins);
            self.distinct.push(distinct);
        }
        self.normal_logins += block.normal_logins;
        self.travel_logins += block.travel_logins;
        for &(addr, user, lines) in &block.sample {
            let entry = self.addresses.entry(addr).or_insert(AddressUse {
                first_user: user,
                shared: false,
                lines: 0,
            });
            entry.shared |= entry.first_user != user;
            entry.lines += u64::from(lines);
        }
    }

    pub fn finish(mut self, sample_bits: u32) -> SynthStats {
        let (mut shared, mut total) = (0u64, 0u64);
        for use_ in self.addresses.values() {
            total += use_.lines;
            if use_.shared {
                shared += use_.lines;
            }
        }
        let share =
            |part: u64, whole: u64| if whole == 0 { 0.0 } else { part as f64 / whole as f64 };
        SynthStats {
            events_per_user: Quantiles::of(&mut self.logins),
            distinct_ips_per_user: Quantiles::of(&mut self.distinct),
            travel_share: share(self.travel_logins, self.normal_logins),
            shared_address_share: share(shared, total),
            shared_address_sample: 0.5f64.powi(sample_bits as i32),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let mut values: Vec<u32> = (1..=100).collect();
        let q = Quantiles::of(&mut values);
        assert_eq!((q.p10, q.p50, q.p90, q.p99, q.max), (10, 50, 90, 99, 100));
        assert_eq!(q.mean, 50.5);
        assert_eq!(Quantiles::of(&mut [7]).p10, 7);
        assert_eq!(Quantiles::of(&mut []), Quantiles::default());
    }

    #[test]
    fn an_address_is_shared_once_a_second_user_has_it() {
        let mut acc = StatsAccumulator::default();
        let block = BlockStats {
            per_user: vec![(3, 2), (1, 1)],
            sample: vec![(1, 0, 2), (2, 0, 1), (1, 1, 1)],
            ..BlockStats::default()
        };
        acc.add(&block);
        let stats = acc.finish(0);
        assert_eq!(stats.shared_address_share, 0.75);
        assert_eq!(stats.events_per_user.max, 3);
    }
}

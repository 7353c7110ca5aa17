//! Random streams: one ChaCha8 stream per (seed, id, purpose), so that what
//! a user does depends only on the seed and the user's id, never on which
//! thread generated it or on how many users there are.

use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What a stream is for; part of its key, so streams never overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Purpose {
    /// The seeded address table.
    Table = 1,
    /// A household: its country, zone, home network and DHCP leases.
    Household = 2,
    /// The partition of a slot of users into households.
    Slot = 3,
    /// A user's own traits and normal logins.
    User = 4,
    /// A user's non-login traffic.
    Other = 5,
    /// The attacks on a user.
    Attack = 6,
    /// The credential-stuffing campaigns.
    Campaigns = 7,
}

/// The stream for `(seed, id, purpose)`. ChaCha8 is portable and its
/// output is fixed by its key, so the same key gives the same numbers on
/// every platform and in every version of rand_chacha 0.10.
pub fn stream(seed: u64, id: u64, purpose: Purpose) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&id.to_le_bytes());
    key[16..24].copy_from_slice(&(purpose as u64).to_le_bytes());
    key[24..].copy_from_slice(b"ipisynth");
    ChaCha8Rng::from_seed(key)
}

/// A SplitMix64 generator: fixed by its seed, tiny and fast even in
/// unoptimised builds. It draws the address table (a few million numbers);
/// the users, whose streams must be independent, use ChaCha8.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// The generator for `(seed, purpose)`.
    pub fn new(seed: u64, purpose: Purpose) -> SplitMix64 {
        SplitMix64 { state: mix64(seed ^ mix64(purpose as u64)) }
    }
}

impl rand::rand_core::TryRng for SplitMix64 {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        self.try_next_u64().map(|x| (x >> 32) as u32)
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        Ok(mix64(self.state))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(8) {
            let bytes = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        Ok(())
    }
}

pub use ipi_core::hash::mix64;

/// A uniform index below `n` (`n` > 0), by Lemire's multiply-shift. The
/// bias is below 2⁻³² for the sizes used here and the result is a fixed
/// function of one draw, which keeps streams easy to reason about.
#[inline]
pub fn below<R: Rng + ?Sized>(rng: &mut R, n: u64) -> u64 {
    ((u128::from(rng.next_u64()) * u128::from(n)) >> 64) as u64
}

/// A uniform `f64` in [0, 1).
#[inline]
pub fn unit<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    rng.random::<f64>()
}

/// An index drawn from cumulative weights (the last is the total).
pub fn pick_cumulative<R: Rng + ?Sized>(rng: &mut R, cumulative: &[f64]) -> usize {
    let total = cumulative.last().copied().unwrap_or(0.0);
    let x = unit(rng) * total;
    cumulative.partition_point(|&c| c <= x).min(cumulative.len().saturating_sub(1))
}

/// Cumulative sums of `weights`.
pub fn cumulative(weights: impl IntoIterator<Item = f64>) -> Vec<f64> {
    let mut total = 0.0;
    weights
        .into_iter()
        .map(|w| {
            total += w;
            total
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_fixed_by_their_key() {
        let a: Vec<u64> = (0..4).map(|_| stream(7, 3, Purpose::User).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(stream(7, 3, Purpose::User).next_u64(), stream(7, 3, Purpose::Other).next_u64());
        assert_ne!(stream(7, 3, Purpose::User).next_u64(), stream(7, 4, Purpose::User).next_u64());
        assert_ne!(stream(7, 3, Purpose::User).next_u64(), stream(8, 3, Purpose::User).next_u64());
    }

    #[test]
    fn cumulative_picks_follow_the_weights() {
        let cum = cumulative([1.0, 0.0, 3.0]);
        let mut rng = stream(1, 1, Purpose::Table);
        let mut counts = [0u32; 3];
        for _ in 0..4000 {
            counts[pick_cumulative(&mut rng, &cum)] += 1;
        }
        assert_eq!(counts[1], 0);
        assert!((800..1200).contains(&counts[0]), "{counts:?}");
    }
}

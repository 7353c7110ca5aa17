//! The stable entity hash.
//!
//! An entity string (a user name, account ID or API key) is mapped to a row
//! of the model's entity table by
//!
//! ```text
//! row = XXH3_64(utf8_bytes(entity), seed = 0) mod num_entity_vectors
//! ```
//!
//! XXH3-64 is specified byte for byte (xxHash 0.8 spec) and is the same on
//! every platform and endianness; seed 0 is the library default, so the Python
//! `xxhash.xxh3_64_intdigest(s.encode())` gives the same value. A trained
//! model is only meaningful with the hash it was trained with, so this
//! function and [`ENTITY_HASH_SEED`] must never change; `model.json` records
//! [`ENTITY_HASH_NAME`] so a future change could be detected.

/// Name of the hash as written in model metadata.
pub const ENTITY_HASH_NAME: &str = "xxh3_64";

/// Seed of the entity hash.
pub const ENTITY_HASH_SEED: u64 = 0;

/// The 64-bit hash of an entity's UTF-8 bytes.
#[inline]
pub fn entity_hash(entity: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(entity.as_bytes(), ENTITY_HASH_SEED)
}

/// The row of `entity` in a table of `num_entity_vectors` rows.
///
/// # Panics
///
/// Never: a table of zero rows is treated as one row.
#[inline]
pub fn entity_row(entity: &str, num_entity_vectors: u64) -> u64 {
    entity_hash(entity) % num_entity_vectors.max(1)
}

/// SplitMix64's finaliser: a fixed, well-mixed hash of a `u64`. ipi uses
/// it where a cheap, stable hash of a number is needed (synthetic traffic,
/// the IP encoder's hashed prefixes), so it never changes either.
#[inline]
pub fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference values from the xxHash reference implementation (Python
    // `xxhash` 4.1.0 over xxHash 0.8.4, which wraps the C library):
    //
    //   import xxhash
    //   for s in ["", "a", "user_1", "alice@example.com", "ключ"]:
    //       print(s, hex(xxhash.xxh3_64_intdigest(s.encode(), seed=0)))
    #[test]
    fn matches_reference_implementation() {
        assert_eq!(entity_hash(""), 0x2d06_8005_38d3_94c2);
        assert_eq!(entity_hash("a"), 0xe6c6_32b6_1e96_4e1f);
        assert_eq!(entity_hash("user_1"), 0x20f9_09ab_6f54_d5a1);
        assert_eq!(entity_hash("alice@example.com"), 0x76eb_8955_12bf_35ff);
        assert_eq!(entity_hash("ключ"), 0x9a13_7c08_c1e5_5ede);
    }

    #[test]
    fn row_is_within_table() {
        for n in [1, 2, 7, 100_000] {
            for e in ["", "user_1", "x".repeat(1000).as_str()] {
                assert!(entity_row(e, n) < n);
            }
        }
        assert_eq!(entity_row("user_1", 0), 0);
    }
}

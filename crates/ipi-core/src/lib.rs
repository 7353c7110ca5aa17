/*!
The vocabulary every ipi crate shares, with no I/O.

# Brief overview

* [`schema`]: the versioned Arrow schemas of the `events`, `rejects`,
  `labels` and `scores` datasets. Each carries its name and version in the
  schema metadata, so a reader can tell what it was handed.
* [`ipv4`]: strict conversion between dotted-quad text and `u32`.
* [`hash`]: the stable entity hash that maps an entity string to a row of the
  model's entity table. It defines model compatibility, so it never changes.
* [`error`]: errors that say *where* (step, URL, line, field).

# Example

```
use ipi_core::{hash, ipv4};

assert_eq!(ipv4::parse(b"192.168.1.2"), Some(0xC0A8_0102));
assert_eq!(ipv4::format(0xC0A8_0102), "192.168.1.2");
// The row of an entity in a table of 100,000 vectors; the same on every
// platform, in every run and every version of ipi.
assert_eq!(hash::entity_row("user_1", 100_000), hash::entity_hash("user_1") % 100_000);
```
*/

pub mod error;
pub mod hash;
pub mod ipv4;
pub mod schema;

pub use error::{Error, Result, Where};

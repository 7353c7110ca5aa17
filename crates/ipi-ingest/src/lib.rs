/*!
Apache and Nginx access logs into the ipi `events` dataset.

# Brief overview

[`parse::parse_line`] is the byte-level parser of one line; it borrows from
the line, never panics, and explains every rejected line with the field and
the reason.

# Example

```
use ipi_ingest::parse::{parse_line, LineFormat};

let line = br#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /login_success HTTP/1.0" 200 2326 "-" "curl/8""#;
let record = parse_line(line, LineFormat::Combined).unwrap();
assert_eq!(record.user.as_deref(), Some("frank"));
assert_eq!(record.tz_offset_minutes, -7 * 60);
```
*/

pub mod batch;
pub mod config;
pub mod error;
pub mod parquet_input;
pub mod parse;
pub mod run;
pub mod source;
pub mod table;

pub use config::{EntitySource, Filter, FormatName, IngestConfig};
pub use error::{Error, Result};
pub use run::{IngestSummary, ingest};

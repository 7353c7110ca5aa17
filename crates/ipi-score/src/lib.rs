/*!
Scoring with a trained IP Insights model: the batch transform, SageMaker's
request and response formats, and the HTTP endpoint.

# Brief overview

* [`score`] runs a batch transform ([`ScoreConfig`]): the events dataset (or
  a day of it, or any Parquet with `entity` and `ipv4`/`ip` columns, or
  SageMaker request bodies) in, the `scores` dataset out, partitioned
  `date=YYYY-MM-DD/` and replaced a day at a time. Rows that cannot be
  scored go to `_rejects/`.
* [`codec`] reads SageMaker's request bodies (`text/csv`,
  `application/json`, `application/jsonlines`) and writes its responses,
  with `verbose=True` embeddings.
* [`serve()`] runs SageMaker's HTTP endpoint ([`ServeConfig`]): `GET /ping`
  and `POST /invocations`, for `ipi-pipeline serve`.
* [`Scorer`] holds a loaded model and scores pairs for all of them.

# Example

```
use ipi_score::codec::{decode, encode, Accept, ContentType, Prediction};

let body = br#"{"instances":[{"features":["user_1","192.168.1.2"]}]}"#;
let decoded = decode(ContentType::Json, body).unwrap();
assert_eq!(decoded.pairs[0].entity, "user_1");
assert_eq!(decoded.pairs[0].validate(), Ok(0xC0A8_0102));

let reply = encode(
    Accept::parse("application/jsonlines").unwrap(),
    &[Prediction { dot_product: 1.5, ip_embedding: None, entity_embedding: None }],
);
assert_eq!(reply, b"{\"dot_product\":1.5}\n");
```
*/

pub mod batch;
pub mod codec;
mod config;
mod error;
mod scorer;
pub mod serve;

pub use batch::{ScoreReport, score};
pub use config::ScoreConfig;
pub use error::{Error, Result};
pub use scorer::{Scorer, Scores, predictions};
pub use serve::{ServeConfig, serve};

/*!
The IP Insights model, in candle: which addresses does each entity use?

# Brief overview

* [`hyper`]: SageMaker's hyperparameters, with its names, defaults and ranges.
* [`ip`]: an address as four rows of a prefix table (/8, /16, hashed /24 and /32).
* [`model`]: the entity table, the prefix table and the dense IP encoder
  (candle tensors on the chosen device); scoring.
* [`scoring`]: a trained model with its first encoder layer folded into the
  prefix table, for scoring many pairs without a matmul per pair.
* [`sparse`]: the tables and their row-sparse lazy Adam.
* [`train`](mod@train): negative sampling, the step, the epoch loop and its metrics.
* [`data`]: pairs from the split's Parquet or SageMaker's CSV.
* [`checkpoint`]: `model.safetensors` and `model.json`.
* [`registry`]: a models folder's `latest.json`: the last promoted model.
* [`train()`]: the `train` step, from [`TrainConfig`] to a written model.

score = ⟨entity vector, IP vector⟩ is the log-odds that the pair is real;
a low score means the entity has not been seen near that address.
*/

pub mod checkpoint;
pub mod data;
mod error;
pub mod hyper;
pub mod ip;
pub mod metrics;
pub mod model;
pub mod registry;
mod run;
pub mod scoring;
pub mod sparse;
pub mod train;

pub use error::{Error, Result};
pub use hyper::Hyperparameters;
pub use model::Model;
pub use run::{TrainConfig, train};
pub use scoring::ScoringModel;

#[cfg(test)]
mod send_probe {
    fn assert_send<T: Send>(_: T) {}
    #[allow(dead_code)]
    fn probe(m: &crate::Model, c: &crate::TrainConfig) {
        assert_send(crate::data::load("x", 1));
        assert_send(crate::checkpoint::save(m, "x", Default::default()));
        assert_send(crate::checkpoint::load("x", None));
        assert_send(crate::train(c, Box::new(crate::train::Quiet)));
    }
}

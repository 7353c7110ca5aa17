/*!
How well an IP Insights model catches each kind of attack, and which
threshold to flag at.

# Brief overview

* [`evaluate`] runs the `evaluate` step ([`EvaluateConfig`]): a model, the
  split's train and test sets and (optionally) synth's labels in;
  `report.html`, `report.json`, `entities.csv` and `plots/` out.
* [`cases`] builds the test cases: normal test traffic of entities seen in
  training against the SageMaker notebook's random-address attacks, and
  against every labelled attack kind.
* [`curve`] measures a case: AUC, ROC, precision, recall and FPR at any
  threshold, and the thresholds for an FPR or a recall target.
* [`report`], [`plots`] and [`html`]: the figures as JSON, pictures (SVG and
  PNG, plotters) and one self-contained page.
* [`tune()`] searches hyperparameters within SageMaker's recommended ranges
  ([`TuneConfig`]), by `validation:discriminator_auc`.

Scores are read as SageMaker's notebook reads them: `anomaly_score` =
−`dot_product`, and an event is flagged when its anomaly score is above
the threshold (as `ipi-pipeline score --threshold T` does).

# Example

```
use ipi_eval::curve::Scored;

// Anomaly scores of normal events and of attacks.
let case = Scored::new(vec![-3.0, -2.0, -1.0, 0.5], vec![-1.5, 2.0, 3.0, 4.0]);
let t = case.threshold_for_fpr(0.25).unwrap(); // flag at most 1 in 4 normal events
assert_eq!(t, -1.0);
let p = case.at(t);
assert_eq!((p.recall, p.fpr, p.precision), (0.75, 0.25, Some(0.75)));
assert_eq!(case.auc(), Some(0.875));
```
*/

pub mod cases;
mod config;
pub mod curve;
mod error;
pub mod html;
pub mod plots;
pub mod report;
mod run;
pub mod tune;

pub use config::{Choose, EvaluateConfig, Gate};
pub use error::{Error, Result};
pub use report::Report;
pub use run::{Evaluation, evaluate};
pub use tune::{TuneConfig, TuneReport, tune};

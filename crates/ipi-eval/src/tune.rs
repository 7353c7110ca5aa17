//! `tune`: random search over hyperparameters within SageMaker's
//! recommended ranges, by `validation:discriminator_auc`.
//!
//! Trial 1 is always the base hyperparameters as given (the defaults you
//! would train with), so the winner is at least as good as they are on
//! validation AUC by construction; ties go to the earlier trial. The other
//! trials draw each searched hyperparameter from its range (log-uniform
//! where the range spans a factor of 10 or more, else uniform), from a
//! seeded stream: the same seed gives the same trials. Every trial trains
//! with the same training seed on the same data, loaded once. Trials run
//! `parallel` at a time, each in its own thread pool.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use ipi_model::Hyperparameters;
use ipi_model::checkpoint::Provenance;
use ipi_model::data::Pairs;
use ipi_model::ip::IpEncoderSpec;
use ipi_model::train::{FitOptions, FitReport, Quiet};
use ipi_storage::Location;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Search hyperparameters; write the winner and a table of trials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TuneConfig {
    /// Training pairs (the split's `train/`, Parquet or SageMaker CSV).
    pub train: String,
    /// Validation pairs: the objective is the last epoch's
    /// `validation:discriminator_auc` on them.
    pub validation: String,
    /// Test pairs: the winner's random-address test AUC is measured once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<String>,
    /// Where `trials.csv`, `tune.json` and the winner's `model/` go.
    pub output: String,
    /// Trials, the base hyperparameters included.
    #[serde(default = "default_trials")]
    pub trials: usize,
    /// Trials run at once; by default as many as there are cores (at most
    /// `trials`), the cores shared out between them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel: Option<usize>,
    /// The base hyperparameters: trial 1, and every value not searched.
    #[serde(default)]
    pub hyperparameters: Hyperparameters,
    /// The ranges searched.
    #[serde(default)]
    pub space: SearchSpace,
    /// Seeds the search (training uses `hyperparameters.seed`).
    #[serde(default)]
    pub seed: u64,
    /// Rows per hashed IP prefix, as `train`'s option.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_hash_buckets: Option<u32>,
}

fn default_trials() -> usize {
    8
}

/// A closed range `[min, max]` of a hyperparameter.
pub type Range = [f64; 2];

/// The searched ranges; a hyperparameter without one keeps its base value.
///
/// The defaults are SageMaker's recommended tuning ranges for the
/// hyperparameters that shape the model, except `num_ip_encoder_layers`,
/// narrowed from 1–10 to 1–3: each layer costs `B(1+R)·d²` per step, and
/// more layers did not help on our data (ipi-model's README). Batch size,
/// epochs and weight decay are not searched unless given
/// (SageMaker: 100–50,000, 1–100, 0–1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchSpace {
    /// Length of the vectors (SageMaker: 8 to 256).
    pub vector_dim: Option<Range>,
    /// Adam's step size (SageMaker: 1e-4 to 0.1).
    pub learning_rate: Option<Range>,
    /// Dense layers of the IP encoder (SageMaker: 1 to 10).
    pub num_ip_encoder_layers: Option<Range>,
    /// Random-address negatives per positive (SageMaker: 0 to 10; searched
    /// from 1 unless given, see [`SearchSpace::default`]).
    pub random_negative_sampling_rate: Option<Range>,
    /// Shuffled-entity negatives per positive (SageMaker: 0 to 10).
    pub shuffled_negative_sampling_rate: Option<Range>,
    /// Positives per step (SageMaker: 100 to 50,000).
    pub mini_batch_size: Option<Range>,
    /// Passes over the data (SageMaker: 1 to 100).
    pub epochs: Option<Range>,
    /// L2 weight decay (SageMaker: 0 to 1).
    pub weight_decay: Option<Range>,
}

impl Default for SearchSpace {
    fn default() -> SearchSpace {
        SearchSpace {
            vector_dim: Some([8.0, 256.0]),
            learning_rate: Some([1e-4, 0.1]),
            num_ip_encoder_layers: Some([1.0, 3.0]),
            // SageMaker's range starts at 0, but a model trained without
            // random-address negatives never learns that a foreign address
            // is foreign: its validation AUC (random-address negatives) was
            // 0.19 in a 10k-user tune, a wasted trial. Give `[0, 10]` to
            // search it anyway.
            random_negative_sampling_rate: Some([1.0, 10.0]),
            shuffled_negative_sampling_rate: Some([0.0, 10.0]),
            mini_batch_size: None,
            epochs: None,
            weight_decay: None,
        }
    }
}

impl SearchSpace {
    /// The searched names with their ranges, in a fixed order.
    pub fn ranges(&self) -> Vec<(&'static str, Range)> {
        [
            ("vector_dim", self.vector_dim),
            ("learning_rate", self.learning_rate),
            ("num_ip_encoder_layers", self.num_ip_encoder_layers),
            ("random_negative_sampling_rate", self.random_negative_sampling_rate),
            ("shuffled_negative_sampling_rate", self.shuffled_negative_sampling_rate),
            ("mini_batch_size", self.mini_batch_size),
            ("epochs", self.epochs),
            ("weight_decay", self.weight_decay),
        ]
        .into_iter()
        .filter_map(|(n, r)| Some((n, r?)))
        .collect()
    }

    /// Sets (or, with `None`, stops searching) the range of `name`.
    pub fn set(&mut self, name: &str, range: Option<Range>) -> std::result::Result<(), String> {
        let slot = match name {
            "vector_dim" => &mut self.vector_dim,
            "learning_rate" => &mut self.learning_rate,
            "num_ip_encoder_layers" => &mut self.num_ip_encoder_layers,
            "random_negative_sampling_rate" => &mut self.random_negative_sampling_rate,
            "shuffled_negative_sampling_rate" => &mut self.shuffled_negative_sampling_rate,
            "mini_batch_size" => &mut self.mini_batch_size,
            "epochs" => &mut self.epochs,
            "weight_decay" => &mut self.weight_decay,
            other => {
                return Err(format!(
                    "`{other}` cannot be searched; searchable: vector_dim, learning_rate, \
                     num_ip_encoder_layers, random_negative_sampling_rate, \
                     shuffled_negative_sampling_rate, mini_batch_size, epochs, weight_decay"
                ));
            }
        };
        *slot = range;
        Ok(())
    }
}

impl TuneConfig {
    /// A config with the required fields and every default.
    pub fn new(train: &str, validation: &str, output: &str) -> TuneConfig {
        TuneConfig {
            train: train.into(),
            validation: validation.into(),
            test: None,
            output: output.into(),
            trials: default_trials(),
            parallel: None,
            hyperparameters: Hyperparameters::default(),
            space: SearchSpace::default(),
            seed: 0,
            ip_hash_buckets: None,
        }
    }

    /// Every problem, as `(field, message)`: the base hyperparameters',
    /// and each range that is empty or leaves SageMaker's allowed range.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out: Vec<(&'static str, String)> = self
            .hyperparameters
            .problems()
            .into_iter()
            .map(|p| ("hyperparameters", p.to_string()))
            .collect();
        if self.trials == 0 {
            out.push(("trials", "must be at least 1".into()));
        }
        if self.parallel == Some(0) {
            out.push(("parallel", "must be at least 1".into()));
        }
        for (field, value) in
            [("train", &self.train), ("validation", &self.validation), ("output", &self.output)]
        {
            if value.trim().is_empty() {
                out.push((field, "must not be empty".into()));
            }
        }
        for (name, [lo, hi]) in self.space.ranges() {
            if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
                out.push(("space", format!("{name}: [{lo}, {hi}] is not a range")));
                continue;
            }
            // Both ends must be valid hyperparameters.
            for end in [lo, hi] {
                let mut h = self.hyperparameters.clone();
                set_value(&mut h, name, end);
                if let Some(p) = h.problems().into_iter().find(|p| p.name == name) {
                    out.push(("space", p.to_string()));
                }
            }
        }
        out
    }
}

/// Sets hyperparameter `name` to `value` (rounded for integers).
fn set_value(h: &mut Hyperparameters, name: &str, value: f64) {
    let int = |v: f64| v.round().max(0.0) as usize;
    match name {
        "vector_dim" => h.vector_dim = int(value),
        "learning_rate" => h.learning_rate = value,
        "num_ip_encoder_layers" => h.num_ip_encoder_layers = int(value),
        "random_negative_sampling_rate" => h.random_negative_sampling_rate = int(value),
        "shuffled_negative_sampling_rate" => h.shuffled_negative_sampling_rate = int(value),
        "mini_batch_size" => h.mini_batch_size = int(value),
        "epochs" => h.epochs = int(value),
        "weight_decay" => h.weight_decay = value,
        _ => {}
    }
}

/// The hyperparameters of every trial: the base first, then random draws.
pub fn candidates(config: &TuneConfig) -> Vec<Hyperparameters> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(config.seed ^ 0x7475_6e65);
    let mut out = vec![config.hyperparameters.clone()];
    let integer = |name: &str| !matches!(name, "learning_rate" | "weight_decay");
    while out.len() < config.trials {
        let mut h = config.hyperparameters.clone();
        for (name, [lo, hi]) in config.space.ranges() {
            let value = if hi <= lo {
                lo
            } else if lo > 0.0 && hi / lo >= 10.0 {
                let (a, b) = (lo.ln(), hi.ln());
                (a + (b - a) * rng.random::<f64>()).exp()
            } else if integer(name) {
                // Each integer equally likely.
                let (a, b) = (lo.round() as i64, hi.round() as i64);
                rng.random_range(a..=b) as f64
            } else {
                lo + (hi - lo) * rng.random::<f64>()
            };
            set_value(&mut h, name, value.clamp(lo, hi));
        }
        if h.random_negative_sampling_rate + h.shuffled_negative_sampling_rate == 0 {
            // SageMaker needs at least one negative per positive.
            h.random_negative_sampling_rate = 1;
        }
        out.push(h);
    }
    out
}

/// One trial's outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Trial {
    /// From 1; trial 1 is the base hyperparameters.
    pub trial: usize,
    /// The hyperparameters trained with.
    pub hyperparameters: Hyperparameters,
    /// The objective: the last epoch's `validation:discriminator_auc`.
    pub validation_auc: Option<f64>,
    /// Validation AUC after every epoch.
    pub validation_auc_by_epoch: Vec<f64>,
    /// Wall-clock seconds of the trial.
    pub seconds: f64,
    /// Training pairs per second, over the epochs.
    pub pairs_per_sec: f64,
    /// Why the trial failed, if it did.
    pub error: Option<String>,
}

/// What a search found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TuneReport {
    /// Every trial, in trial order.
    pub trials: Vec<Trial>,
    /// The winning trial's number.
    pub best_trial: usize,
    /// Its validation AUC.
    pub best_validation_auc: f64,
    /// The base hyperparameters' validation AUC (trial 1).
    pub base_validation_auc: Option<f64>,
    /// The winner's random-address test AUC (the notebook's test), when
    /// test data was given.
    pub test_random_ip_auc: Option<f64>,
    /// The winner's model folder.
    pub model: String,
    /// The winner's model id.
    pub model_id: String,
    /// The searched ranges.
    pub space: Vec<(String, Range)>,
    /// Trials run at once, and threads each.
    pub parallel: usize,
    /// Threads per trial.
    pub threads_per_trial: usize,
    /// Wall-clock seconds of the whole search.
    pub seconds: f64,
}

impl TuneReport {
    /// The trials as a table for people; the winner is starred.
    pub fn to_table(&self) -> String {
        let mut out = format!(
            "{:>5} {:>5} {:>10} {:>6} {:>3} {:>3} {:>6} {:>6} {:>8} {:>9} {:>8}\n",
            "trial",
            "dim",
            "lr",
            "layers",
            "R",
            "S",
            "batch",
            "epochs",
            "w_decay",
            "val AUC",
            "seconds"
        );
        for t in &self.trials {
            let h = &t.hyperparameters;
            let auc = t.validation_auc.map_or("failed".into(), |a| format!("{a:.4}"));
            let mark = if t.trial == self.best_trial { "*" } else { " " };
            out.push_str(&format!(
                "{:>4}{mark} {:>5} {:>10.6} {:>6} {:>3} {:>3} {:>6} {:>6} {:>8.1e} {:>9} {:>8.1}\n",
                t.trial,
                h.vector_dim,
                h.learning_rate,
                h.num_ip_encoder_layers,
                h.random_negative_sampling_rate,
                h.shuffled_negative_sampling_rate,
                h.mini_batch_size,
                h.epochs,
                h.weight_decay,
                auc,
                t.seconds
            ));
        }
        out.push_str(&format!(
            "best: trial {} (validation AUC {:.4}; trial 1, the base hyperparameters: {})\n",
            self.best_trial,
            self.best_validation_auc,
            self.base_validation_auc.map_or("failed".into(), |a| format!("{a:.4}"))
        ));
        if let Some(auc) = self.test_random_ip_auc {
            out.push_str(&format!("winner's test:random_ip_auc {auc:.4}\n"));
        }
        out.push_str(&format!("model {} ({})\n", self.model, self.model_id));
        out
    }

    /// `trials.csv`.
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "trial,vector_dim,learning_rate,num_ip_encoder_layers,random_negative_sampling_rate,\
             shuffled_negative_sampling_rate,mini_batch_size,epochs,weight_decay,validation_auc,seconds,error\n",
        );
        for t in &self.trials {
            let h = &t.hyperparameters;
            let error = t.error.as_deref().unwrap_or("").replace(['"', ',', '\n'], " ");
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{},{:.3},{error}\n",
                t.trial,
                h.vector_dim,
                h.learning_rate,
                h.num_ip_encoder_layers,
                h.random_negative_sampling_rate,
                h.shuffled_negative_sampling_rate,
                h.mini_batch_size,
                h.epochs,
                h.weight_decay,
                t.validation_auc.map_or(String::new(), |a| format!("{a:.6}")),
                t.seconds,
            ));
        }
        out
    }
}

/// Called as each trial finishes.
pub type TrialObserver = Box<dyn Fn(&Trial) + Send + Sync>;

/// Runs the search; writes `OUTPUT/model/` (the winner), `OUTPUT/trials.csv`
/// and `OUTPUT/tune.json`.
pub async fn tune(config: &TuneConfig, observer: Option<TrialObserver>) -> Result<TuneReport> {
    if let Some((field, message)) = config.problems().into_iter().next() {
        return Err(Error::Config { field, message });
    }
    let started = Instant::now();
    let rows = config.hyperparameters.num_entity_vectors;
    let train = ipi_model::data::load(&config.train, rows).await?;
    if train.is_empty() {
        return Err(Error::Input { url: config.train.clone(), reason: "no training pairs".into() });
    }
    let validation = ipi_model::data::load(&config.validation, rows).await?;
    let test = match &config.test {
        Some(url) => Some(ipi_model::data::load(url, rows).await?),
        None => None,
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let parallel = config.parallel.unwrap_or(cores).clamp(1, config.trials.max(1));
    let threads = (cores / parallel).max(1);
    tracing::info!(
        trials = config.trials,
        parallel,
        threads_per_trial = threads,
        train_rows = train.len(),
        validation_rows = validation.len(),
        "Tuning."
    );
    let owned = config.clone();
    let work = tokio::task::spawn_blocking(move || {
        let outcome = search(&owned, &train, &validation, parallel, threads, observer)?;
        let test_auc = match (&test, &outcome.best) {
            (Some(test), Some(best)) => ipi_model::metrics::random_ip_test_auc(
                &best.model,
                &train,
                test,
                best.model.hyperparameters.seed,
            )?,
            _ => None,
        };
        Ok::<_, Error>((outcome, test_auc, train.summary, validation.summary))
    });
    let (outcome, test_auc, train_summary, validation_summary) =
        work.await.map_err(|e| Error::Task(format!("tuning: {e}")))??;
    let Some(best) = outcome.best else {
        let first = outcome.trials.iter().find_map(|t| t.error.clone()).unwrap_or_default();
        return Err(Error::Task(format!("every trial failed; the first: {first}")));
    };
    let root = Location::parse(config.output.trim_end_matches('/'))?;
    let model_url = root.join("model").to_string();
    let mut fit = best.report;
    fit.test_random_ip_auc = test_auc;
    let provenance = Provenance {
        training_data: Some(train_summary),
        validation_data: Some(validation_summary),
        training: fit,
    };
    let card = ipi_model::checkpoint::save(&best.model, &model_url, provenance).await?;
    let report = TuneReport {
        best_trial: best.trial,
        best_validation_auc: best.auc,
        base_validation_auc: outcome.trials.first().and_then(|t| t.validation_auc),
        trials: outcome.trials,
        test_random_ip_auc: test_auc,
        model: model_url,
        model_id: card.model_id,
        space: config.space.ranges().into_iter().map(|(n, r)| (n.to_owned(), r)).collect(),
        parallel,
        threads_per_trial: threads,
        seconds: started.elapsed().as_secs_f64(),
    };
    let json =
        serde_json::to_vec_pretty(&report).map_err(|e| Error::Task(format!("tune.json: {e}")))?;
    ipi_storage::put_atomic(&root.join("trials.csv"), Bytes::from(report.to_csv())).await?;
    ipi_storage::put_atomic(&root.join("tune.json"), Bytes::from(json)).await?;
    Ok(report)
}

/// A trial's relative cost: per positive pair, `1+R+S` dot products and
/// gathers of `d` floats, and `1+R` addresses through `L` dense layers of
/// `d²` (forward and backward), for every epoch.
fn cost(h: &Hyperparameters) -> f64 {
    let (d, l) = (h.vector_dim as f64, h.num_ip_encoder_layers as f64);
    let (r, s) = (h.random_negative_sampling_rate as f64, h.shuffled_negative_sampling_rate as f64);
    h.epochs as f64 * ((1.0 + r + s) * d + 3.0 * (1.0 + r) * l * d * d)
}

struct Best {
    trial: usize,
    auc: f64,
    model: ipi_model::Model,
    report: FitReport,
}

struct Outcome {
    trials: Vec<Trial>,
    best: Option<Best>,
}

fn search(
    config: &TuneConfig,
    train: &Pairs,
    validation: &Pairs,
    parallel: usize,
    threads: usize,
    observer: Option<TrialObserver>,
) -> Result<Outcome> {
    let candidates = candidates(config);
    // The costliest trials first, so that the last ones to finish are
    // short and no core idles long while one big trial runs alone.
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|&a, &b| cost(&candidates[b]).total_cmp(&cost(&candidates[a])));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Trial>>> = Mutex::new(vec![None; candidates.len()]);
    let best: Mutex<Option<Best>> = Mutex::new(None);
    let spec = IpEncoderSpec {
        hash_buckets: config.ip_hash_buckets.unwrap_or(ipi_model::ip::DEFAULT_HASH_BUCKETS),
        ..IpEncoderSpec::default()
    };
    let worker = || -> Result<()> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| Error::Task(format!("thread pool: {e}")))?;
        loop {
            let Some(&i) = order.get(next.fetch_add(1, Ordering::SeqCst)) else { return Ok(()) };
            let Some(h) = candidates.get(i) else { return Ok(()) };
            let clock = Instant::now();
            let fitted = pool.install(|| {
                let model = ipi_model::Model::new(h, spec)?;
                ipi_model::train::fit(
                    model,
                    train,
                    Some(validation),
                    &FitOptions::default(),
                    &mut Quiet,
                )
            });
            let seconds = clock.elapsed().as_secs_f64();
            let trial = match fitted {
                Ok((model, report)) => {
                    let by_epoch: Vec<f64> = report
                        .epochs
                        .iter()
                        .filter_map(|e| e.validation_discriminator_auc)
                        .collect();
                    let auc = by_epoch.last().copied().filter(|a| a.is_finite());
                    let train_seconds: f64 = report.epochs.iter().map(|e| e.train_seconds).sum();
                    let pairs: f64 = report
                        .epochs
                        .iter()
                        .map(|e| e.throughput_pairs_per_sec * e.train_seconds)
                        .sum();
                    if let Some(auc) = auc {
                        let mut best = best.lock().map_err(|_| Error::Task("lock".into()))?;
                        let better = match &*best {
                            None => true,
                            Some(b) => auc > b.auc || (auc == b.auc && i + 1 < b.trial),
                        };
                        if better {
                            *best = Some(Best { trial: i + 1, auc, model, report });
                        }
                    }
                    Trial {
                        trial: i + 1,
                        hyperparameters: h.clone(),
                        validation_auc: auc,
                        validation_auc_by_epoch: by_epoch,
                        seconds,
                        pairs_per_sec: pairs / train_seconds.max(1e-9),
                        error: auc.is_none().then(|| "no finite validation AUC".to_string()),
                    }
                }
                Err(e) => Trial {
                    trial: i + 1,
                    hyperparameters: h.clone(),
                    validation_auc: None,
                    validation_auc_by_epoch: Vec::new(),
                    seconds,
                    pairs_per_sec: 0.0,
                    error: Some(e.to_string()),
                },
            };
            tracing::info!(
                trial = trial.trial,
                validation_auc = trial.validation_auc.map(|a| format!("{a:.4}")),
                seconds = format!("{seconds:.1}"),
                error = trial.error.as_deref(),
                "Trial done."
            );
            if let Some(observer) = &observer {
                observer(&trial);
            }
            let mut results = results.lock().map_err(|_| Error::Task("lock".into()))?;
            results[i] = Some(trial);
        }
    };
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..parallel).map(|_| s.spawn(worker)).collect();
        for handle in handles {
            handle.join().map_err(|_| Error::Task("a trial thread panicked".into()))??;
        }
        Ok::<_, Error>(())
    })?;
    let trials = results
        .into_inner()
        .map_err(|_| Error::Task("lock".into()))?
        .into_iter()
        .flatten()
        .collect();
    let best = best.into_inner().map_err(|_| Error::Task("lock".into()))?;
    Ok(Outcome { trials, best })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_candidate_is_the_base_and_draws_stay_in_range() {
        let mut config = TuneConfig::new("t", "v", "o");
        config.trials = 40;
        config.hyperparameters.vector_dim = 64;
        let c = candidates(&config);
        assert_eq!(c.len(), 40);
        assert_eq!(c[0], config.hyperparameters);
        for h in &c[1..] {
            assert!((8..=256).contains(&h.vector_dim), "{}", h.vector_dim);
            assert!((1e-4..=0.1).contains(&h.learning_rate), "{}", h.learning_rate);
            assert!((1..=3).contains(&h.num_ip_encoder_layers));
            assert!((1..=10).contains(&h.random_negative_sampling_rate));
            assert!(h.shuffled_negative_sampling_rate <= 10);
            assert!(h.random_negative_sampling_rate + h.shuffled_negative_sampling_rate >= 1);
            assert_eq!(h.epochs, config.hyperparameters.epochs, "not searched by default");
            assert!(h.problems().is_empty());
        }
        // Log-uniform: about half the learning rates under sqrt(1e-4 * 0.1) = 0.0032.
        let low = c[1..].iter().filter(|h| h.learning_rate < 0.0032).count();
        assert!((8..=31).contains(&low), "{low} of 39");
        // Seeded: the same seed gives the same trials, another seed others.
        assert_eq!(candidates(&config), c);
        config.seed = 1;
        assert_ne!(candidates(&config), c);
    }

    #[test]
    fn ranges_outside_sagemakers_are_problems() {
        let mut config = TuneConfig::new("t", "v", "o");
        assert!(config.problems().is_empty());
        config.space.set("vector_dim", Some([2.0, 64.0])).unwrap();
        config.space.set("learning_rate", Some([0.1, 0.01])).unwrap();
        let p: Vec<String> = config.problems().into_iter().map(|(_, m)| m).collect();
        assert_eq!(
            p,
            [
                "vector_dim = 2 is out of range: allowed 4 to 4096",
                "learning_rate: [0.1, 0.01] is not a range"
            ]
        );
        assert!(config.space.set("seed", None).is_err());
    }
}

//! Training: negative sampling, one step's forward and backward pass, the
//! epoch loop with SageMaker's metrics, and early stopping.
//!
//! One step, for `B` positives with `R` random and `S` shuffled negatives
//! each (`M = B(1 + R + S)` pairs):
//!
//! 1. gather the `B` entity rows `E`, and the summed prefix rows `X` of the
//!    `N = B(1 + R)` addresses: the positives' and `B·R` uniform ones
//!    (sparse, on the host);
//! 2. run the dense layers on `X` (candle, on the model's device): `H`;
//! 3. score the `M` pairs — positive `E_i·H_i`, random `E_i·H_{B+iR+k}`,
//!    shuffled `E_{π(i)}·H_i` — and take binary cross-entropy's gradient
//!    with respect to each logit, `(σ(x) − y) / M`, then to `H` and `E`
//!    (fused, on the host);
//! 4. back through the dense layers (candle): the gradient of `X` and of
//!    each layer;
//! 5. Adam: lazy row-sparse on the tables (only the rows the batch named),
//!    dense on the layers.
//!
//! A thread samples the next batches while a step runs.

use std::sync::mpsc;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::data::Pairs;
use crate::metrics::auc;
use crate::model::{Model, dot};
use crate::sparse::{AdamStep, SparseAdam};

/// Adam's constants (MXNet's and PyTorch's defaults).
const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
const EPS: f32 = 1e-8;

/// Batches sampled ahead of the step that runs.
const BATCHES_AHEAD: usize = 4;

/// The sampled input of one step.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// The `B` positives' entity rows.
    pub entity_rows: Vec<[u32; 1]>,
    /// Prefix rows of the `B` positive addresses, then of the `B·R`
    /// random ones (`R` per positive, positive-major).
    pub ip_bags: Vec<[u32; 4]>,
    /// `S` permutations of `0..B`: shuffled negative `s` of positive `i`
    /// pairs entity `perms[s][i]` with address `i`.
    pub perms: Vec<Vec<u32>>,
}

/// Loss and accuracy summed over a step's pairs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepStats {
    /// Σ binary cross-entropy over the pairs.
    pub loss_sum: f64,
    /// Pairs whose sign of the logit matches the label.
    pub correct: u64,
    /// Pairs scored.
    pub pairs: u64,
}

impl StepStats {
    fn add(&mut self, other: StepStats) {
        self.loss_sum += other.loss_sum;
        self.correct += other.correct;
        self.pairs += other.pairs;
    }

    /// Mean binary cross-entropy.
    pub fn cross_entropy(&self) -> f64 {
        self.loss_sum / self.pairs.max(1) as f64
    }

    /// Share of pairs classified right at logit 0.
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.pairs.max(1) as f64
    }
}

/// Gradients of one step, for tests: the tables' per-reference gradients
/// and the layers'.
#[derive(Debug, Clone)]
pub struct Gradients {
    /// `∂L/∂E`, `[B, dim]`.
    pub entity: Vec<f32>,
    /// `∂L/∂X`, `[N, dim]`: each address's summed prefix rows.
    pub ip_input: Vec<f32>,
    /// `(∂L/∂W, ∂L/∂b)` per layer.
    pub layers: Vec<(Vec<f32>, Vec<f32>)>,
}

/// Adam's moments of one dense layer.
#[derive(Debug, Clone)]
struct DenseAdam {
    m_w: Tensor,
    v_w: Tensor,
    m_b: Tensor,
    v_b: Tensor,
}

/// A model with its optimiser state.
#[derive(Debug)]
pub struct Trainer {
    /// The model being trained.
    pub model: Model,
    entity_adam: SparseAdam,
    ip_adam: SparseAdam,
    dense_adam: Vec<DenseAdam>,
    t: u64,
}

impl Trainer {
    /// A trainer with zeroed Adam moments.
    pub fn new(model: Model) -> Result<Trainer> {
        let mut dense_adam = Vec::new();
        for layer in &model.layers {
            dense_adam.push(DenseAdam {
                m_w: layer.weight.zeros_like()?,
                v_w: layer.weight.zeros_like()?,
                m_b: layer.bias.zeros_like()?,
                v_b: layer.bias.zeros_like()?,
            });
        }
        Ok(Trainer {
            entity_adam: SparseAdam::new(&model.entity_table),
            ip_adam: SparseAdam::new(&model.ip_table),
            dense_adam,
            model,
            t: 0,
        })
    }

    /// One training step: forward, backward and the Adam updates.
    pub fn step(&mut self, batch: &Batch) -> Result<StepStats> {
        let (stats, grads) = self.forward_backward(batch)?;
        self.t += 1;
        let h = &self.model.hyperparameters;
        let adam = AdamStep {
            lr: h.learning_rate as f32,
            beta1: BETA1,
            beta2: BETA2,
            eps: EPS,
            weight_decay: h.weight_decay as f32,
            t: self.t,
        };
        self.ip_adam.step(&mut self.model.ip_table, &batch.ip_bags, &grads.ip_input, &adam);
        self.entity_adam.step(
            &mut self.model.entity_table,
            &batch.entity_rows,
            &grads.entity,
            &adam,
        );
        let lr_t = f64::from(adam.lr_t());
        let wd = f64::from(adam.weight_decay);
        for ((layer, state), (dw, db)) in
            self.model.layers.iter_mut().zip(&mut self.dense_adam).zip(grads.dense)
        {
            (layer.weight, state.m_w, state.v_w) =
                dense_adam(&layer.weight, &state.m_w, &state.v_w, &dw, lr_t, wd)?;
            (layer.bias, state.m_b, state.v_b) =
                dense_adam(&layer.bias, &state.m_b, &state.v_b, &db, lr_t, wd)?;
        }
        Ok(stats)
    }

    /// The loss of a batch and its gradients, without updating anything.
    pub fn gradients(&self, batch: &Batch) -> Result<(StepStats, Gradients)> {
        let (stats, grads) = self.forward_backward(batch)?;
        let mut layers = Vec::new();
        for (dw, db) in &grads.dense {
            layers.push((Model::host(dw)?, Model::host(db)?));
        }
        Ok((stats, Gradients { entity: grads.entity, ip_input: grads.ip_input, layers }))
    }

    fn forward_backward(&self, batch: &Batch) -> Result<(StepStats, StepGrads)> {
        let model = &self.model;
        let dim = model.dim();
        let b = batch.entity_rows.len();
        let n = batch.ip_bags.len();
        let r = (n - b) / b.max(1);
        let mut x = vec![0.0f32; n * dim];
        model.ip_table.gather_sum(&batch.ip_bags, &mut x);
        let mut e = vec![0.0f32; b * dim];
        model.entity_table.gather_sum(&batch.entity_rows, &mut e);

        // `inputs[l]` is layer l's input; the last layer's bias and ReLU
        // run here on the host, fused, so `h` is its output.
        let (inputs, h) = match model.layers.split_last() {
            None => (Vec::new(), x),
            Some((last, first)) => {
                let x = Tensor::from_vec(x, (n, dim), &Device::Cpu)?.to_device(&model.device)?;
                let mut inputs = Vec::with_capacity(model.layers.len());
                inputs.push(x);
                for layer in first {
                    let h = layer.forward(inputs.last().expect("x is there"))?;
                    inputs.push(h);
                }
                let z = inputs.last().expect("x is there").matmul(&last.weight.t()?)?;
                let mut h: Vec<f32> = z.flatten_all()?.to_vec1()?;
                let bias = Model::host(&last.bias)?;
                h.par_chunks_mut(dim).for_each(|row| {
                    for (h, b) in row.iter_mut().zip(&bias) {
                        *h = (*h + b).max(0.0);
                    }
                });
                (inputs, h)
            }
        };

        // Logits, loss and ∂L/∂logit.
        let s = batch.perms.len();
        let m = (b * (1 + r + s)) as f32;
        let mut d_pos = vec![0.0f32; b];
        let mut d_rand = vec![0.0f32; b * r];
        let mut d_shuf = vec![0.0f32; s * b];
        let mut shuf_logits = vec![0.0f32; s * b];
        for (k, perm) in batch.perms.iter().enumerate() {
            shuf_logits[k * b..(k + 1) * b].par_iter_mut().enumerate().for_each(|(i, out)| {
                let j = perm[i] as usize;
                *out = dot(&e[j * dim..(j + 1) * dim], &h[i * dim..(i + 1) * dim]);
            });
        }
        let per_positive: Vec<StepStats> = d_pos
            .par_iter_mut()
            .zip(d_rand.par_chunks_mut(r.max(1)))
            .enumerate()
            .map(|(i, (d_pos, d_rand))| {
                let ei = &e[i * dim..(i + 1) * dim];
                let mut stats = StepStats::default();
                let x = dot(ei, &h[i * dim..(i + 1) * dim]);
                *d_pos = bce(x, true, m, &mut stats);
                for (k, d) in d_rand.iter_mut().enumerate().take(r) {
                    let row = b + i * r + k;
                    let x = dot(ei, &h[row * dim..(row + 1) * dim]);
                    *d = bce(x, false, m, &mut stats);
                }
                stats
            })
            .collect();
        let mut stats = StepStats::default();
        for s in per_positive {
            stats.add(s);
        }
        for (d, &x) in d_shuf.iter_mut().zip(&shuf_logits) {
            *d = bce(x, false, m, &mut stats);
        }

        // ∂L/∂H, and through the last ReLU when there is one.
        let mut dh = vec![0.0f32; n * dim];
        dh.par_chunks_mut(dim).enumerate().for_each(|(row, out)| {
            if row < b {
                axpy(d_pos[row], &e[row * dim..(row + 1) * dim], out);
                for (k, perm) in batch.perms.iter().enumerate() {
                    let j = perm[row] as usize;
                    axpy(d_shuf[k * b + row], &e[j * dim..(j + 1) * dim], out);
                }
            } else {
                let i = (row - b) / r;
                axpy(d_rand[row - b], &e[i * dim..(i + 1) * dim], out);
            }
            if !model.layers.is_empty() {
                for (g, h) in out.iter_mut().zip(&h[row * dim..(row + 1) * dim]) {
                    if *h <= 0.0 {
                        *g = 0.0;
                    }
                }
            }
        });

        // ∂L/∂E. Shuffled negative (s, i) used entity perm[s][i]: invert.
        let inverse: Vec<Vec<u32>> = batch
            .perms
            .iter()
            .map(|perm| {
                let mut inv = vec![0u32; b];
                for (i, &j) in perm.iter().enumerate() {
                    inv[j as usize] = i as u32;
                }
                inv
            })
            .collect();
        let mut de = vec![0.0f32; b * dim];
        de.par_chunks_mut(dim).enumerate().for_each(|(j, out)| {
            axpy(d_pos[j], &h[j * dim..(j + 1) * dim], out);
            for k in 0..r {
                let row = b + j * r + k;
                axpy(d_rand[j * r + k], &h[row * dim..(row + 1) * dim], out);
            }
            for (k, inv) in inverse.iter().enumerate() {
                let i = inv[j] as usize;
                axpy(d_shuf[k * b + i], &h[i * dim..(i + 1) * dim], out);
            }
        });

        // Back through the dense layers: `dh` is already ∂L/∂z of the last.
        let mut dense = Vec::with_capacity(model.layers.len());
        let ip_input = if model.layers.is_empty() {
            dh
        } else {
            let last_db = column_sums(&dh, dim);
            let mut dz = Tensor::from_vec(dh, (n, dim), &Device::Cpu)?.to_device(&model.device)?;
            let mut db = Tensor::from_vec(last_db, dim, &model.device)?;
            for l in (0..model.layers.len()).rev() {
                let input = &inputs[l];
                let dw = dz.t()?.matmul(input)?;
                let d_input = dz.matmul(&model.layers[l].weight)?;
                if l > 0 {
                    let mask = input.gt(0.0f32)?.to_dtype(DType::F32)?;
                    dz = (d_input * mask)?;
                    dense.push((dw, std::mem::replace(&mut db, dz.sum(0)?)));
                } else {
                    dz = d_input;
                    dense.push((dw, db.clone()));
                }
            }
            dense.reverse();
            dz.flatten_all()?.to_vec1()?
        };
        Ok((stats, StepGrads { entity: de, ip_input, dense }))
    }
}

/// Gradients as one step uses them (the layers' still on the device).
struct StepGrads {
    entity: Vec<f32>,
    ip_input: Vec<f32>,
    dense: Vec<(Tensor, Tensor)>,
}

/// Binary cross-entropy with logits for one pair: adds its loss and
/// correctness to `stats`, returns `∂(mean loss)/∂x = (σ(x) − y) / m`.
#[inline]
fn bce(x: f32, positive: bool, m: f32, stats: &mut StepStats) -> f32 {
    let y = if positive { 1.0 } else { 0.0 };
    // max(x, 0) − x·y + ln(1 + e^−|x|), stable for any x.
    let loss = x.max(0.0) - x * y + (-x.abs()).exp().ln_1p();
    stats.loss_sum += f64::from(loss);
    stats.correct += u64::from((x > 0.0) == positive);
    stats.pairs += 1;
    (sigmoid(x) - y) / m
}

/// The logistic function.
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Column sums of a row-major `[n, dim]` matrix, in a fixed order (blocks
/// of rows summed in parallel, then the blocks in sequence), so the result
/// does not depend on the number of threads.
fn column_sums(m: &[f32], dim: usize) -> Vec<f32> {
    let partial: Vec<Vec<f32>> = m
        .par_chunks(dim * 256)
        .map(|block| {
            let mut sum = vec![0.0f32; dim];
            for row in block.chunks_exact(dim) {
                axpy(1.0, row, &mut sum);
            }
            sum
        })
        .collect();
    let mut sum = vec![0.0f32; dim];
    for p in &partial {
        axpy(1.0, p, &mut sum);
    }
    sum
}

/// `out += a * x`.
#[inline]
fn axpy(a: f32, x: &[f32], out: &mut [f32]) {
    for (o, x) in out.iter_mut().zip(x) {
        *o += a * x;
    }
}

/// One dense Adam step with L2 decay: new `(w, m, v)`.
fn dense_adam(
    w: &Tensor,
    m: &Tensor,
    v: &Tensor,
    g: &Tensor,
    lr_t: f64,
    wd: f64,
) -> Result<(Tensor, Tensor, Tensor)> {
    let b1 = f64::from(BETA1);
    let b2 = f64::from(BETA2);
    let g = (g + w.affine(wd, 0.0)?)?;
    let m = (m.affine(b1, 0.0)? + g.affine(1.0 - b1, 0.0)?)?;
    let v = (v.affine(b2, 0.0)? + g.sqr()?.affine(1.0 - b2, 0.0)?)?;
    let step = (m.affine(lr_t, 0.0)? / (v.sqrt()? + f64::from(EPS))?)?;
    Ok(((w - step)?, m, v))
}

/// Samples batches: the positives in a seeded order each epoch, `R` uniform
/// addresses (each octet uniform in 0..=255) and `S` shuffles per batch.
#[derive(Debug)]
pub struct Sampler {
    rng: ChaCha8Rng,
    random: usize,
    shuffled: usize,
    spec: crate::ip::IpEncoderSpec,
}

impl Sampler {
    /// A sampler for `model`'s hyperparameters, seeded by them.
    pub fn new(model: &Model) -> Sampler {
        let h = &model.hyperparameters;
        Sampler {
            rng: seeded(h.seed, 10),
            random: h.random_negative_sampling_rate,
            shuffled: h.shuffled_negative_sampling_rate,
            spec: model.ip_spec,
        }
    }

    /// A fresh visiting order for an epoch over `rows` positives.
    pub fn epoch_order(&mut self, rows: usize) -> Vec<u32> {
        let mut order: Vec<u32> = (0..rows as u32).collect();
        order.shuffle(&mut self.rng);
        order
    }

    /// The batch of the positives `which` of `data`.
    pub fn batch(&mut self, data: &Pairs, which: &[u32]) -> Batch {
        let b = which.len();
        let mut batch = Batch {
            entity_rows: which.iter().map(|&i| [data.entity_rows[i as usize]]).collect(),
            ip_bags: Vec::with_capacity(b * (1 + self.random)),
            perms: Vec::with_capacity(self.shuffled),
        };
        batch.ip_bags.extend(which.iter().map(|&i| self.spec.rows_of(data.ips[i as usize])));
        for _ in 0..b * self.random {
            let ip = self.rng.next_u32();
            batch.ip_bags.push(self.spec.rows_of(ip));
        }
        for _ in 0..self.shuffled {
            let mut perm: Vec<u32> = (0..b as u32).collect();
            perm.shuffle(&mut self.rng);
            batch.perms.push(perm);
        }
        batch
    }
}

/// The stream for `(seed, purpose)`.
pub(crate) fn seeded(seed: u64, purpose: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&purpose.to_le_bytes());
    key[24..].copy_from_slice(b"ipitrain");
    ChaCha8Rng::from_seed(key)
}

/// Metrics every `batch_metrics_publish_interval` batches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchMetrics {
    /// Epoch, from 1.
    pub epoch: usize,
    /// Batches done in this epoch.
    pub batch: usize,
    /// Batches in this epoch.
    pub batches: usize,
    /// Mean loss since the last report.
    pub binary_classification_cross_entropy: f64,
    /// Accuracy since the last report.
    pub binary_classification_accuracy: f64,
    /// Pairs (positives and negatives) per second since the last report.
    pub throughput_pairs_per_sec: f64,
}

/// Metrics at the end of every epoch, as `model.json` records them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Epoch, from 1.
    pub epoch: usize,
    /// Mean training loss over the epoch.
    pub binary_classification_cross_entropy: f64,
    /// Training accuracy over the epoch.
    pub binary_classification_accuracy: f64,
    /// Pairs per second over the epoch's steps.
    pub throughput_pairs_per_sec: f64,
    /// Seconds of training steps (validation excluded).
    pub train_seconds: f64,
    /// AUC on validation with one random-address negative per positive.
    #[serde(rename = "validation:discriminator_auc", skip_serializing_if = "Option::is_none")]
    pub validation_discriminator_auc: Option<f64>,
}

/// Receives progress while training runs.
pub trait Observer {
    /// Every `batch_metrics_publish_interval` batches and at an epoch's end.
    fn batch(&mut self, _metrics: &BatchMetrics) {}
    /// After every epoch, validation included.
    fn epoch(&mut self, _metrics: &EpochMetrics) {}
}

/// An observer that ignores everything.
#[derive(Debug, Default)]
pub struct Quiet;

impl Observer for Quiet {}

/// Options of a training run that are not hyperparameters.
#[derive(Debug, Clone, Default)]
pub struct FitOptions {
    /// Stop when validation AUC has not improved for this many epochs.
    pub early_stopping_patience: Option<usize>,
    /// Stop after this many steps in every epoch (benchmarks).
    pub max_steps_per_epoch: Option<usize>,
}

/// What a training run did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FitReport {
    /// One entry per epoch run.
    pub epochs: Vec<EpochMetrics>,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
    /// The notebook's random-address test AUC, when test data was given.
    #[serde(default, rename = "test:random_ip_auc", skip_serializing_if = "Option::is_none")]
    pub test_random_ip_auc: Option<f64>,
}

/// Trains `model` on `train`, reporting to `observer`; validates on
/// `validation` after each epoch when given.
pub fn fit(
    model: Model,
    train: &Pairs,
    validation: Option<&Pairs>,
    options: &FitOptions,
    observer: &mut dyn Observer,
) -> Result<(Model, FitReport)> {
    let h = model.hyperparameters.clone();
    let mut sampler = Sampler::new(&model);
    let validation_negatives = validation.map(|v| {
        let mut rng = seeded(h.seed, 11);
        (0..v.len()).map(|_| rng.next_u32()).collect::<Vec<u32>>()
    });
    let mut model = model;
    for &row in &train.entity_rows {
        if let Some(seen) = model.entity_trained.get_mut(row as usize) {
            *seen = true;
        }
    }
    let mut trainer = Trainer::new(model)?;
    let mut report = FitReport::default();
    let mut stopper = options.early_stopping_patience.map(EarlyStopping::new);
    for epoch in 1..=h.epochs {
        let order = sampler.epoch_order(train.len());
        let mut batches: Vec<&[u32]> = order.chunks(h.mini_batch_size).collect();
        if let Some(max) = options.max_steps_per_epoch {
            batches.truncate(max);
        }
        let total = batches.len();
        let (tx, rx) = mpsc::sync_channel::<Batch>(BATCHES_AHEAD);
        let mut epoch_stats = StepStats::default();
        let mut window = StepStats::default();
        let started = Instant::now();
        let mut window_started = started;
        let sampler_ref = &mut sampler;
        std::thread::scope(|scope| -> Result<()> {
            scope.spawn(move || {
                for which in batches {
                    if tx.send(sampler_ref.batch(train, which)).is_err() {
                        return;
                    }
                }
            });
            for (i, batch) in rx.iter().enumerate() {
                let stats = trainer.step(&batch)?;
                epoch_stats.add(stats);
                window.add(stats);
                if (i + 1) % h.batch_metrics_publish_interval == 0 || i + 1 == total {
                    let secs = window_started.elapsed().as_secs_f64();
                    observer.batch(&BatchMetrics {
                        epoch,
                        batch: i + 1,
                        batches: total,
                        binary_classification_cross_entropy: window.cross_entropy(),
                        binary_classification_accuracy: window.accuracy(),
                        throughput_pairs_per_sec: window.pairs as f64 / secs.max(1e-9),
                    });
                    window = StepStats::default();
                    window_started = Instant::now();
                }
            }
            Ok(())
        })?;
        let train_seconds = started.elapsed().as_secs_f64();
        let validation_discriminator_auc = match (validation, &validation_negatives) {
            (Some(v), Some(neg)) => Some(discriminator_auc(&trainer.model, v, neg)?),
            _ => None,
        };
        let metrics = EpochMetrics {
            epoch,
            binary_classification_cross_entropy: epoch_stats.cross_entropy(),
            binary_classification_accuracy: epoch_stats.accuracy(),
            throughput_pairs_per_sec: epoch_stats.pairs as f64 / train_seconds.max(1e-9),
            train_seconds,
            validation_discriminator_auc,
        };
        observer.epoch(&metrics);
        report.epochs.push(metrics);
        let stop = match (&mut stopper, validation_discriminator_auc) {
            (Some(stopper), Some(auc)) => stopper.stop_after(auc),
            _ => false,
        };
        if stop {
            report.stopped_early = true;
            break;
        }
    }
    Ok((trainer.model, report))
}

/// Stops training when validation AUC has not improved for `patience`
/// epochs in a row.
#[derive(Debug, Clone)]
pub struct EarlyStopping {
    patience: usize,
    best: f64,
    since_best: usize,
}

impl EarlyStopping {
    /// A rule with the given patience (at least 1).
    pub fn new(patience: usize) -> EarlyStopping {
        EarlyStopping { patience: patience.max(1), best: f64::NEG_INFINITY, since_best: 0 }
    }

    /// Records an epoch's AUC; whether training should stop now.
    pub fn stop_after(&mut self, auc: f64) -> bool {
        if auc > self.best {
            self.best = auc;
            self.since_best = 0;
            false
        } else {
            self.since_best += 1;
            self.since_best >= self.patience
        }
    }
}

/// SageMaker's `validation:discriminator_auc`: each validation pair against
/// the same entity with a uniformly random address (R=1, S=0).
pub fn discriminator_auc(model: &Model, validation: &Pairs, negatives: &[u32]) -> Result<f64> {
    let pos = model.score(&validation.entity_rows, &validation.ips)?;
    let neg = model.score(&validation.entity_rows, negatives)?;
    Ok(auc(&pos, &neg))
}

#[cfg(test)]
mod tests {
    use super::EarlyStopping;

    #[test]
    fn early_stopping_waits_patience_epochs_without_improvement() {
        let mut rule = EarlyStopping::new(2);
        let aucs = [0.90, 0.91, 0.905, 0.92, 0.919, 0.918, 0.95];
        let stops: Vec<bool> = aucs.iter().map(|&a| rule.stop_after(a)).collect();
        assert_eq!(stops, [false, false, false, false, false, true, false]);
        let mut rule = EarlyStopping::new(1);
        assert!(!rule.stop_after(0.5));
        assert!(rule.stop_after(0.5), "an equal AUC is no improvement");
    }
}

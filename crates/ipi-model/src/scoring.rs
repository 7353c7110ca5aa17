//! A trained model prepared for scoring many pairs: its first encoder
//! layer folded into the prefix table.
//!
//! An address's encoder input is the sum of its four prefix rows, and the
//! first layer is linear before its ReLU:
//!
//! ```text
//! W · (t₈ + t₁₆ + t₂₄ + t₃₂) + b  =  W·t₈ + W·t₁₆ + W·t₂₄ + W·t₃₂ + b
//! ```
//!
//! So [`ScoringModel`] multiplies every row of the prefix table by `W` once,
//! when it is made, and scoring a pair gathers four rows of that table
//! instead of running a `dim × dim` matmul per pair. With the tutorial's
//! sizes (a 2^16-bucket table, 128 floats) the fold is about 200,000 rows'
//! worth of matmul, against one per pair; the batch transform scores
//! millions. The prefix table is folded in place (in the buffer the model
//! file was read into, when nothing else borrows it), so scoring needs no
//! more memory than the model.
//!
//! Scores agree with [`Model::score`] to float rounding (the four products
//! are added after the matmul rather than before), not bit for bit; within
//! a `ScoringModel`, [`score`](ScoringModel::score) is bit for bit the
//! [`dot`] of [`embeddings`](ScoringModel::embeddings).

use candle_core::{Device, Tensor};
use rayon::prelude::*;

use crate::Result;
use crate::ip::IpEncoderSpec;
use crate::model::{Dense, Model, SCORE_CHUNK, dot, relu_dot};
use crate::sparse::Table;

/// Rows of the prefix table a parallel task folds.
const FOLD_ROWS: usize = 1024;

/// Pairs a task scores at once with one encoder layer: their first-layer
/// inputs (32 KiB at 128 floats) stay in cache between the gather and the
/// dot product, and the allocator reuses the buffer.
const FUSED_PAIRS: usize = 64;

/// A model that scores pairs; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct ScoringModel {
    ip_spec: IpEncoderSpec,
    entity_table: Table,
    entity_trained: Vec<bool>,
    /// Row `r` is `W₁ · prefix_table[r]` (the prefix table itself for a
    /// model without encoder layers).
    folded: Table,
    /// `b₁`, the first layer's bias; `None` without encoder layers.
    first_bias: Option<Vec<f32>>,
    /// The layers after the first, on `device`.
    rest: Vec<Dense>,
    device: Device,
}

impl ScoringModel {
    /// Fold `model`'s first encoder layer into its prefix table, in place.
    pub fn new(model: Model) -> Result<ScoringModel> {
        let Model { ip_spec, entity_table, ip_table, layers, device, entity_trained, .. } = model;
        // A loaded model's tables share the buffer its file was read into.
        // When the entity table is the smaller, it gets its own copy, so
        // that the buffer goes once the prefix table is folded.
        let entity_table = if entity_table.rows < ip_table.rows {
            entity_table.into_owned()
        } else {
            entity_table
        };
        let mut layers = layers.into_iter();
        let (folded, first_bias) = match layers.next() {
            None => (ip_table, None),
            Some(first) => {
                (fold(ip_table, &Model::host(&first.weight)?), Some(Model::host(&first.bias)?))
            }
        };
        Ok(ScoringModel {
            ip_spec,
            entity_table,
            entity_trained,
            folded,
            first_bias,
            rest: layers.collect(),
            device,
        })
    }

    /// Floats per vector.
    pub fn dim(&self) -> usize {
        self.entity_table.dim
    }

    /// The entity-table row of an entity string.
    pub fn entity_row(&self, entity: &str) -> u32 {
        ipi_core::hash::entity_row(entity, self.entity_table.rows as u64) as u32
    }

    /// Whether training saw the entity row `row`.
    pub fn entity_seen(&self, row: u32) -> bool {
        self.entity_trained.get(row as usize).copied().unwrap_or(false)
    }

    /// The first layer's pre-activation for each address: its four folded
    /// rows, summed.
    fn first_layer_input(&self, ips: &[u32]) -> Vec<f32> {
        let mut z = vec![0.0; ips.len() * self.dim()];
        self.folded.gather_sum(&self.ip_spec.bags(ips), &mut z);
        z
    }

    /// `relu(z + b₁)` in place: the first layer's output.
    fn activate_first(&self, z: &mut [f32]) {
        if let Some(bias) = &self.first_bias {
            z.par_chunks_mut(self.dim()).for_each(|row| {
                for (v, b) in row.iter_mut().zip(bias) {
                    *v = (*v + b).max(0.0);
                }
            });
        }
    }

    /// `dot_product` of each `(entity row, address)` pair, `SCORE_CHUNK`
    /// pairs at a time.
    pub fn score(&self, entity_rows: &[u32], ips: &[u32]) -> Result<Vec<f32>> {
        assert_eq!(entity_rows.len(), ips.len());
        let dim = self.dim();
        let mut out = Vec::with_capacity(ips.len());
        for (rows, ips) in entity_rows.chunks(SCORE_CHUNK).zip(ips.chunks(SCORE_CHUNK)) {
            match (&self.first_bias, self.rest.is_empty()) {
                // One layer: each task gathers a few pairs' folded rows into
                // a buffer that stays in cache, then adds the bias, applies
                // the ReLU and takes the dot product in one pass.
                (Some(bias), true) => out.par_extend(
                    ips.par_chunks(FUSED_PAIRS).zip(rows.par_chunks(FUSED_PAIRS)).flat_map_iter(
                        |(ips, rows)| {
                            let mut z = vec![0.0; ips.len() * dim];
                            self.folded.gather_sum_here(&self.ip_spec.bags(ips), &mut z);
                            z.chunks_exact(dim)
                                .zip(rows)
                                .map(|(z, &r)| relu_dot(self.entity_table.row(r), z, bias))
                                .collect::<Vec<f32>>()
                        },
                    ),
                ),
                // No layers, or more than one: the IP vectors, then the dot.
                _ => out.par_extend(
                    self.ip_vectors(ips)?
                        .par_chunks(dim)
                        .zip(rows.par_iter())
                        .map(|(h, &r)| dot(self.entity_table.row(r), h)),
                ),
            }
        }
        Ok(out)
    }

    /// The layers after the first on `[n, dim]` first-layer outputs.
    fn run_rest(&self, h: Vec<f32>, n: usize) -> Result<Vec<f32>> {
        let mut h = Tensor::from_vec(h, (n, self.dim()), &Device::Cpu)?.to_device(&self.device)?;
        for layer in &self.rest {
            h = layer.forward(&h)?;
        }
        Ok(h.flatten_all()?.to_vec1()?)
    }

    /// The entity and IP vectors of aligned `(entity row, address)` pairs,
    /// each `[n, dim]` on the host; a pair's [`score`](Self::score) is their
    /// [`dot`].
    pub fn embeddings(&self, entity_rows: &[u32], ips: &[u32]) -> Result<(Vec<f32>, Vec<f32>)> {
        let h = self.ip_vectors(ips)?;
        let mut e = vec![0.0; entity_rows.len() * self.dim()];
        self.entity_table.gather(entity_rows, &mut e);
        Ok((e, h))
    }

    /// The IP vectors of `ips`, `[n, dim]` on the host.
    fn ip_vectors(&self, ips: &[u32]) -> Result<Vec<f32>> {
        let mut h = self.first_layer_input(ips);
        self.activate_first(&mut h);
        if !self.rest.is_empty() {
            h = self.run_rest(h, ips.len())?;
        }
        Ok(h)
    }
}

/// `table · Wᵀ` in place, for `weight` = W (`[out, in]`, on the host):
/// each row becomes its product with W. A table over a model file's buffer
/// is changed in that buffer when nothing else borrows it, so the fold
/// needs no memory of its own (candle's matmul would want a copy of the
/// table and another for its output: hundreds of MB freshly faulted in).
fn fold(mut table: Table, weight: &[f32]) -> Table {
    let dim = table.dim;
    // Wᵀ: row `i` holds input `i`'s weight to every output, so each step
    // below adds a multiple of one contiguous row, which vectorises.
    let wt: Vec<f32> = (0..dim * dim).map(|k| weight[(k % dim) * dim + k / dim]).collect();
    let arch = pulp::Arch::new();
    table
        .data_mut()
        .par_chunks_mut(dim * FOLD_ROWS)
        .for_each(|rows| arch.dispatch(FoldRows { rows, wt: &wt, dim }));
    table
}

/// Rows multiplied by W in place ([`fold`]'s kernel), compiled by
/// [`pulp`] for the widest vectors the CPU has (AVX2 and FMA where there
/// are), not only for the x86-64 baseline the build targets.
struct FoldRows<'a> {
    rows: &'a mut [f32],
    /// Wᵀ, `[in, out]`.
    wt: &'a [f32],
    dim: usize,
}

impl pulp::WithSimd for FoldRows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let FoldRows { rows, wt, dim } = self;
        let mut out = vec![0.0f32; dim];
        for row in rows.chunks_exact_mut(dim) {
            out.fill(0.0);
            for (&x, w) in row.iter().zip(wt.chunks_exact(dim)) {
                let (out_head, out_tail) = S::as_mut_simd_f32s(&mut out);
                let (w_head, w_tail) = S::as_simd_f32s(w);
                let xs = simd.splat_f32s(x);
                for (o, w) in out_head.iter_mut().zip(w_head) {
                    *o = simd.mul_add_e_f32s(xs, *w, *o);
                }
                for (o, w) in out_tail.iter_mut().zip(w_tail) {
                    *o += x * w;
                }
            }
            row.copy_from_slice(&out);
        }
    }
}

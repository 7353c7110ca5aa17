//! Embedding tables and their row-sparse ("lazy") Adam.
//!
//! The tables can hold hundreds of millions of rows, so a step must cost what
//! the batch touches, never what the table holds: rows are gathered, their
//! gradients summed per row, and Adam updates only those rows, as MXNet's
//! `lazy_update` does in SageMaker's container. Adam's moments are allocated
//! zeroed, so the pages of rows never touched are never even mapped.
//!
//! The kernels are plain Rust over `f32` slices, parallel with rayon. A
//! table is cut into fixed blocks of rows, each block updated by one task,
//! so the work splits without locks and the result does not depend on the
//! number of threads.

use rayon::prelude::*;

/// Rows a parallel task owns when a table is updated.
const BLOCK_ROWS: usize = 4096;

/// A table of `rows` vectors of `dim` floats, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Number of rows.
    pub rows: usize,
    /// Floats per row.
    pub dim: usize,
    /// `rows * dim` floats.
    pub data: Vec<f32>,
}

impl Table {
    /// A table from its floats.
    pub fn new(rows: usize, dim: usize, data: Vec<f32>) -> Table {
        assert_eq!(data.len(), rows * dim, "table data does not match its shape");
        Table { rows, dim, data }
    }

    /// One row.
    #[inline]
    pub fn row(&self, row: u32) -> &[f32] {
        let start = row as usize * self.dim;
        &self.data[start..start + self.dim]
    }

    /// `out[i] = self[rows[i]]`, `out` being `rows.len() * dim` floats.
    pub fn gather(&self, rows: &[u32], out: &mut [f32]) {
        let dim = self.dim;
        out.par_chunks_mut(dim * 256).zip(rows.par_chunks(256)).for_each(|(out, rows)| {
            for (o, &r) in out.chunks_exact_mut(dim).zip(rows) {
                o.copy_from_slice(self.row(r));
            }
        });
    }

    /// `out[i] = Σ_k self[rows[i][k]]`: the summed rows of each bag.
    pub fn gather_sum<const K: usize>(&self, rows: &[[u32; K]], out: &mut [f32]) {
        let dim = self.dim;
        out.par_chunks_mut(dim * 256).zip(rows.par_chunks(256)).for_each(|(out, rows)| {
            for (o, bag) in out.chunks_exact_mut(dim).zip(rows) {
                o.copy_from_slice(self.row(bag[0]));
                for &r in &bag[1..] {
                    for (o, w) in o.iter_mut().zip(self.row(r)) {
                        *o += w;
                    }
                }
            }
        });
    }
}

/// Adam's settings for one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamStep {
    /// Learning rate.
    pub lr: f32,
    /// First-moment decay.
    pub beta1: f32,
    /// Second-moment decay.
    pub beta2: f32,
    /// Added to the root of the second moment.
    pub eps: f32,
    /// L2 decay, added to the gradient as `wd * w`.
    pub weight_decay: f32,
    /// The step number, from 1, for bias correction.
    pub t: u64,
}

impl AdamStep {
    /// The bias-corrected step size `lr * sqrt(1 - β2^t) / (1 - β1^t)`.
    pub fn lr_t(&self) -> f32 {
        let t = self.t as f64;
        let (b1, b2) = (f64::from(self.beta1), f64::from(self.beta2));
        (f64::from(self.lr) * (1.0 - b2.powf(t)).sqrt() / (1.0 - b1.powf(t))) as f32
    }

    /// One Adam update of `w`, with moments `m` and `v`, by gradient `g`
    /// (weight decay not yet added).
    #[inline]
    pub fn update(&self, lr_t: f32, w: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
        let (b1, b2, wd, eps) = (self.beta1, self.beta2, self.weight_decay, self.eps);
        for (((w, m), v), g) in w.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g) {
            let g = g + wd * *w;
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            *w -= lr_t * *m / (v.sqrt() + eps);
        }
    }
}

/// Adam's moments for one table. A row's first and second moments sit
/// side by side (`[m | v]`, `2 * dim` floats), so an update touches two
/// places in memory per row, not three.
#[derive(Debug, Clone)]
pub struct SparseAdam {
    mv: Vec<f32>,
    dim: usize,
    /// Row references of the last step, reused between steps.
    refs: Vec<(u32, u32)>,
}

impl SparseAdam {
    /// Zeroed moments for `table`.
    pub fn new(table: &Table) -> SparseAdam {
        SparseAdam { mv: vec![0.0; 2 * table.data.len()], dim: table.dim, refs: Vec::new() }
    }

    /// Applies one step to the rows `rows` name: `grads` holds one
    /// gradient row per reference (`rows.len() / K` bags of `K` rows, the
    /// gradient of bag `i` being `grads[i]`, shared by its `K` rows).
    /// Gradients of a row referenced more than once are summed first, in
    /// reference order, so the result is the same on any number of threads.
    pub fn step<const K: usize>(
        &mut self,
        table: &mut Table,
        rows: &[[u32; K]],
        grads: &[f32],
        adam: &AdamStep,
    ) {
        let dim = self.dim;
        assert_eq!(grads.len(), rows.len() * dim);
        self.refs.clear();
        self.refs.extend(
            rows.iter().enumerate().flat_map(|(i, bag)| bag.iter().map(move |&r| (r, i as u32))),
        );
        self.refs.par_sort_unstable();
        let refs = &self.refs;
        let lr_t = adam.lr_t();
        let block = BLOCK_ROWS * dim;
        table
            .data
            .par_chunks_mut(block)
            .zip(self.mv.par_chunks_mut(2 * block))
            .enumerate()
            .for_each(|(b, (w, mv))| {
                let first = (b * BLOCK_ROWS) as u32;
                let last = first.saturating_add(BLOCK_ROWS as u32);
                let start = refs.partition_point(|&(r, _)| r < first);
                let end = refs.partition_point(|&(r, _)| r < last);
                if start == end {
                    return;
                }
                let mut g = vec![0.0f32; dim];
                let mut k = start;
                while k < end {
                    let row = refs[k].0;
                    g.fill(0.0);
                    while k < end && refs[k].0 == row {
                        let src = refs[k].1 as usize * dim;
                        for (g, x) in g.iter_mut().zip(&grads[src..src + dim]) {
                            *g += x;
                        }
                        k += 1;
                    }
                    let at = (row - first) as usize * dim;
                    let (m, v) = mv[2 * at..2 * at + 2 * dim].split_at_mut(dim);
                    adam.update(lr_t, &mut w[at..at + dim], m, v, &g);
                }
            });
    }

    /// The reference update: a dense gradient over the whole table, with
    /// Adam applied only to rows whose gradient is not all zero. For tests.
    pub fn step_dense(&mut self, table: &mut Table, dense_grad: &[f32], adam: &AdamStep) {
        let lr_t = adam.lr_t();
        let dim = self.dim;
        for ((w, mv), g) in table
            .data
            .chunks_exact_mut(dim)
            .zip(self.mv.chunks_exact_mut(2 * dim))
            .zip(dense_grad.chunks_exact(dim))
        {
            if g.iter().any(|&x| x != 0.0) {
                let (m, v) = mv.split_at_mut(dim);
                adam.update(lr_t, w, m, v, g);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adam(t: u64) -> AdamStep {
        AdamStep { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 1e-3, t }
    }

    fn table(rows: usize, dim: usize) -> Table {
        Table::new(
            rows,
            dim,
            (0..rows * dim).map(|i| ((i * 7919) % 101) as f32 / 100.0 - 0.5).collect(),
        )
    }

    #[test]
    fn gather_sum_adds_the_rows_of_each_bag() {
        let t = table(10, 3);
        let mut out = vec![0.0; 6];
        t.gather_sum(&[[1u32, 2], [9, 9]], &mut out);
        for d in 0..3 {
            assert_eq!(out[d], t.row(1)[d] + t.row(2)[d]);
            assert_eq!(out[3 + d], 2.0 * t.row(9)[d]);
        }
    }

    #[test]
    fn sparse_step_equals_the_dense_step_on_touched_rows() {
        // Rows across several blocks, repeated within and across bags.
        let (rows, dim) = (3 * BLOCK_ROWS + 17, 4);
        let bags: Vec<[u32; 2]> =
            vec![[5, 9000], [5, 5], [12_300, 0], [9000, 4095], [4096, 12_300]];
        let grads: Vec<f32> = (0..bags.len() * dim).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut dense = vec![0.0f32; rows * dim];
        for (i, bag) in bags.iter().enumerate() {
            for &r in bag {
                for d in 0..dim {
                    dense[r as usize * dim + d] += grads[i * dim + d];
                }
            }
        }
        let (mut a, mut b) = (table(rows, dim), table(rows, dim));
        let (mut sa, mut sb) = (SparseAdam::new(&a), SparseAdam::new(&b));
        for t in 1..=3 {
            sa.step(&mut a, &bags, &grads, &adam(t));
            sb.step_dense(&mut b, &dense, &adam(t));
        }
        assert_eq!(a, b);
        assert_ne!(a, table(rows, dim), "the step changed nothing");
        // Untouched rows keep their value (lazy: no decay either).
        assert_eq!(a.row(1), table(rows, dim).row(1));
    }
}

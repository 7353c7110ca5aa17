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

use bytes::{Bytes, BytesMut};
use rayon::prelude::*;

/// Rows a parallel task owns when a table is updated.
const BLOCK_ROWS: usize = 4096;

/// Bags [`Table::gather_sum`] sums in one pass.
const GATHER_GROUP: usize = 4;

/// Column `c` of a bag's rows, summed in bag order.
#[inline(always)]
fn sum_column<const K: usize>(bag: &[&[f32]; K], c: usize) -> f32 {
    let mut s = bag[0][c];
    for row in &bag[1..] {
        s += row[c];
    }
    s
}

/// A table of `rows` vectors of `dim` floats, row-major.
#[derive(Debug, Clone)]
pub struct Table {
    /// Number of rows.
    pub rows: usize,
    /// Floats per row.
    pub dim: usize,
    /// `rows * dim` floats.
    data: Floats,
}

/// A table's floats: its own (a model being trained), or a read-only view of
/// the buffer a model file was loaded into, so that loading a model for
/// scoring copies no table (they can be hundreds of MB).
#[derive(Debug, Clone)]
enum Floats {
    Owned(Vec<f32>),
    /// Native-endian `f32`s, aligned to 4 bytes (checked when made).
    Shared(Bytes),
    /// A `Shared` buffer that nothing else borrowed any more, taken back
    /// to change in place (still aligned: it is the same memory).
    Unique(BytesMut),
}

impl PartialEq for Table {
    fn eq(&self, other: &Table) -> bool {
        self.rows == other.rows && self.dim == other.dim && self.data() == other.data()
    }
}

impl Table {
    /// A table from its floats.
    pub fn new(rows: usize, dim: usize, data: Vec<f32>) -> Table {
        assert_eq!(data.len(), rows * dim, "table data does not match its shape");
        Table { rows, dim, data: Floats::Owned(data) }
    }

    /// A table over little-endian `f32` bytes (a safetensors tensor), without
    /// a copy where the bytes are aligned and the host is little-endian.
    pub fn from_le_bytes(rows: usize, dim: usize, bytes: Bytes) -> Table {
        assert_eq!(bytes.len(), rows * dim * 4, "table bytes do not match its shape");
        let data = if cfg!(target_endian = "little")
            && bytemuck::try_cast_slice::<u8, f32>(&bytes).is_ok()
        {
            Floats::Shared(bytes)
        } else {
            Floats::Owned(
                bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            )
        };
        Table { rows, dim, data }
    }

    /// All `rows * dim` floats.
    #[inline]
    pub fn data(&self) -> &[f32] {
        match &self.data {
            Floats::Owned(data) => data,
            Floats::Shared(bytes) => bytemuck::cast_slice(bytes),
            Floats::Unique(bytes) => bytemuck::cast_slice(bytes),
        }
    }

    /// This table with floats of its own: a table over a model file's
    /// buffer is copied, so that the buffer can be freed (or taken back by
    /// another table, see [`data_mut`](Self::data_mut)) once no other table
    /// borrows it.
    pub fn into_owned(self) -> Table {
        match self.data {
            Floats::Shared(bytes) => {
                Table::new(self.rows, self.dim, bytemuck::cast_slice(&bytes).to_vec())
            }
            data => Table { data, ..self },
        }
    }

    /// All `rows * dim` floats, to change. A table loaded from a model file
    /// changes the file's buffer in place when no other table borrows it,
    /// and is copied into its own memory otherwise.
    pub fn data_mut(&mut self) -> &mut [f32] {
        if let Floats::Shared(bytes) = &mut self.data {
            self.data = match std::mem::take(bytes).try_into_mut() {
                // The same memory, so as aligned as when it was shared.
                Ok(unique) if bytemuck::try_cast_slice::<u8, f32>(&unique).is_ok() => {
                    Floats::Unique(unique)
                }
                Ok(unique) => Floats::Owned(bytemuck::pod_collect_to_vec(&unique)),
                Err(shared) => Floats::Owned(bytemuck::cast_slice(&shared).to_vec()),
            };
        }
        match &mut self.data {
            Floats::Owned(data) => data,
            Floats::Unique(bytes) => bytemuck::cast_slice_mut(bytes),
            Floats::Shared(_) => unreachable!("made owned or unique above"),
        }
    }

    /// One row.
    #[inline]
    pub fn row(&self, row: u32) -> &[f32] {
        let start = row as usize * self.dim;
        &self.data()[start..start + self.dim]
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

    /// `out[i] = Σ_k self[rows[i][k]]`: the summed rows of each bag, added
    /// in bag order (`((r0 + r1) + r2) + …`).
    ///
    /// Rows are scattered over a table far larger than the caches, so the
    /// time goes to waiting for memory. Summing `GATHER_GROUP` bags in one
    /// pass over the columns puts all their rows' loads in flight at once:
    /// about twice as fast as one bag at a time on a 100 MB table.
    pub fn gather_sum<const K: usize>(&self, rows: &[[u32; K]], out: &mut [f32]) {
        out.par_chunks_mut(self.dim * 256)
            .zip(rows.par_chunks(256))
            .for_each(|(out, rows)| self.gather_sum_here(rows, out));
    }

    /// [`gather_sum`](Self::gather_sum) on this thread, for callers that
    /// split the work themselves.
    pub fn gather_sum_here<const K: usize>(&self, rows: &[[u32; K]], out: &mut [f32]) {
        let dim = self.dim;
        let mut outs = out.chunks_exact_mut(dim);
        let mut groups = rows.chunks_exact(GATHER_GROUP);
        for group in &mut groups {
            let mut o: [&mut [f32]; GATHER_GROUP] =
                std::array::from_fn(|_| outs.next().expect("a row of out per bag"));
            let bags: [[&[f32]; K]; GATHER_GROUP] =
                std::array::from_fn(|j| group[j].map(|r| self.row(r)));
            for c in 0..dim {
                for (o, bag) in o.iter_mut().zip(&bags) {
                    o[c] = sum_column(bag, c);
                }
            }
        }
        for (o, bag) in outs.zip(groups.remainder()) {
            let bag = bag.map(|r| self.row(r));
            for (c, o) in o.iter_mut().enumerate() {
                *o = sum_column(&bag, c);
            }
        }
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
        SparseAdam { mv: vec![0.0; 2 * table.data().len()], dim: table.dim, refs: Vec::new() }
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
            .data_mut()
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
            .data_mut()
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
    fn tables_over_bytes_read_aligned_and_unaligned_bytes_alike() {
        let t = table(5, 3);
        let le: Vec<u8> = t.data().iter().flat_map(|x| x.to_le_bytes()).collect();
        // The same floats one byte in, so at most one of the two is aligned.
        let mut shifted = vec![0u8];
        shifted.extend_from_slice(&le);
        let shifted = Bytes::from(shifted);
        for bytes in [Bytes::from(le.clone()), shifted.slice(1..)] {
            let mut u = Table::from_le_bytes(5, 3, bytes);
            assert_eq!(u, t);
            // Changing a shared table changes its own copy, not the bytes.
            u.data_mut()[4] += 1.0;
            assert_eq!(u.row(1)[1], t.row(1)[1] + 1.0);
        }
        assert_eq!(&shifted[1..], &le[..], "the bytes were written to");
    }

    #[test]
    fn a_table_takes_back_a_buffer_nothing_else_borrows() {
        // Two tables over one buffer, as a loaded model's are.
        let t = table(4, 2);
        let le: Vec<u8> = t.data().iter().chain(t.data()).flat_map(|x| x.to_le_bytes()).collect();
        let buffer = Bytes::from(le);
        let (half, start) = (buffer.len() / 2, buffer.as_ptr());
        let first = Table::from_le_bytes(4, 2, buffer.slice(..half));
        let mut second = Table::from_le_bytes(4, 2, buffer.slice(half..));
        drop(buffer);
        // While `first` borrows the buffer, `into_owned` copies it ...
        let first = first.into_owned();
        assert_ne!(first.data().as_ptr().cast::<u8>(), start);
        assert_eq!(first, t);
        // ... and then `second` changes the buffer in place.
        second.data_mut()[0] = 7.0;
        assert_eq!(second.data().as_ptr().cast::<u8>(), start.wrapping_add(half));
        assert_eq!((second.row(0)[0], first.row(0)[0]), (7.0, t.row(0)[0]));
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
    fn gather_sum_in_groups_adds_in_bag_order() {
        // More bags than a group and a task, and a remainder: every bag is
        // the rows added left to right, bit for bit.
        let t = table(50, 5);
        let bags: Vec<[u32; 3]> =
            (0..601u32).map(|i| [i % 50, (i * 7 + 3) % 50, (i * 13 + 1) % 50]).collect();
        let mut out = vec![0.0; bags.len() * 5];
        t.gather_sum(&bags, &mut out);
        for (i, bag) in bags.iter().enumerate() {
            for d in 0..5 {
                let want = t.row(bag[0])[d] + t.row(bag[1])[d] + t.row(bag[2])[d];
                assert_eq!(out[i * 5 + d].to_bits(), want.to_bits(), "bag {i}, column {d}");
            }
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

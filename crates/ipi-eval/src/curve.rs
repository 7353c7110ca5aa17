//! Detection at a threshold, ROC curves, thresholds for targets, and
//! percentiles, over `anomaly_score` (= −dot_product: higher is stranger).
//!
//! An event is flagged when its anomaly score is strictly above the
//! threshold, as `ipi-pipeline score --threshold T` flags it. Attacks are the
//! positive class. The AUC itself is ipi-model's ([`ipi_model::metrics::auc`]).

use serde::{Deserialize, Serialize};

/// Normal and attack anomaly scores, each sorted ascending (NaN dropped).
#[derive(Debug, Clone, Default)]
pub struct Scored {
    normal: Vec<f32>,
    attack: Vec<f32>,
}

/// What a threshold does to a case.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Flag when `anomaly_score > threshold`.
    pub threshold: f64,
    /// Attacks flagged.
    pub true_positives: u64,
    /// Normal events flagged.
    pub false_positives: u64,
    /// Attacks missed.
    pub false_negatives: u64,
    /// Normal events not flagged.
    pub true_negatives: u64,
    /// Flagged events that are attacks; `None` when nothing is flagged.
    pub precision: Option<f64>,
    /// Attacks flagged, as a share of attacks (the true-positive rate).
    pub recall: f64,
    /// Normal events flagged, as a share of normal events.
    pub fpr: f64,
}

impl Scored {
    /// From anomaly scores; NaN scores are dropped.
    pub fn new(mut normal: Vec<f32>, mut attack: Vec<f32>) -> Scored {
        normal.retain(|x| !x.is_nan());
        attack.retain(|x| !x.is_nan());
        normal.sort_unstable_by(f32::total_cmp);
        attack.sort_unstable_by(f32::total_cmp);
        Scored { normal, attack }
    }

    /// Normal scores, ascending.
    pub fn normal(&self) -> &[f32] {
        &self.normal
    }

    /// Attack scores, ascending.
    pub fn attack(&self) -> &[f32] {
        &self.attack
    }

    /// The probability that an attack scores above a normal event (ties
    /// half); `None` when either side is empty.
    pub fn auc(&self) -> Option<f64> {
        let auc = ipi_model::metrics::auc(&self.attack, &self.normal);
        auc.is_finite().then_some(auc)
    }

    /// Detection at `threshold`.
    pub fn at(&self, threshold: f64) -> Point {
        let fp = above(&self.normal, threshold);
        let tp = above(&self.attack, threshold);
        point(threshold, tp, fp, self.attack.len() as u64, self.normal.len() as u64)
    }

    /// The lowest threshold that flags at most `target` of normal events
    /// (ties at the threshold are not flagged). `None` without normal events.
    pub fn threshold_for_fpr(&self, target: f64) -> Option<f64> {
        let n = self.normal.len();
        if n == 0 {
            return None;
        }
        // At most k normal events may be above it: the (k+1)-th largest.
        let k = (target.clamp(0.0, 1.0) * n as f64).floor() as usize;
        Some(f64::from(self.normal[n - 1 - k.min(n - 1)]))
    }

    /// The highest threshold that flags at least `target` of attacks.
    /// `None` without attacks.
    pub fn threshold_for_recall(&self, target: f64) -> Option<f64> {
        let n = self.attack.len();
        if n == 0 {
            return None;
        }
        // At least m attacks must be above it: just under the m-th largest.
        let m = ((target.clamp(0.0, 1.0) * n as f64).ceil() as usize).clamp(1, n);
        Some(f64::from(self.attack[n - m].next_down()))
    }

    /// The ROC curve as `(fpr, tpr)` from `(0, 0)` to `(1, 1)`, one point per
    /// distinct score, thinned so that consecutive points are at least
    /// `step` apart in fpr + tpr.
    pub fn roc(&self, step: f64) -> Vec<(f64, f64)> {
        let (n, p) = (self.normal.len(), self.attack.len());
        if n == 0 || p == 0 {
            return Vec::new();
        }
        let mut out = vec![(0.0, 0.0)];
        // Walk thresholds from the top: every score is a cut.
        let (mut i, mut j) = (n, p);
        let mut last = (0.0, 0.0);
        while i > 0 || j > 0 {
            let next = match (i, j) {
                (0, _) => self.attack[j - 1],
                (_, 0) => self.normal[i - 1],
                _ => self.normal[i - 1].max(self.attack[j - 1]),
            };
            while i > 0 && self.normal[i - 1] >= next {
                i -= 1;
            }
            while j > 0 && self.attack[j - 1] >= next {
                j -= 1;
            }
            let here = ((n - i) as f64 / n as f64, (p - j) as f64 / p as f64);
            let done = i == 0 && j == 0;
            if done || (here.0 - last.0) + (here.1 - last.1) >= step {
                out.push(here);
                last = here;
            }
        }
        out
    }
}

/// How many of the ascending `sorted` are strictly above `threshold`.
fn above(sorted: &[f32], threshold: f64) -> u64 {
    (sorted.len() - sorted.partition_point(|&x| f64::from(x) <= threshold)) as u64
}

fn point(threshold: f64, tp: u64, fp: u64, positives: u64, negatives: u64) -> Point {
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    Point {
        threshold,
        true_positives: tp,
        false_positives: fp,
        false_negatives: positives - tp,
        true_negatives: negatives - fp,
        precision: (tp + fp > 0).then(|| tp as f64 / (tp + fp) as f64),
        recall: ratio(tp, positives),
        fpr: ratio(fp, negatives),
    }
}

/// The `q`-quantile (0 ≤ q ≤ 1) of ascending `sorted`, linearly
/// interpolated between ranks; `None` when empty.
pub fn quantile(sorted: &[f32], q: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * (n - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    let (a, b) = (f64::from(sorted[lo]), f64::from(sorted[hi.min(n - 1)]));
    Some(a + (b - a) * (rank - lo as f64))
}

/// `count` evenly spaced values from `lo` to `hi` (both included).
pub fn grid(lo: f64, hi: f64, count: usize) -> Vec<f64> {
    match count {
        0 => Vec::new(),
        1 => vec![lo],
        _ => (0..count).map(|i| lo + (hi - lo) * i as f64 / (count - 1) as f64).collect(),
    }
}

/// A histogram of `sorted` over `edges.len() - 1` bins, as densities (the
/// share of values per bin, divided by the bin's width), so that curves of
/// different sizes compare. Values outside the edges are left out.
pub fn density(sorted: &[f32], edges: &[f64]) -> Vec<f64> {
    if sorted.is_empty() || edges.len() < 2 {
        return vec![0.0; edges.len().saturating_sub(1)];
    }
    let total = sorted.len() as f64;
    edges
        .windows(2)
        .map(|w| {
            let lo = sorted.partition_point(|&x| f64::from(x) < w[0]);
            let hi = sorted.partition_point(|&x| f64::from(x) < w[1]);
            let width = (w[1] - w[0]).max(f64::MIN_POSITIVE);
            (hi - lo) as f64 / total / width
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case() -> Scored {
        // Normal anomaly scores 1..=10, attacks 6..=15 (as floats, shuffled).
        let normal = vec![3.0, 1.0, 2.0, 10.0, 5.0, 4.0, 7.0, 6.0, 9.0, 8.0];
        let attack = vec![15.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0];
        Scored::new(normal, attack)
    }

    #[test]
    fn a_threshold_flags_scores_strictly_above_it() {
        let p = case().at(8.0);
        // Normal 9, 10 flagged; attacks 9..=15 flagged.
        assert_eq!((p.true_positives, p.false_positives), (7, 2));
        assert_eq!((p.false_negatives, p.true_negatives), (3, 8));
        assert_eq!(p.precision, Some(7.0 / 9.0));
        assert_eq!((p.recall, p.fpr), (0.7, 0.2));
        let p = case().at(100.0);
        assert_eq!((p.precision, p.recall, p.fpr), (None, 0.0, 0.0));
    }

    #[test]
    fn thresholds_meet_their_targets_and_are_the_tightest() {
        let c = case();
        // FPR 20%: at most 2 of 10 normal events above: threshold 8.
        assert_eq!(c.threshold_for_fpr(0.2), Some(8.0));
        assert_eq!(c.threshold_for_fpr(0.25), Some(8.0));
        assert_eq!(c.threshold_for_fpr(0.0), Some(10.0));
        assert_eq!(c.at(10.0).fpr, 0.0);
        // Recall 70%: at least 7 of 10 attacks above: just under 9.
        let t = c.threshold_for_recall(0.7).unwrap();
        assert!(t < 9.0 && t > 8.99, "{t}");
        assert_eq!(c.at(t).recall, 0.7);
        assert_eq!(c.at(t + 0.02).recall, 0.6);
        assert_eq!(Scored::new(vec![], vec![1.0]).threshold_for_fpr(0.1), None);
        assert_eq!(Scored::new(vec![1.0], vec![]).threshold_for_recall(0.1), None);
    }

    #[test]
    fn roc_runs_from_corner_to_corner_and_its_area_is_the_auc() {
        let c = case();
        let roc = c.roc(0.0);
        assert_eq!(roc.first(), Some(&(0.0, 0.0)));
        assert_eq!(roc.last(), Some(&(1.0, 1.0)));
        // Trapezoids under the unthinned curve give the Mann–Whitney AUC.
        let area: f64 = roc.windows(2).map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0).sum();
        let auc = c.auc().unwrap();
        assert!((area - auc).abs() < 1e-12, "{area} vs {auc}");
        // Attacks 6..=10 beat 5..=9 normal events and tie one; 11..=15 beat all ten.
        assert!((auc - 0.875).abs() < 1e-12, "{auc}");
        assert!(c.roc(0.5).len() < roc.len());
        assert_eq!(c.roc(0.5).last(), Some(&(1.0, 1.0)));
    }

    #[test]
    fn quantiles_interpolate_and_densities_integrate_to_the_share_inside() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&v, 0.5), Some(2.5));
        assert_eq!(quantile(&v, 1.0), Some(4.0));
        assert_eq!(quantile(&[], 0.5), None);
        let edges = grid(0.0, 4.0, 5); // bins of width 1
        assert_eq!(edges, [0.0, 1.0, 2.0, 3.0, 4.0]);
        let d = density(&v, &edges);
        // 4.0 sits on the last edge: outside [3, 4).
        assert_eq!(d, [0.0, 0.25, 0.25, 0.25]);
    }
}

//! Ranking metrics.

/// The area under the ROC curve of scores where `positive` should rank
/// above `negative`: the probability that a random positive outscores a
/// random negative, ties counting one half (Mann–Whitney U). `NaN` when
/// either side is empty.
pub fn auc(positive: &[f32], negative: &[f32]) -> f64 {
    if positive.is_empty() || negative.is_empty() {
        return f64::NAN;
    }
    let mut all: Vec<(f32, bool)> =
        positive.iter().map(|&s| (s, true)).chain(negative.iter().map(|&s| (s, false))).collect();
    all.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    // Sum of the positives' ranks (1-based, ties averaged).
    let mut rank_sum = 0.0f64;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        let mean_rank = (i + 1 + j) as f64 / 2.0;
        let positives = all[i..j].iter().filter(|x| x.1).count();
        rank_sum += mean_rank * positives as f64;
        i = j;
    }
    let (p, n) = (positive.len() as f64, negative.len() as f64);
    (rank_sum - p * (p + 1.0) / 2.0) / (p * n)
}

/// The SageMaker notebook's test: test pairs of entities seen in training
/// ("normal") against as many pairs of a random training entity with a
/// uniformly random address ("attack"). The AUC that normal pairs score
/// above attacks; `None` when no test entity was seen in training.
pub fn random_ip_test_auc(
    model: &crate::Model,
    train: &crate::data::Pairs,
    test: &crate::data::Pairs,
    seed: u64,
) -> crate::Result<Option<f64>> {
    Ok(random_ip_case(model, train, test, None, seed)?.map(|c| auc(&c.normal, &c.attack)))
}

/// The scores of the notebook's test case ([`random_ip_test_auc`]).
#[derive(Debug, Clone, Default)]
pub struct RandomIpCase {
    /// The index in `test` of each normal pair.
    pub normal_index: Vec<usize>,
    /// The normal pairs' scores (`dot_product`).
    pub normal: Vec<f32>,
    /// The attack pairs' entity rows: training entities drawn in
    /// proportion to their training pairs.
    pub attack_rows: Vec<u32>,
    /// The attack pairs' addresses, uniformly random.
    pub attack_ips: Vec<u32>,
    /// The attack pairs' scores, as many as there are normal pairs.
    pub attack: Vec<f32>,
}

/// The notebook's test case: every test pair whose entity was seen in
/// training (and, when `keep` is given, whose `keep` entry is true: e.g.
/// not a labelled attack) is normal; as many attack pairs are made of a
/// random training entity and a uniformly random address. `None` when no
/// test pair qualifies or `train` is empty.
pub fn random_ip_case(
    model: &crate::Model,
    train: &crate::data::Pairs,
    test: &crate::data::Pairs,
    keep: Option<&[bool]>,
    seed: u64,
) -> crate::Result<Option<RandomIpCase>> {
    use rand::{Rng, RngExt};
    let seen: std::collections::HashSet<u32> = train.entity_rows.iter().copied().collect();
    let (mut index, mut rows, mut ips) = (Vec::new(), Vec::new(), Vec::new());
    for (i, (&row, &ip)) in test.entity_rows.iter().zip(&test.ips).enumerate() {
        let kept = keep.is_none_or(|k| k.get(i).copied().unwrap_or(false));
        if kept && seen.contains(&row) {
            index.push(i);
            rows.push(row);
            ips.push(ip);
        }
    }
    if rows.is_empty() || train.is_empty() {
        return Ok(None);
    }
    let mut rng = crate::train::seeded(seed, 12);
    let attack_rows: Vec<u32> =
        (0..rows.len()).map(|_| train.entity_rows[rng.random_range(0..train.len())]).collect();
    let attack_ips: Vec<u32> = (0..rows.len()).map(|_| rng.next_u32()).collect();
    let normal = model.score(&rows, &ips)?;
    let attack = model.score(&attack_rows, &attack_ips)?;
    Ok(Some(RandomIpCase { normal_index: index, normal, attack_rows, attack_ips, attack }))
}

#[cfg(test)]
mod tests {
    use super::auc;

    #[test]
    fn auc_counts_ordered_pairs_and_half_ties() {
        assert_eq!(auc(&[3.0, 4.0], &[1.0, 2.0]), 1.0);
        assert_eq!(auc(&[1.0, 2.0], &[3.0, 4.0]), 0.0);
        // Pairs: (2>1) yes, (2>3) no, (5>1) yes, (5>3) yes → 3/4.
        assert_eq!(auc(&[2.0, 5.0], &[1.0, 3.0]), 0.75);
        assert_eq!(auc(&[1.0], &[1.0]), 0.5);
        assert!(auc(&[], &[1.0]).is_nan());
    }
}

//! Step order and dependency cycles.
//!
//! Steps are numbered in file order; `deps[i]` lists the steps that step
//! `i` depends on.

/// A stable topological order: among the steps whose dependencies are all
/// placed, the first in file order goes next. Steps that can never be
/// placed (on or behind a cycle) are left out.
pub(crate) fn order(deps: &[Vec<usize>]) -> Vec<usize> {
    let n = deps.len();
    let mut placed = vec![false; n];
    let mut order = Vec::with_capacity(n);
    while let Some(next) =
        (0..n).find(|&i| !placed[i] && deps[i].iter().all(|&d| placed.get(d) == Some(&true)))
    {
        placed[next] = true;
        order.push(next);
    }
    order
}

/// One cycle per strongly connected component that has one, each the
/// shortest cycle through the component's first step in file order, as
/// `[a, b, c]` meaning a depends on b, b on c, and c on a.
pub(crate) fn cycles(deps: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = deps.len();
    let mut reverse = vec![Vec::new(); n];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            if let Some(r) = reverse.get_mut(d) {
                r.push(i);
            }
        }
    }
    let mut handled = vec![false; n];
    let mut out = Vec::new();
    for start in 0..n {
        if handled[start] {
            continue;
        }
        let Some(cycle) = shortest_cycle(start, deps) else {
            continue;
        };
        let fwd = reachable(start, deps);
        let back = reachable(start, &reverse);
        for i in 0..n {
            if fwd[i] && back[i] {
                handled[i] = true;
            }
        }
        out.push(cycle);
    }
    out
}

fn reachable(start: usize, edges: &[Vec<usize>]) -> Vec<bool> {
    let mut seen = vec![false; edges.len()];
    let mut stack = vec![start];
    seen[start] = true;
    while let Some(v) = stack.pop() {
        for &w in edges.get(v).into_iter().flatten() {
            if w < seen.len() && !seen[w] {
                seen[w] = true;
                stack.push(w);
            }
        }
    }
    seen
}

/// Breadth-first search for the shortest path from `start` back to itself.
fn shortest_cycle(start: usize, deps: &[Vec<usize>]) -> Option<Vec<usize>> {
    let n = deps.len();
    let mut parent: Vec<Option<usize>> = vec![None; n];
    let mut seen = vec![false; n];
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for &w in &deps[v] {
            if w == start {
                let mut cycle = vec![v];
                let mut at = v;
                while let Some(p) = parent[at] {
                    cycle.push(p);
                    at = p;
                }
                cycle.reverse();
                return Some(cycle);
            }
            if w < n && !seen[w] {
                seen[w] = true;
                parent[w] = Some(v);
                queue.push_back(w);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_order() {
        // 0 needs 2, 1 needs nothing, 2 needs 1, 3 needs nothing.
        let deps = vec![vec![2], vec![], vec![1], vec![]];
        assert_eq!(order(&deps), vec![1, 2, 0, 3]);
        assert!(cycles(&deps).is_empty());
    }

    #[test]
    fn finds_each_cycle_once() {
        // 0 <-> 1, 2 depends on the cycle, 3 -> 4 -> 5 -> 3, 6 alone.
        let deps = vec![vec![1], vec![0], vec![0], vec![4], vec![5], vec![3], vec![]];
        assert_eq!(order(&deps), vec![6]);
        assert_eq!(cycles(&deps), vec![vec![0, 1], vec![3, 4, 5]]);
    }

    #[test]
    fn shortest_cycle_through_first_step() {
        // 0 -> 1 -> 2 -> 0 and 0 -> 2.
        let deps = vec![vec![1, 2], vec![2], vec![0]];
        assert_eq!(cycles(&deps), vec![vec![0, 2]]);
    }
}

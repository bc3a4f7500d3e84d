//! Exchangeability blocks: which rearrangements of subjects a permutation test may use, as
//! PALM defines them (Winkler et al. 2014, 2015).
//!
//! Subjects in families (twins, siblings) are not exchangeable with everyone: under the null
//! their outcomes still covary within a family, and free permutation breaks that covariance and
//! inflates false positives. With blocks (e.g. `family_id`):
//! - `within`: subjects are shuffled only inside their own block (blocks may differ in size);
//!   sign flips stay per subject.
//! - `whole`: blocks are exchanged as units, keeping the order of subjects inside them (all
//!   blocks must have the same size); sign flips flip a whole block at once.
//!
//! A permutation `p` is used as "row `i` takes the value of row `p[i]`"; both rules give a
//! permutation whose inverse follows the same rule, so callers that scatter instead of gather
//! stay valid. [`Exchange::Free`] draws exactly what [`Rng::permutation`] draws, so a study
//! without blocks keeps its permutations (and its p-values) bit for bit.

use super::rng::Rng;

/// How blocks are permuted.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum BlockPermutation {
    /// Shuffle subjects only inside their block.
    #[default]
    Within,
    /// Exchange whole blocks (of equal size) as units.
    Whole,
}

impl BlockPermutation {
    pub fn is_default(&self) -> bool {
        *self == BlockPermutation::default()
    }
}

/// The permutations a test may draw.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Exchange {
    /// Every subject exchangeable with every other.
    #[default]
    Free,
    /// Rows of each block (in row order); blocks in order of first appearance.
    Within(Vec<Vec<u32>>),
    /// As `Within`, every block the same size.
    Whole(Vec<Vec<u32>>),
}

impl Exchange {
    /// Blocks from one label per subject (`None`: missing). Errors name the subject with a
    /// missing label, or the blocks whose sizes differ under `whole`.
    pub fn from_labels(labels: &[Option<String>], ids: &[&str], mode: BlockPermutation) -> Result<Exchange, String> {
        let mut order: Vec<&str> = Vec::new();
        let mut members: Vec<Vec<u32>> = Vec::new();
        let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for (row, label) in labels.iter().enumerate() {
            let Some(label) = label.as_deref() else {
                return Err(format!(
                    "subject {} has no block label; every subject of a blocked permutation test needs one \
                     (give singletons their own label)",
                    ids[row]
                ));
            };
            let b = *index.entry(label).or_insert_with(|| {
                order.push(label);
                members.push(Vec::new());
                order.len() - 1
            });
            members[b].push(row as u32);
        }
        match mode {
            BlockPermutation::Within => Ok(Exchange::Within(members)),
            BlockPermutation::Whole => {
                let size = members.first().map_or(0, Vec::len);
                if let Some(b) = members.iter().position(|m| m.len() != size) {
                    return Err(format!(
                        "`whole` block permutation needs blocks of equal size, but block `{}` has {} subjects and \
                         block `{}` has {}; use `within`, or make the blocks equal",
                        order[0],
                        size,
                        order[b],
                        members[b].len()
                    ));
                }
                if members.len() < 2 {
                    return Err("`whole` block permutation needs at least 2 blocks".into());
                }
                Ok(Exchange::Whole(members))
            }
        }
    }

    /// One random permutation of `0..n` allowed by the blocks.
    pub fn permutation(&self, rng: &mut Rng, n: usize) -> Vec<u32> {
        match self {
            Exchange::Free => rng.permutation(n),
            Exchange::Within(blocks) => {
                let mut p: Vec<u32> = (0..n as u32).collect();
                for block in blocks {
                    let order = rng.permutation(block.len());
                    for (j, &row) in block.iter().enumerate() {
                        p[row as usize] = block[order[j] as usize];
                    }
                }
                p
            }
            Exchange::Whole(blocks) => {
                let mut p: Vec<u32> = (0..n as u32).collect();
                let order = rng.permutation(blocks.len());
                for (b, block) in blocks.iter().enumerate() {
                    let source = &blocks[order[b] as usize];
                    for (j, &row) in block.iter().enumerate() {
                        p[row as usize] = source[j];
                    }
                }
                p
            }
        }
    }

    /// Under `whole`, one random sign per block, spread to its subjects (`true` = flip);
    /// otherwise `None` (signs are drawn per subject).
    pub fn block_flips(&self, rng: &mut Rng, n: usize) -> Option<Vec<bool>> {
        let Exchange::Whole(blocks) = self else { return None };
        let mut flips = vec![false; n];
        for chunk in blocks.chunks(64) {
            let bits = rng.next_u64();
            for (i, block) in chunk.iter().enumerate() {
                for &row in block {
                    flips[row as usize] = (bits >> i) & 1 == 1;
                }
            }
        }
        Some(flips)
    }

    /// The block of each row (`None` for `Free`).
    pub fn blocks(&self) -> Option<&[Vec<u32>]> {
        match self {
            Exchange::Free => None,
            Exchange::Within(b) | Exchange::Whole(b) => Some(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(list: &[&str]) -> Vec<Option<String>> {
        list.iter().map(|s| Some(s.to_string())).collect()
    }

    #[test]
    fn free_draws_what_the_generator_draws() {
        let a = Exchange::Free.permutation(&mut Rng::new(3), 50);
        assert_eq!(a, Rng::new(3).permutation(50));
    }

    #[test]
    fn within_keeps_every_subject_in_its_block() {
        let l = labels(&["a", "b", "a", "c", "b", "a", "c", "c", "c"]);
        let ids: Vec<String> = (0..l.len()).map(|i| format!("s{i}")).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let e = Exchange::from_labels(&l, &ids, BlockPermutation::Within).unwrap();
        let mut moved = false;
        for seed in 0..200 {
            let p = e.permutation(&mut Rng::new(seed), l.len());
            let mut sorted = p.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..l.len() as u32).collect::<Vec<_>>());
            for (i, &src) in p.iter().enumerate() {
                assert_eq!(l[i], l[src as usize], "seed {seed}: row {i} took row {src}'s value");
                moved |= src as usize != i;
            }
        }
        assert!(moved);
    }

    #[test]
    fn whole_moves_blocks_as_units_in_order() {
        let l = labels(&["f1", "f2", "f1", "f3", "f2", "f3"]);
        let ids = ["a", "b", "c", "d", "e", "f"];
        let e = Exchange::from_labels(&l, &ids, BlockPermutation::Whole).unwrap();
        let blocks = e.blocks().unwrap().to_vec();
        assert_eq!(blocks, vec![vec![0, 2], vec![1, 4], vec![3, 5]]);
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..100 {
            let p = e.permutation(&mut Rng::new(seed), 6);
            for block in &blocks {
                let source: Vec<u32> = block.iter().map(|&r| p[r as usize]).collect();
                assert!(blocks.contains(&source), "seed {seed}: {block:?} took {source:?}");
            }
            seen.insert(p);
            let flips = e.block_flips(&mut Rng::new(seed), 6).unwrap();
            for block in &blocks {
                assert!(block.iter().all(|&r| flips[r as usize] == flips[block[0] as usize]));
            }
        }
        assert_eq!(seen.len(), 6, "all 3! block orders occur");
    }

    #[test]
    fn bad_blocks_are_named() {
        let e =
            Exchange::from_labels(&labels(&["f1", "f1", "f2"]), &["a", "b", "c"], BlockPermutation::Whole).unwrap_err();
        assert!(e.contains("block `f1` has 2 subjects and block `f2` has 1"), "{e}");
        let mut l = labels(&["f1", "f1"]);
        l[1] = None;
        let e = Exchange::from_labels(&l, &["a", "b"], BlockPermutation::Within).unwrap_err();
        assert!(e.contains("subject b has no block label"), "{e}");
    }
}

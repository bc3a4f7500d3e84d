//! Threshold-free cluster enhancement (Smith & Nichols 2009), as nilearn's `calculate_tfce`
//! computes it, for one statistic map at a time.
//!
//! For a map x (a t map), with m = max|x| when two-sided (max x otherwise) and `steps` = n, the
//! thresholds are h_i = i·(m/n) for i = 1 … n − 1 and h_n = m (numpy's
//! `linspace(0, m, n + 1)[1:]`, reproduced operation for operation). For each sign s (+1, and −1
//! when two-sided) every voxel v with s·x_v ≥ h_i gets e(v, h_i)^E · h_i^H, e being the number of
//! voxels of its connected component of {u: s·x_u ≥ h_i} under the analysis' 6/18/26
//! connectivity. TFCE(v) is the sum over the thresholds, signed (negative-side scores count
//! negative). As nilearn and fslmaths, the sum is not multiplied by the step.
//!
//! One file because the map's pass and the maximum's pass share the levels, the crediting rule
//! and the tests that hold them equal; split, each half would need the other to be read.
//!
//! # Algorithm
//!
//! Not one labelling per level: voxels are added from the highest level down, merging
//! components with union–find (union by size, path compression). A component's size is
//! constant between two events (a voxel joins, two components merge), so its contribution over
//! the levels it spanned with that size is size^E × Σ h_i^H, a difference of prefix sums,
//! credited lazily to its root when it changes. Each node keeps an additive offset such that a
//! voxel's score is the sum of the offsets on its path to the root (a merged root subtracts its
//! new parent's offset, so it does not inherit contributions made before the merge). Cost per
//! map: one bucket sort by level and one union–find pass over the voxels above the first
//! threshold, O(V · neighbours), independent of the number of steps.
//!
//! # The permutations' maximum
//!
//! The FWE null needs only max |TFCE| per permutation ([`Tfce::maximum`]), and that is found
//! without any voxel's score: a voxel's TFCE is at most that of the highest voxel of its
//! component at its own height (the two share every component below, and the higher one also
//! scores above), so the maximum is reached at a voxel that started a component. Each root
//! therefore keeps only `best`, the largest score of the component's starting voxels so far,
//! credited lazily as above; a merge keeps the larger `best`. No offsets, no read-out pass, and
//! records only for starting voxels (a voxel that touches a component joins it). Within a level
//! the order of voxels and unions changes neither the sizes nor the sums, so the pass is free to
//! take shortcuts:
//! - It works on the mask's grid padded by one voxel ([`Lattice`]): a neighbour is a fixed offset
//!   of the voxel's cell, with no bounds to test.
//! - One byte per cell says which cells of the row along x centred on it are added: a voxel's
//!   3 × 3 × 3 block is nine byte loads (a bitmap took two loads and two shifts per row).
//! - Added neighbours that touch each other without the voxel are one component already, so
//!   there is one find per group of them (a flood fill over the block's 27 bits), not one per
//!   neighbour.
//! - The first component to reach 1/64 of the sign's voxels is the giant, and every cell of it
//!   is marked so in the row bytes (components keep a list of their cells, walked once when they
//!   join the giant). A voxel whose added neighbours are all marked joins the giant with no find
//!   and no flood fill: below the percolation height that is most voxels (62% of them in the
//!   bench's null maps).
//!
//! Both signs are sorted into buckets in one pass over the map. The connectivity is a type
//! (`Shape`), so the row loop is unrolled. This replaced a neighbour list (26 × 4 bytes per
//! voxel, which at MNI 2 mm no longer fits in cache). The sums differ from the map's in the last
//! bits only (a different rounding order); max-TFCE p counts ties within 1e-10 relative. The
//! shortcuts leave the permutations' maxima bitwise unchanged (`bench-voxelwise` prints their
//! blake3).

use super::voxelwise::{Connectivity, MaskedGrid, Tail};
use crate::error::Result;

/// TFCE's parameters (defaults as fslmaths and nilearn).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TfceParams {
    /// Extent exponent E.
    pub e: f64,
    /// Height exponent H.
    pub h: f64,
    /// Number of height steps: dh = max|x| / steps.
    pub steps: usize,
}

pub const DEFAULT_E: f64 = 0.5;
pub const DEFAULT_H: f64 = 2.0;
pub const DEFAULT_STEPS: usize = 100;
/// Most height steps the passes hold (a voxel's level is 16-bit).
pub const MAX_STEPS: usize = u16::MAX as usize;

impl Default for TfceParams {
    fn default() -> Self {
        TfceParams { e: DEFAULT_E, h: DEFAULT_H, steps: DEFAULT_STEPS }
    }
}

/// Every voxel's neighbours (both directions), built once per mask.
pub struct Adjacency {
    offsets: Vec<u32>,
    list: Vec<u32>,
}

impl Adjacency {
    pub fn build(mask: &MaskedGrid, connectivity: Connectivity) -> Result<Self> {
        let (offsets, list) = super::voxelwise::neighbour_lists(mask, connectivity, false)?;
        Ok(Adjacency { offsets, list })
    }

    fn of(&self, v: usize) -> &[u32] {
        &self.list[self.offsets[v] as usize..self.offsets[v + 1] as usize]
    }

    fn voxels(&self) -> usize {
        self.offsets.len() - 1
    }
}

/// `parent` of a voxel not (yet) in any component.
const NOT_ADDED: u32 = u32::MAX;

/// One voxel's union–find record, packed so that visiting a neighbour touches one cache line.
#[derive(Clone, Copy)]
struct Node {
    parent: u32,
    /// Component size (valid at roots).
    size: u32,
    /// Roots: levels below this one are not yet credited.
    pending: u32,
    /// Number of levels the voxel reaches.
    level: u32,
    /// Additive score: a voxel's TFCE is the sum of the offsets on its path to the root.
    offset: f64,
}

/// Reusable per-thread buffers (one set per map size).
pub struct Scratch {
    nodes: Vec<Node>,
    /// Each voxel's level, compact (2 bytes: the whole array stays in cache), for the
    /// "already added?" test of neighbours.
    levels: Vec<u16>,
    order: Vec<u32>,
    starts: Vec<u32>,
    score: Vec<f64>,
}

impl Scratch {
    pub fn new(voxels: usize) -> Self {
        Scratch {
            nodes: vec![Node { parent: NOT_ADDED, size: 0, pending: 0, level: 0, offset: 0.0 }; voxels],
            levels: vec![0; voxels],
            order: Vec::with_capacity(voxels),
            starts: Vec::new(),
            score: vec![0.0; voxels],
        }
    }
}

/// numpy's `linspace(0, max, steps + 1)[1:]`: i · (max / steps), the last one exactly max.
fn levels(max: f64, steps: usize) -> Vec<f64> {
    let step = max / steps as f64;
    let mut heights: Vec<f64> = (1..=steps).map(|i| i as f64 * step).collect();
    if let Some(last) = heights.last_mut() {
        *last = max;
    }
    heights
}

/// The largest positive value, the largest negative magnitude (0 unless `two_sided`) and the
/// height steps up to the larger of the two; `None` when nothing is above 0 (TFCE is 0 there).
/// Shared by the exact map and the permutations' maximum, so both use the same heights.
fn tails(x: &[f64], two_sided: bool, steps: usize) -> Option<(f64, f64, Vec<f64>)> {
    // Four lanes and no early exit, so the compiler vectorises the pass (a max is exact in any
    // order); non-finite values (NaN = not analysed) are skipped as before.
    let (mut pos, mut neg) = ([0.0f64; 4], [0.0f64; 4]);
    let mut lanes = x.chunks_exact(4);
    let mut take = |v: f64, j: usize| {
        let finite = v.abs() < f64::INFINITY;
        pos[j] = if finite && v > pos[j] { v } else { pos[j] };
        neg[j] = if finite && -v > neg[j] { -v } else { neg[j] };
    };
    for chunk in lanes.by_ref() {
        for (j, &v) in chunk.iter().enumerate() {
            take(v, j);
        }
    }
    for &v in lanes.remainder() {
        take(v, 0);
    }
    let max_pos = pos.into_iter().fold(0.0f64, f64::max);
    let max_neg = if two_sided { neg.into_iter().fold(0.0f64, f64::max) } else { 0.0 };
    let top = max_pos.max(max_neg);
    (top > 0.0 && steps > 0).then(|| (max_pos, max_neg, levels(top, steps)))
}

/// The signed TFCE map of `x` (NaN = not analysed, never part of a component) into `out`.
/// `two_sided` scores both signs; otherwise only positive values (as nilearn, which zeroes the
/// negative ones). Returns max |TFCE|.
pub fn tfce_map(
    x: &[f64],
    two_sided: bool,
    params: TfceParams,
    adjacency: &Adjacency,
    scratch: &mut Scratch,
    out: &mut [f64],
) -> f64 {
    debug_assert_eq!(x.len(), adjacency.voxels());
    out.iter_mut().for_each(|v| *v = 0.0);
    let Some((max_pos, max_neg, heights)) = tails(x, two_sided, params.steps) else { return 0.0 };
    let mut best = 0.0f64;
    for (sign, max) in [(1.0, max_pos), (-1.0, max_neg)] {
        if max <= 0.0 {
            continue;
        }
        one_sign(x, sign, &heights, params, adjacency, scratch);
        for (o, s) in out.iter_mut().zip(&scratch.score) {
            *o += sign * s;
        }
    }
    for o in out.iter() {
        best = best.max(o.abs());
    }
    best
}

/// The scores of one sign into `scratch.score`.
fn one_sign(x: &[f64], sign: f64, heights: &[f64], params: TfceParams, adjacency: &Adjacency, s: &mut Scratch) {
    let voxels = x.len();
    let k = heights.len();
    // Prefix sums of h^H: the weight of levels [a, b) is prefix[b] − prefix[a].
    let mut prefix = Vec::with_capacity(k + 1);
    prefix.push(0.0);
    for h in heights {
        prefix.push(prefix.last().unwrap() + h.powf(params.h));
    }
    // level: how many thresholds v reaches (h_i ≤ s·x_v); bucket the voxels by it, highest first.
    s.starts.clear();
    s.starts.resize(k + 2, 0);
    for (v, &raw) in x.iter().enumerate() {
        let value = sign * raw;
        let reached = if value.is_finite() { heights.partition_point(|&h| h <= value) } else { 0 } as u32;
        s.nodes[v].level = reached;
        s.levels[v] = reached as u16;
        s.starts[reached as usize] += 1;
        s.score[v] = 0.0;
    }
    let mut at = 0u32;
    for l in (1..=k).rev() {
        let count = s.starts[l];
        s.starts[l] = at;
        at += count;
    }
    s.order.clear();
    s.order.resize(at as usize, 0);
    for v in 0..voxels {
        let l = s.nodes[v].level as usize;
        if l > 0 {
            s.order[s.starts[l] as usize] = v as u32;
            s.starts[l] += 1;
        }
    }
    let extent = |size: u32| if params.e == 0.5 { (size as f64).sqrt() } else { (size as f64).powf(params.e) };
    // Credit a root for the levels from `down_to` up to its pending bound, at its current size.
    let credit = |node: &mut Node, down_to: u32| {
        if node.pending > down_to {
            node.offset += extent(node.size) * (prefix[node.pending as usize] - prefix[down_to as usize]);
            node.pending = down_to;
        }
    };
    let nodes = &mut s.nodes;
    let levels = &s.levels;
    for &v in &s.order {
        let v = v as usize;
        // v is present at level indices 0..level[v]; the levels from `top` up are done.
        let top = nodes[v].level;
        nodes[v] = Node { parent: v as u32, size: 1, pending: top, level: top, offset: 0.0 };
        let mut root = v;
        for &u in adjacency.of(v) {
            let u = u as usize;
            // Added already: a higher level, or the same level and earlier in index order
            // (the counting sort keeps index order within a level).
            let level = levels[u] as u32;
            if level < top || (level == top && u > v) {
                continue;
            }
            let other = find(nodes, u);
            if other == root {
                continue;
            }
            credit(&mut nodes[root], top);
            credit(&mut nodes[other], top);
            let (big, small) = if nodes[other].size >= nodes[root].size { (other, root) } else { (root, other) };
            let big_offset = nodes[big].offset;
            let small_size = nodes[small].size;
            nodes[small].parent = big as u32;
            nodes[small].offset -= big_offset;
            nodes[big].size += small_size;
            nodes[big].pending = top;
            root = big;
        }
    }
    // Credit every root down to level 0, then sum the offsets along each path.
    for &v in &s.order {
        let v = v as usize;
        if nodes[v].parent as usize == v {
            credit(&mut nodes[v], 0);
        }
    }
    for &v in &s.order {
        let v = v as usize;
        find(nodes, v);
        // Path halving leaves v at most a few steps from the root: sum the offsets on the way.
        let (mut sum, mut x) = (0.0, v);
        loop {
            sum += nodes[x].offset;
            let parent = nodes[x].parent as usize;
            if parent == x {
                break;
            }
            x = parent;
        }
        s.score[v] = sum;
    }
    for &v in &s.order {
        nodes[v as usize].parent = NOT_ADDED;
    }
}

/// Root of x, halving the path (each visited node skips to its grandparent, taking over its
/// parent's offset so that every path sum stays the same).
fn find(nodes: &mut [Node], mut x: usize) -> usize {
    loop {
        let parent = nodes[x].parent as usize;
        if parent == x {
            return x;
        }
        let grand = nodes[parent].parent as usize;
        if grand == parent {
            return parent;
        }
        let parent_offset = nodes[parent].offset;
        nodes[x].offset += parent_offset;
        nodes[x].parent = grand as u32;
        x = grand;
    }
}

/// The mask on its grid padded by one voxel on every side: each mask voxel's cell, and the
/// neighbours as fixed cell offsets (no bounds checks: a padding cell is never added).
pub struct Lattice {
    /// Padded cell of each mask voxel (mask order, so cell order is mask order).
    cells: Vec<u32>,
    /// Number of cells of the padded grid.
    len: usize,
    /// Cell offset of each row along x of the 3 × 3 × 3 block around a cell, at its cell di = −1:
    /// row r = 3(dk + 1) + (dj + 1).
    rows: [isize; 9],
    /// Cell offset of bit 3r + j of the block (row r, di = j − 1).
    offsets: [isize; 27],
    connectivity: Connectivity,
}

impl Lattice {
    pub fn build(mask: &MaskedGrid, connectivity: Connectivity) -> Result<Self> {
        let [nx, ny, nz] = mask.grid.shape.map(|n| n + 2);
        let len = nx * ny * nz;
        if len >= (u32::MAX >> 1) as usize {
            return Err(crate::error::Error::data(format!(
                "the mask's grid {:?} has too many voxels for TFCE (at most 2³¹ − 1 with a one-voxel border)",
                mask.grid.shape
            )));
        }
        let cells = (0..mask.len())
            .map(|v| {
                let [i, j, k] = mask.ijk(v);
                ((k + 1) * ny + (j + 1)) * nx + (i + 1)
            })
            .map(|c| c as u32)
            .collect();
        let mut rows = [0isize; 9];
        let mut offsets = [0isize; 27];
        for dk in -1isize..=1 {
            for dj in -1isize..=1 {
                let row = (3 * (dk + 1) + (dj + 1)) as usize;
                rows[row] = (dk * ny as isize + dj) * nx as isize - 1;
                for j in 0..3 {
                    offsets[3 * row + j] = rows[row] + j as isize;
                }
            }
        }
        Ok(Lattice { cells, len, rows, offsets, connectivity })
    }
}

/// A root's record in the maximum's pass.
#[derive(Clone, Copy)]
struct Root {
    size: u32,
    /// Levels below this one are not yet credited.
    pending: u32,
    /// Largest score of the component's starting voxels, credited down to `pending`.
    best: f64,
    /// The component's cells as a list through `MaxScratch::next` (kept for components other
    /// than the giant: they are walked once, when they join it).
    head: u32,
    tail: u32,
}

/// Reusable buffers of the maximum's pass (one set per thread): `parent` by padded cell.
pub struct MaxScratch {
    parent: Vec<u32>,
    /// Per padded cell, which cells of the row along x centred on it are added (bits 0, 1, 2 =
    /// di −1, 0, +1): adding a cell sets three bits, and a voxel's 27-cell block is then nine
    /// byte loads (a bitmap needed two loads and two shifts per row).
    added: Vec<u8>,
    roots: Vec<Root>,
    /// Next cell of the same component's list, by padded cell.
    next: Vec<u32>,
    /// Each voxel's bucket: 0 below the first height, l for a positive voxel at level l,
    /// k + l for a negative one (two-sided).
    level: Vec<u32>,
    order: Vec<u32>,
    /// Where each bucket begins in `order`, and (after the fill) where it ends.
    starts: Vec<u32>,
    ends: Vec<u32>,
}

impl MaxScratch {
    pub fn new(lattice: &Lattice) -> Self {
        MaxScratch {
            parent: vec![NOT_ADDED; lattice.len],
            added: vec![0; lattice.len],
            roots: Vec::with_capacity(lattice.cells.len()),
            next: vec![NOT_ADDED; lattice.len],
            level: vec![0; lattice.cells.len()],
            order: Vec::with_capacity(lattice.cells.len()),
            starts: Vec::new(),
            ends: Vec::new(),
        }
    }
}

/// How many of `heights` (ascending) are ≤ value: `heights.partition_point(|&h| h <= value)`,
/// from a guess (value × 1/step) corrected against the heights themselves (so exactly the same).
fn reached(heights: &[f64], per_step: f64, value: f64) -> usize {
    if !(value.is_finite() && value >= heights[0]) {
        return 0;
    }
    let k = heights.len();
    let mut l = ((value * per_step) as usize).min(k);
    while l < k && heights[l] <= value {
        l += 1;
    }
    while l > 0 && heights[l - 1] > value {
        l -= 1;
    }
    l
}

/// max over voxels of `tfce_map`'s |TFCE| (two-sided) or TFCE (positive only), without the map.
pub fn tfce_maximum(x: &[f64], two_sided: bool, params: TfceParams, lattice: &Lattice, s: &mut MaxScratch) -> f64 {
    debug_assert_eq!(x.len(), lattice.cells.len());
    let Some((_, _, heights)) = tails(x, two_sided, params.steps) else { return 0.0 };
    let mut prefix = Vec::with_capacity(heights.len() + 1);
    prefix.push(0.0);
    for h in &heights {
        prefix.push(prefix.last().unwrap() + h.powf(params.h));
    }
    bucket(x, two_sided, &heights, lattice, s);
    let k = heights.len();
    let mut best = 0.0f64;
    for sign in 0..2 {
        let buckets = (1..=k).rev().map(|l| l + sign * k);
        if buckets.clone().any(|b| s.ends[b] > s.starts[b]) {
            let one = match lattice.connectivity {
                Connectivity::Faces6 => sign_maximum::<Faces>(buckets, &prefix, params.e, lattice, s),
                Connectivity::Edges18 => sign_maximum::<Edges>(buckets, &prefix, params.e, lattice, s),
                Connectivity::Corners26 => sign_maximum::<Corners>(buckets, &prefix, params.e, lattice, s),
            };
            best = best.max(one);
        }
    }
    best
}

/// Sorts the voxels above the first height into buckets by sign and level, both signs in one
/// pass over x; within a bucket, cell order (so the same order as the map's pass).
fn bucket(x: &[f64], two_sided: bool, heights: &[f64], lattice: &Lattice, s: &mut MaxScratch) {
    let k = heights.len();
    let per_step = 1.0 / heights[0];
    s.starts.clear();
    s.starts.resize(2 * k + 1, 0);
    for (level, &raw) in s.level.iter_mut().zip(x) {
        let l = reached(heights, per_step, raw.abs());
        // No branch on the sign (random in a permutation's map): negative levels shift by k,
        // and count only when two-sided.
        let negative = raw < 0.0;
        let b = (l + usize::from(negative) * k) * usize::from(l > 0 && (!negative || two_sided));
        *level = b as u32;
        s.starts[b] += 1;
    }
    // Positive buckets from the highest level down, then the negative ones.
    let mut at = 0u32;
    for b in (1..=k).rev().chain((k + 1..=2 * k).rev()) {
        let count = s.starts[b];
        s.starts[b] = at;
        at += count;
    }
    s.ends.clone_from(&s.starts);
    s.order.clear();
    s.order.resize(at as usize, 0);
    for (&b, &cell) in s.level.iter().zip(&lattice.cells) {
        if b > 0 {
            let slot = &mut s.ends[b as usize];
            s.order[*slot as usize] = cell;
            *slot += 1;
        }
    }
}

/// The largest score of one sign, its buckets given from the highest level down (bucket of
/// level l = l or k + l): union–find over the padded lattice keeping each root's best.
fn sign_maximum<S: Shape>(
    buckets: impl Iterator<Item = usize> + Clone,
    prefix: &[f64],
    e: f64,
    lattice: &Lattice,
    s: &mut MaxScratch,
) -> f64 {
    let k = prefix.len() - 1;
    let extent = |size: u32| if e == 0.5 { (size as f64).sqrt() } else { (size as f64).powf(e) };
    let credit = |root: &mut Root, down_to: u32| {
        if root.pending > down_to {
            root.best += extent(root.size) * (prefix[root.pending as usize] - prefix[down_to as usize]);
            root.pending = down_to;
        }
    };
    // The first component to reach 1/64 of this sign's voxels becomes the giant: below the
    // percolation height nearly every voxel joins it.
    let voxels: u32 = buckets.clone().map(|b| s.ends[b] - s.starts[b]).sum();
    let giant_size = (voxels / 64).max(2);
    // A root's parent entry is ROOT | its record's index in `roots`, records being made in the
    // order components start (sequential writes, recent ones in cache). A record merged into
    // another gets size 0.
    let MaxScratch { parent, roots, next, added, .. } = s;
    roots.clear();
    added.fill(0);
    // The giant's root cell (usize::MAX until there is one); it changes only when the giant
    // merges into a larger component. Every cell of the giant is marked IN_GIANT.
    let mut giant = usize::MAX;
    let walk = |added: &mut Vec<u8>, next: &Vec<u32>, head: u32| {
        let mut u = head;
        while u != NOT_ADDED {
            mark(added, u as usize, IN_GIANT);
            u = next[u as usize];
        }
    };
    for b in buckets {
        let l = ((b - 1) % k + 1) as u32;
        for &c in &s.order[s.starts[b] as usize..s.ends[b] as usize] {
            let c = c as usize;
            // The block's row bytes side by side, six bits per row (added; in the giant).
            let mut block = 0u64;
            for (row, bits) in S::ROWS.into_iter().enumerate() {
                if bits != 0 {
                    let cells = added[c.wrapping_add_signed(lattice.rows[row] + 1)] & (bits | bits << 3) as u8;
                    block |= u64::from(cells) << (6 * row);
                }
            }
            let near = block & ROW_ADDED;
            let outside = near & !(block >> 3);
            if near == 0 {
                // c starts a component: the only voxels whose scores can be the maximum.
                mark(added, c, ADDED);
                parent[c] = ROOT | roots.len() as u32;
                next[c] = NOT_ADDED;
                roots.push(Root { size: 1, pending: l, best: 0.0, head: c as u32, tail: c as u32 });
                continue;
            }
            if outside == 0 {
                // Every added neighbour is in the giant: c joins it, nothing merges. (The same
                // credit and size as the general case below, without a find.)
                let record = (parent[giant] & !ROOT) as usize;
                credit(&mut roots[record], l);
                roots[record].size += 1;
                parent[c] = giant as u32;
                mark(added, c, ADDED | IN_GIANT);
                continue;
            }
            // c joins the first component it touches and merges the others into it. Neighbours
            // in the giant are one component; of the others, those that touch each other
            // (without c) are one component already: one find per group of them.
            let (near, outside) = (squeeze(near), squeeze(outside));
            let (mut root, mut record) = (usize::MAX, 0);
            let mut join =
                |other: usize, other_record: usize, roots: &mut Vec<Root>, parent: &mut Vec<u32>, giant: &mut usize| {
                    credit(&mut roots[other_record], l);
                    if root == usize::MAX {
                        roots[other_record].size += 1;
                        parent[c] = other as u32;
                        (root, record) = (other, other_record);
                        return;
                    }
                    if other == root {
                        return;
                    }
                    credit(&mut roots[record], l);
                    let ((big, big_record), (small, small_record)) = if roots[other_record].size >= roots[record].size {
                        ((other, other_record), (root, record))
                    } else {
                        ((root, record), (other, other_record))
                    };
                    let merged = roots[small_record];
                    roots[small_record].size = 0;
                    parent[small] = big as u32;
                    let into = &mut roots[big_record];
                    into.size += merged.size;
                    into.best = into.best.max(merged.best);
                    if big == *giant {
                        walk(added, next, merged.head);
                    } else if small == *giant {
                        walk(added, next, into.head);
                        *giant = big;
                    } else {
                        next[merged.tail as usize] = into.head;
                        into.head = merged.head;
                    }
                    (root, record) = (big, big_record);
                };
            if near != outside {
                join(giant, (parent[giant] & !ROOT) as usize, roots, parent, &mut giant);
            }
            let mut rest = outside;
            while rest != 0 {
                let group = touching::<S>(rest);
                rest &= !group;
                // Any member will do; a face neighbour along x shares c's cache line.
                let pick = if group & ALONG_X != 0 { group & ALONG_X } else { group };
                let u = c.wrapping_add_signed(lattice.offsets[pick.trailing_zeros() as usize]);
                let (other, other_record) = find_root(parent, u);
                join(other, other_record, roots, parent, &mut giant);
            }
            if root == giant {
                mark(added, c, ADDED | IN_GIANT);
                continue;
            }
            mark(added, c, ADDED);
            let into = &mut roots[record];
            next[c] = into.head;
            into.head = c as u32;
            if giant == usize::MAX && into.size >= giant_size {
                giant = root;
                walk(added, next, into.head);
            }
        }
    }
    let mut best = 0.0f64;
    for root in roots.iter_mut().filter(|root| root.size > 0) {
        credit(root, 0);
        best = best.max(root.best);
    }
    best
}

/// Flags of a cell in `MaxScratch::added`, as bits of the row bytes centred on it and on its
/// two neighbours along x: added, and known to be in the giant component.
const ADDED: u8 = 0b000_111;
const IN_GIANT: u8 = 0b111_000;

/// Sets `flags` of cell c: bit 3f + j of the byte of the row centred on c − (j − 1).
fn mark(added: &mut [u8], c: usize, flags: u8) {
    added[c - 1] |= flags & 0b100_100;
    added[c] |= flags & 0b010_010;
    added[c + 1] |= flags & 0b001_001;
}

/// A block's row bytes six bits apart: the added cells' bits of each row.
const ROW_ADDED: u64 = 0o07_07_07_07_07_07_07_07_07;

/// The added bits of the rows six bits apart (as [`ROW_ADDED`]) squeezed to three bits apart:
/// the block's 27-bit layout.
fn squeeze(x: u64) -> u32 {
    let x = (x | (x >> 3)) & 0x003f_03f0_3f03_f03f;
    let x = (x | (x >> 6)) & 0x0fff_000f_ff00_0fff;
    let x = (x | (x >> 12)) & 0x0fff_0000_00ff_ffff;
    ((x | (x >> 24)) & u64::from(BLOCK)) as u32
}

/// The 3 × 3 × 3 block around a cell as 27 bits, bit 9(dk + 1) + 3(dj + 1) + (di + 1): in octal,
/// one digit per row along x and three digits per plane.
const BLOCK: u32 = 0o777_777_777;
/// The two face neighbours along x (di = ∓1 of the centre row).
const ALONG_X: u32 = 0o000_050_000;

/// One step along x, y and z in both directions (the block's edges stop the shifts).
fn step_x(b: u32) -> u32 {
    ((b & 0o333_333_333) << 1) | ((b & 0o666_666_666) >> 1)
}
fn step_y(b: u32) -> u32 {
    ((b & 0o077_077_077) << 3) | ((b & 0o770_770_770) >> 3)
}
fn step_z(b: u32) -> u32 {
    ((b << 9) & BLOCK) | (b >> 9)
}

/// A connectivity as the passes use it: which cells of each row of the block are neighbours,
/// and one dilation of a set of the block's cells. Known at compile time, so the row loop is
/// unrolled and the dilation inlined (a third of the pass' instructions were these two).
trait Shape {
    /// Per row r of the block, its neighbour cells (bits 0, 1, 2 = di −1, 0, +1).
    const ROWS: [u32; 9];
    fn dilate(b: u32) -> u32;
}

/// The rows of the block within Manhattan distance `reach` of its centre (centre excluded).
const fn rows_within(reach: i32) -> [u32; 9] {
    let mut rows = [0u32; 9];
    let mut row = 0;
    while row < 9 {
        let (dj, dk) = ((row % 3) as i32 - 1, (row / 3) as i32 - 1);
        let mut di: i32 = -1;
        while di <= 1 {
            let manhattan = di.abs() + dj.abs() + dk.abs();
            if manhattan > 0 && manhattan <= reach {
                rows[row] |= 1 << (di + 1);
            }
            di += 1;
        }
        row += 1;
    }
    rows
}

struct Faces;
struct Edges;
struct Corners;

impl Shape for Faces {
    const ROWS: [u32; 9] = rows_within(1);
    fn dilate(b: u32) -> u32 {
        b | step_x(b) | step_y(b) | step_z(b)
    }
}

impl Shape for Edges {
    const ROWS: [u32; 9] = rows_within(2);
    fn dilate(b: u32) -> u32 {
        let (x, y) = (b | step_x(b), b | step_y(b));
        x | step_y(x) | step_z(x) | step_z(y)
    }
}

impl Shape for Corners {
    const ROWS: [u32; 9] = rows_within(3);
    fn dilate(b: u32) -> u32 {
        let x = b | step_x(b);
        let xy = x | step_y(x);
        xy | step_z(xy)
    }
}

/// The bits of `near` connected to its lowest bit through bits of `near` (a flood fill by
/// whole-set dilations within the block).
fn touching<S: Shape>(near: u32) -> u32 {
    let mut group = near & near.wrapping_neg();
    if group == near {
        return group;
    }
    loop {
        let grown = S::dilate(group) & near;
        if grown == group {
            return group;
        }
        group = grown;
    }
}

/// Flag of a root's parent entry (the rest is its record's index).
const ROOT: u32 = 1 << 31;

/// Root of x and its record, with path halving (no offsets to carry).
fn find_root(parent: &mut [u32], mut x: usize) -> (usize, usize) {
    loop {
        let p = parent[x];
        if p & ROOT != 0 {
            return (x, (p & !ROOT) as usize);
        }
        let grand = parent[p as usize];
        if grand & ROOT != 0 {
            return (p as usize, (grand & !ROOT) as usize);
        }
        parent[x] = grand;
        x = grand as usize;
    }
}

/// TFCE inference for one analysis: the adjacency of its mask and the parameters; `maximum` is
/// the map statistic ([`super::voxelwise::MapStatistic`]) the permutations evaluate.
pub struct Tfce {
    adjacency: Adjacency,
    params: TfceParams,
    tail: Tail,
    /// One scratch per thread that asks, reused across maps.
    scratch: std::sync::Mutex<Vec<Scratch>>,
    lattice: Lattice,
    max_scratch: std::sync::Mutex<Vec<MaxScratch>>,
}

/// The observed TFCE map and its max-TFCE family-wise p.
#[derive(Debug, Clone, PartialEq)]
pub struct TfceResult {
    /// Signed TFCE (negative where t is negative); 0 outside every supra-threshold component.
    pub map: Vec<f64>,
    /// Max-TFCE FWE p (in the requested tail); NaN when B = 0.
    pub p_fwe: Vec<f64>,
}

impl Tfce {
    /// Fails on settings the method is not defined for (E or H not a positive finite number) or
    /// that the passes cannot hold (0 or more than 65,535 height steps: levels are 16-bit).
    pub fn new(mask: &MaskedGrid, connectivity: Connectivity, params: TfceParams, tail: Tail) -> Result<Self> {
        for (name, value) in [("E", params.e), ("H", params.h)] {
            if !(value.is_finite() && value > 0.0) {
                return Err(crate::error::Error::data(format!(
                    "TFCE's exponent {name} must be a positive finite number, not {value}"
                )));
            }
        }
        if !(1..=MAX_STEPS).contains(&params.steps) {
            return Err(crate::error::Error::data(format!(
                "TFCE needs between 1 and {MAX_STEPS} height steps, not {}",
                params.steps
            )));
        }
        Ok(Tfce {
            adjacency: Adjacency::build(mask, connectivity)?,
            params,
            tail,
            scratch: Default::default(),
            lattice: Lattice::build(mask, connectivity)?,
            max_scratch: Default::default(),
        })
    }

    /// The tail TFCE map of t (signed) and its largest tail statistic (|TFCE|, TFCE or −TFCE).
    pub fn map(&self, t: &[f64]) -> (Vec<f64>, f64) {
        let mut scratch =
            self.scratch.lock().map(|mut s| s.pop()).ok().flatten().unwrap_or_else(|| Scratch::new(t.len()));
        let mut map = vec![0.0; t.len()];
        let best = tail_map(t, self.tail, self.params, &self.adjacency, &mut scratch, &mut map);
        if let Ok(mut pool) = self.scratch.lock() {
            pool.push(scratch);
        }
        (map, best)
    }

    /// The largest tail TFCE of a t map: the statistic whose permutation maxima give FWE p.
    /// Same value as `map(t).1` up to rounding (see the module doc), several times faster.
    pub fn maximum(&self, t: &[f64]) -> f64 {
        let mut scratch = self
            .max_scratch
            .lock()
            .map(|mut s| s.pop())
            .ok()
            .flatten()
            .unwrap_or_else(|| MaxScratch::new(&self.lattice));
        let best = match self.tail {
            Tail::TwoSided => tfce_maximum(t, true, self.params, &self.lattice, &mut scratch),
            Tail::Positive => tfce_maximum(t, false, self.params, &self.lattice, &mut scratch),
            Tail::Negative => {
                let flipped: Vec<f64> = t.iter().map(|v| -v).collect();
                tfce_maximum(&flipped, false, self.params, &self.lattice, &mut scratch)
            }
        };
        if let Ok(mut pool) = self.max_scratch.lock() {
            pool.push(scratch);
        }
        best
    }

    /// The observed map and each voxel's max-TFCE FWE p from the null maxima (identity first).
    pub fn infer(&self, t: &[f64], null_max: &[f64], permutations: usize) -> TfceResult {
        let (map, _) = self.map(t);
        let p_fwe = family_wise_p(&map, self.tail, null_max, permutations);
        TfceResult { map, p_fwe }
    }
}

fn tail_map(
    t: &[f64],
    tail: Tail,
    params: TfceParams,
    adjacency: &Adjacency,
    scratch: &mut Scratch,
    out: &mut [f64],
) -> f64 {
    match tail {
        Tail::TwoSided => tfce_map(t, true, params, adjacency, scratch, out),
        Tail::Positive => tfce_map(t, false, params, adjacency, scratch, out),
        Tail::Negative => {
            let flipped: Vec<f64> = t.iter().map(|v| -v).collect();
            let best = tfce_map(&flipped, false, params, adjacency, scratch, out);
            out.iter_mut().for_each(|v| *v = -*v);
            best
        }
    }
}

/// Max-TFCE family-wise p of each voxel: #{b ≥ 0: max_b ≥ s_v} / (B + 1), s_v the voxel's tail
/// TFCE, ties within a relative 1e-10 (as max-T); NaN when B = 0.
pub fn family_wise_p(map: &[f64], tail: Tail, null_max: &[f64], permutations: usize) -> Vec<f64> {
    if permutations == 0 {
        return vec![f64::NAN; map.len()];
    }
    let mut sorted = null_max.to_vec();
    sorted.sort_by(f64::total_cmp);
    map.iter()
        .map(|&value| {
            let s = match tail {
                Tail::TwoSided => value.abs(),
                Tail::Positive => value,
                Tail::Negative => -value,
            };
            let at = s - 1e-10 * s.abs();
            (sorted.len() - sorted.partition_point(|&m| m < at)) as f64 / (permutations + 1) as f64
        })
        .collect()
}

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
//! scores above), so the maximum is reached at a voxel that started a component. Each component
//! record therefore keeps only `best`, the largest score of its starting voxels so far,
//! credited lazily as above; a merge keeps the larger `best`. No offsets, no read-out pass, and
//! records only for starting voxels (a voxel that touches a component joins it). Within a level
//! the order of voxels and unions changes neither the sizes nor the sums, so the pass is free to
//! take shortcuts:
//! - It works on the mask's grid padded by one voxel ([`Lattice`]): a neighbour is a fixed offset
//!   of the voxel's cell, with no bounds to test.
//! - One byte per cell says which cells of the row along y centred on it are added: the bytes
//!   of a row along x are consecutive, so a voxel's 3 × 3 × 3 block is three 4-byte loads, one
//!   per plane, already in the bit layout the flood fill below works on.
//! - Added neighbours that touch each other without the voxel are one component already (a
//!   flood fill over the block's 27 bits), so there is one lookup per group of them. When they
//!   are all one group (most voxels above the percolation height) the voxel joins that
//!   component with one lookup and no merge.
//! - The lookup is direct: each cell of a component holds its record's index, relabelled when
//!   the component merges into a larger one (the smaller side, so each cell O(log n) times;
//!   each record keeps its cells in a contiguous list). No find walks a chain of parents.
//! - The first component to reach 1/64 of the sign's voxels is the giant, and every cell of it
//!   is marked so in the row bytes (a component's list is walked once, when it joins it); the
//!   giant absorbs whatever merges with it. A voxel whose added neighbours are all marked joins
//!   the giant with no lookup and no flood fill: below the percolation height that is most voxels
//!   (70% of them in the bench's null maps), and the giant is credited once per level.
//! - The bucket sort reads each level off value × 1/step (checked against the heights only
//!   near an integer) and keeps two independent sets of counters, for two halves of the voxels.
//!
//! Both signs are sorted into buckets in one pass over the map. The connectivity is a type
//! (`Shape`), so the plane loop is unrolled. This replaced a neighbour list (26 × 4 bytes per
//! voxel, which at MNI 2 mm no longer fits in cache). The sums differ from the map's in the last
//! bits only (a different rounding order); max-TFCE p counts ties within 1e-10 relative. The
//! shortcuts leave the permutations' maxima bitwise unchanged (`bench-voxelwise` prints their
//! blake3).

use super::Pool;
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
    /// Cells per row along x (the stride along y).
    row: usize,
    /// Cell offset of the first of the four bytes loaded per plane of the 3 × 3 × 3 block
    /// around a cell (dk = −1, 0, +1; di = −1 … +2, dj = 0).
    planes: [isize; 3],
    /// Cell offset of each bit of the block's layout ([`bit`]).
    offsets: [isize; 64],
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
        let (row, plane) = (nx as isize, (nx * ny) as isize);
        let mut offsets = [0isize; 64];
        for dk in -1..=1 {
            for di in -1..=1 {
                for dj in -1..=1 {
                    offsets[bit(dk, di, dj)] = dk * plane + dj * row + di;
                }
            }
        }
        Ok(Lattice { cells, len, row: nx, planes: [-plane - 1, -1, plane - 1], offsets, connectivity })
    }
}

/// A component's record in the maximum's pass.
#[derive(Clone, Copy)]
struct Root {
    /// Number of voxels (0 once merged into another component).
    size: u32,
    /// Levels below this one are not yet credited.
    pending: u32,
    /// Largest score of the component's starting voxels, credited down to `pending`.
    best: f64,
}

/// Reusable buffers of the maximum's pass (one set per thread).
pub struct MaxScratch {
    /// Per padded cell of a component other than the giant: its record's index in `roots`.
    cell: Vec<u32>,
    /// Each record's cells, for components other than the giant: relabelled when the component
    /// merges into a larger one, marked when it joins the giant. Contiguous, so neither walk
    /// chases pointers; kept across passes (a list that grew large is freed once emptied).
    lists: Vec<Vec<u32>>,
    /// Per padded cell, which cells of the row along y centred on it are added (bits 0, 1, 2 =
    /// dj −1, 0, +1) and which of them are in the giant (bits 3, 4, 5). Adding a cell sets
    /// bits in three bytes, and a voxel's 3 × 3 × 3 block is then three loads of four bytes,
    /// one per plane (the bytes of di = −1 … +1 in a row along x are consecutive).
    added: Vec<u8>,
    roots: Vec<Root>,
    /// Each voxel's bucket: its level l (0 below the first height) if positive, k + 1 + l if
    /// negative.
    level: Vec<u32>,
    order: Vec<u32>,
    /// Where each bucket begins in `order`, and (after the fill) where it ends.
    starts: Vec<u32>,
    ends: Vec<u32>,
}

impl MaxScratch {
    pub fn new(lattice: &Lattice) -> Self {
        MaxScratch {
            cell: vec![NOT_ADDED; lattice.len],
            lists: Vec::new(),
            // The plane loads read one byte past the block (di = +2); a cell of the mask is at
            // least one row and plane inside the padded grid, so that byte is in the grid too.
            added: vec![0; lattice.len],
            roots: Vec::with_capacity(lattice.cells.len()),
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

/// `reached` without its corrections where none can apply. value × 1/step differs from the
/// number of heights ≤ value by rounding only (relative 1e-15; the heights are i × step), so
/// unless it is within 1e-9 of an integer its integer part is that number. Near one, past the
/// last height, and for ∞ and NaN, `reached` decides.
fn level_of(heights: &[f64], per_step: f64, value: f64) -> usize {
    let y = value * per_step;
    let g = y as i32;
    let fraction = y - f64::from(g);
    if fraction > 1e-9 && fraction < 1.0 - 1e-9 && (g as usize) < heights.len() {
        g as usize
    } else {
        reached(heights, per_step, value)
    }
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
    bucket(x, &heights, lattice, s);
    let k = heights.len();
    let mut best = 0.0f64;
    for sign in 0..1 + usize::from(two_sided) {
        let buckets = (1..=k).rev().map(|l| l + sign * (k + 1));
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

/// Sorts the voxels into buckets by sign and level, both signs in one pass over x; within a
/// bucket, cell order (so the same order as the map's pass). Bucket l holds the positive
/// voxels at level l, bucket k + 1 + l the negative ones; buckets 0 and k + 1 (below the first
/// height) are sorted too, last, but no pass visits them, nor the negative ones when one-sided.
fn bucket(x: &[f64], heights: &[f64], lattice: &Lattice, s: &mut MaxScratch) {
    let k = heights.len();
    let per_step = 1.0 / heights[0];
    let width = 2 * k + 2;
    let bucket_of = |raw: f64| level_of(heights, per_step, raw.abs()) + if raw < 0.0 { k + 1 } else { 0 };
    // The voxels in two halves, each with its own counts and cursors: two independent chains
    // of increments instead of one (neighbouring voxels often share a bucket, and an increment
    // waits for the one before it to the same counter). The first half's voxels come first in
    // each bucket, so each bucket is still in cell order.
    let half = x.len() / 2;
    s.starts.clear();
    s.starts.resize(2 * width, 0);
    let (count_a, count_b) = s.starts.split_at_mut(width);
    let (level_a, level_b) = s.level.split_at_mut(half);
    let (x_a, x_b) = x.split_at(half);
    for ((la, lb), (&ra, &rb)) in level_a.iter_mut().zip(level_b.iter_mut()).zip(x_a.iter().zip(x_b)) {
        let (ba, bb) = (bucket_of(ra), bucket_of(rb));
        (*la, *lb) = (ba as u32, bb as u32);
        count_a[ba] += 1;
        count_b[bb] += 1;
    }
    if x_b.len() > x_a.len() {
        let b = bucket_of(x[x.len() - 1]);
        s.level[x.len() - 1] = b as u32;
        count_b[b] += 1;
    }
    // Counts become cursors: positive buckets from the highest level down, then the negative
    // ones, then the two below the first height.
    let mut starts = vec![0u32; width];
    let mut cursors = vec![0u32; 2 * width];
    let mut at = 0u32;
    for b in (1..=k).rev().chain((k + 2..=2 * k + 1).rev()).chain([0, k + 1]) {
        starts[b] = at;
        cursors[b] = at;
        at += s.starts[b];
        cursors[width + b] = at;
        at += s.starts[width + b];
    }
    // Every voxel gets a slot, so `order` is overwritten whole: no need to zero it first.
    s.order.resize(at as usize, 0);
    let (cursor_a, cursor_b) = cursors.split_at_mut(width);
    let (cells_a, cells_b) = lattice.cells.split_at(half);
    let (level_a, level_b) = s.level.split_at(half);
    for ((&ba, &bb), (&ca, &cb)) in level_a.iter().zip(level_b).zip(cells_a.iter().zip(cells_b)) {
        let slot = &mut cursor_a[ba as usize];
        s.order[*slot as usize] = ca;
        *slot += 1;
        let slot = &mut cursor_b[bb as usize];
        s.order[*slot as usize] = cb;
        *slot += 1;
    }
    if cells_b.len() > cells_a.len() {
        let slot = &mut cursor_b[s.level[x.len() - 1] as usize];
        s.order[*slot as usize] = cells_b[cells_b.len() - 1];
        *slot += 1;
    }
    s.starts = starts;
    // The second half's cursors now stand where the buckets end.
    s.ends.clear();
    s.ends.extend_from_slice(cursor_b);
}

/// The largest score of one sign, its buckets given from the highest level down (bucket of
/// level l = l or k + 1 + l): a union–find whose components carry their own records, keeping
/// each one's best.
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
    let row = lattice.row;
    // Records are made in the order components start (sequential writes, recent ones in
    // cache); a record merged into another gets size 0.
    let MaxScratch { cell, roots, added, lists, .. } = s;
    roots.clear();
    added.fill(0);
    // The giant's record (NONE until there is one). Every cell of the giant is marked in
    // `added`; its cells' records are not kept up to date (no find ever reads them).
    const NONE: usize = usize::MAX;
    let mut giant = NONE;
    // Marks every cell of a list as in the giant, and empties it.
    let into_giant = |added: &mut [u8], list: &mut Vec<u32>| {
        for &u in list.iter() {
            mark(added, u as usize, row, IN_GIANT);
        }
        empty(list);
    };
    for b in buckets {
        let l = (b % (k + 1)) as u32;
        // The giant is credited down to this level once, here: every voxel that joins it below
        // only adds to its size (a merge credits at this level too).
        if giant != NONE {
            credit(&mut roots[giant], l);
        }
        for &c in &s.order[s.starts[b] as usize..s.ends[b] as usize] {
            let c = c as usize;
            // The added neighbours, and those of them not marked as in the giant.
            let (mut near, mut outside) = (0u64, 0u64);
            for (dk, mask) in S::PLANES.into_iter().enumerate() {
                let at = c.wrapping_add_signed(lattice.planes[dk]);
                let word = u32::from_le_bytes(added[at..at + 4].try_into().unwrap()) & mask;
                let here = word & 0x07_07_07;
                near |= u64::from(here) << (PLANE * dk);
                outside |= u64::from(here & !(word >> 3)) << (PLANE * dk);
            }
            if near == 0 {
                // c starts a component: the only voxels whose scores can be the maximum.
                mark(added, c, row, ADDED);
                let record = roots.len();
                cell[c] = record as u32;
                if lists.len() == record {
                    lists.push(Vec::new());
                }
                lists[record].clear();
                lists[record].push(c as u32);
                roots.push(Root { size: 1, pending: l, best: 0.0 });
                continue;
            }
            if outside == 0 {
                // Every added neighbour is in the giant: c joins it, nothing merges.
                roots[giant].size += 1;
                mark(added, c, row, ADDED | IN_GIANT);
                continue;
            }
            // Added neighbours that touch each other without c are one component already.
            let first = touching::<S>(outside);
            // Any member of a group will do; a face neighbour along x shares c's cache line.
            let pick = |group: u64| {
                let one = if group & ALONG_X != 0 { group & ALONG_X } else { group };
                c.wrapping_add_signed(lattice.offsets[one.trailing_zeros() as usize])
            };
            let record = if near == first {
                // One component, not the giant (most voxels above the percolation height).
                let record = cell[pick(first)] as usize;
                credit(&mut roots[record], l);
                roots[record].size += 1;
                record
            } else {
                // c joins the first component it touches and merges the others into it: the
                // giant absorbs, otherwise the larger one absorbs the smaller, whose cells are
                // relabelled (each cell O(log n) times) or marked as in the giant.
                let mut record = NONE;
                let mut join = |other: usize, roots: &mut Vec<Root>, cell: &mut Vec<u32>, giant: usize| {
                    credit(&mut roots[other], l);
                    if record == NONE {
                        roots[other].size += 1;
                        record = other;
                        return;
                    }
                    if other == record {
                        return;
                    }
                    credit(&mut roots[record], l);
                    let (into, from) = if other == giant || (record != giant && roots[other].size >= roots[record].size)
                    {
                        (other, record)
                    } else {
                        (record, other)
                    };
                    let merged = roots[from];
                    roots[from].size = 0;
                    let mut moved = std::mem::take(&mut lists[from]);
                    if into == giant {
                        into_giant(added, &mut moved);
                    } else {
                        for &u in &moved {
                            cell[u as usize] = into as u32;
                        }
                        lists[into].extend_from_slice(&moved);
                        empty(&mut moved);
                    }
                    lists[from] = moved;
                    let target = &mut roots[into];
                    target.size += merged.size;
                    target.best = target.best.max(merged.best);
                    record = into;
                };
                if near != outside {
                    join(giant, roots, cell, giant);
                }
                // The first group is `first`, already found; then the rest's, one by one.
                let (mut group, mut rest) = (first, outside & !first);
                loop {
                    join(cell[pick(group)] as usize, roots, cell, giant);
                    if rest == 0 {
                        break;
                    }
                    group = touching::<S>(rest);
                    rest &= !group;
                }
                record
            };
            if record == giant {
                mark(added, c, row, ADDED | IN_GIANT);
                continue;
            }
            mark(added, c, row, ADDED);
            cell[c] = record as u32;
            lists[record].push(c as u32);
            if giant == NONE && roots[record].size >= giant_size {
                giant = record;
                into_giant(added, &mut lists[record]);
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

/// Empties a record's list, freeing it if it grew large (the lists are kept across passes; a
/// large one would otherwise stay allocated under whichever record reuses it).
fn empty(list: &mut Vec<u32>) {
    if list.capacity() > 1024 {
        *list = Vec::new();
    } else {
        list.clear();
    }
}

/// Flags of a cell in `MaxScratch::added`, as bits of the bytes of the rows along y centred on
/// it and on its two neighbours along y: added, and known to be in the giant component.
const ADDED: u8 = 0b000_111;
const IN_GIANT: u8 = 0b111_000;

/// Sets `flags` of cell c (`row` cells per row): bit 3f + j of the byte centred on c − (j − 1)·row.
fn mark(added: &mut [u8], c: usize, row: usize, flags: u8) {
    added[c - row] |= flags & 0b100_100;
    added[c] |= flags & 0b010_010;
    added[c + row] |= flags & 0b001_001;
}

/// The block's layout as the plane loads give it: plane dk + 1 at bit PLANE·(dk + 1), in it one
/// byte per di (8 bits apart), in each byte bit dj + 1 (the flags' bits 3 … 5, in-giant, are
/// dropped once read). 63 bits, so a u64.
const PLANE: usize = 21;

const fn bit(dk: isize, di: isize, dj: isize) -> usize {
    PLANE * (dk + 1) as usize + 8 * (di + 1) as usize + (dj + 1) as usize
}

/// Cell 0 … 26 of the block as (dk, di, dj), each −1 … +1.
const fn offset(cell: isize) -> [isize; 3] {
    [cell / 9 - 1, cell / 3 % 3 - 1, cell % 3 - 1]
}

/// The bits of the block's cells whose coordinate `axis` (0 = k, 1 = i, 2 = j) plus `by` is
/// still within the block.
const fn movable(axis: usize, by: isize) -> u64 {
    let mut bits = 0u64;
    let mut cell = 0;
    while cell < 27 {
        let d = offset(cell);
        if (d[axis] + by).abs() <= 1 {
            bits |= 1 << bit(d[0], d[1], d[2]);
        }
        cell += 1;
    }
    bits
}

/// The block's 27 cells.
const BLOCK: u64 = movable(0, 0);
/// The two face neighbours along x (di = ∓1 in the centre plane and row).
const ALONG_X: u64 = 1 << bit(0, -1, 0) | 1 << bit(0, 1, 0);

/// One step along x, y and z in both directions (the block's edges stop the shifts).
fn step_x(b: u64) -> u64 {
    const UP: u64 = movable(1, 1);
    const DOWN: u64 = movable(1, -1);
    ((b & UP) << 8) | ((b & DOWN) >> 8)
}
fn step_y(b: u64) -> u64 {
    const UP: u64 = movable(2, 1);
    const DOWN: u64 = movable(2, -1);
    ((b & UP) << 1) | ((b & DOWN) >> 1)
}
fn step_z(b: u64) -> u64 {
    ((b << PLANE) & BLOCK) | (b >> PLANE)
}

/// A connectivity as the passes use it: which bits of each plane's loaded word are
/// neighbours, and one dilation of a set of the block's cells. Known at compile time, so the
/// plane loop is unrolled and the dilation inlined.
trait Shape {
    /// Per plane (dk = −1, 0, +1), the neighbours' bits of its loaded word (both flags).
    const PLANES: [u32; 3];
    fn dilate(b: u64) -> u64;
}

/// The planes' neighbour bits within Manhattan distance `reach` of the centre (centre excluded).
const fn planes_within(reach: isize) -> [u32; 3] {
    let mut planes = [0u32; 3];
    let mut cell: isize = 0;
    while cell < 27 {
        let [dk, di, dj] = offset(cell);
        let manhattan = dk.abs() + di.abs() + dj.abs();
        if manhattan > 0 && manhattan <= reach {
            let at = 8 * (di + 1) + (dj + 1);
            planes[(dk + 1) as usize] |= (1 << at) | (1 << (at + 3));
        }
        cell += 1;
    }
    planes
}

struct Faces;
struct Edges;
struct Corners;

impl Shape for Faces {
    const PLANES: [u32; 3] = planes_within(1);
    fn dilate(b: u64) -> u64 {
        b | step_x(b) | step_y(b) | step_z(b)
    }
}

impl Shape for Edges {
    const PLANES: [u32; 3] = planes_within(2);
    fn dilate(b: u64) -> u64 {
        let (x, y) = (b | step_x(b), b | step_y(b));
        x | step_y(x) | step_z(x) | step_z(y)
    }
}

impl Shape for Corners {
    const PLANES: [u32; 3] = planes_within(3);
    fn dilate(b: u64) -> u64 {
        let x = b | step_x(b);
        let xy = x | step_y(x);
        xy | step_z(xy)
    }
}

/// The bits of `near` connected to its lowest bit through bits of `near` (a flood fill by
/// whole-set dilations within the block).
fn touching<S: Shape>(near: u64) -> u64 {
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

/// TFCE inference for one analysis: the adjacency of its mask and the parameters; `maximum` is
/// the map statistic ([`super::voxelwise::MapStatistic`]) the permutations evaluate.
pub struct Tfce {
    adjacency: Adjacency,
    params: TfceParams,
    tail: Tail,
    /// One scratch per thread that asks, reused across maps.
    scratch: Pool<Scratch>,
    lattice: Lattice,
    max_scratch: Pool<MaxScratch>,
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
        let mut scratch = self.scratch.take(|| Scratch::new(t.len()));
        let mut map = vec![0.0; t.len()];
        let best = tail_map(t, self.tail, self.params, &self.adjacency, &mut scratch, &mut map);
        self.scratch.give(scratch);
        (map, best)
    }

    /// The largest tail TFCE of a t map: the statistic whose permutation maxima give FWE p.
    /// Same value as `map(t).1` up to rounding (see the module doc), several times faster.
    pub fn maximum(&self, t: &[f64]) -> f64 {
        let mut scratch = self.max_scratch.take(|| MaxScratch::new(&self.lattice));
        let best = match self.tail {
            Tail::TwoSided => tfce_maximum(t, true, self.params, &self.lattice, &mut scratch),
            Tail::Positive => tfce_maximum(t, false, self.params, &self.lattice, &mut scratch),
            Tail::Negative => {
                let flipped: Vec<f64> = t.iter().map(|v| -v).collect();
                tfce_maximum(&flipped, false, self.params, &self.lattice, &mut scratch)
            }
        };
        self.max_scratch.give(scratch);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The bucket sort's shortcut counts the same heights as a binary search, at the heights
    /// themselves, one ulp either side, between them, past the top, and for ∞ and NaN.
    #[test]
    fn level_of_counts_the_heights_a_search_counts() {
        for top in [1.0, 3.7, 6.224415580130333, 1e-300, 1e300, 123456.789] {
            for steps in [1, 2, 3, 100, 999, MAX_STEPS] {
                let heights = levels(top, steps);
                let per_step = 1.0 / heights[0];
                let mut values = vec![0.0, -0.0, f64::INFINITY, f64::NAN, f64::MIN_POSITIVE, 2.0 * top];
                for (i, &h) in heights.iter().enumerate().step_by((steps / 500).max(1)) {
                    values.extend([h, h.next_up(), h.next_down(), h * (1.0 + 1e-12), h * (1.0 - 1e-12)]);
                    if let Some(&next) = heights.get(i + 1) {
                        values.push(0.5 * (h + next));
                    }
                }
                for value in values {
                    let searched = if value.is_finite() { heights.partition_point(|&h| h <= value) } else { 0 };
                    assert_eq!(
                        level_of(&heights, per_step, value),
                        searched,
                        "top {top}, {steps} steps, value {value:e}"
                    );
                    assert_eq!(
                        reached(&heights, per_step, value),
                        searched,
                        "top {top}, {steps} steps, value {value:e}"
                    );
                }
            }
        }
    }
}

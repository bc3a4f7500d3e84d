//! Mass-univariate group inference on voxels (or regions): one GLM per voxel, a t map, and
//! permutation family-wise error control by the maximum statistic (max-T) and by cluster extent.
//!
//! # Model
//!
//! Every design reduces to the t statistic of one regressor of interest x in `y_v ~ x + Z` for
//! each voxel v, with the same x and nuisance design Z for all voxels:
//!
//! | design | x | Z | permutation |
//! |---|---|---|---|
//! | [`Design::TwoSample`] | 1 for group 1, 0 for group 0 (contrast group1 − group0) | 1, covariates | Freedman–Lane |
//! | [`Design::Correlation`] | the continuous regressor | 1, covariates | Freedman–Lane |
//! | [`Design::Paired`] | 1 (the mean of post − pre) | none | sign-flipping |
//!
//! As in [`super::association`], Frisch–Waugh–Lovell gives the coefficient of x from residuals on
//! Z: with x̃ = R_Z x and ẽ_v = R_Z y_v (R_Z = I − H_Z, computed once for all voxels),
//! β_v = x̃·ẽ_v / x̃·x̃, RSS_v = ẽ_v·ẽ_v − β_v² x̃·x̃, df = n − rank(Z) − 1,
//! SE_v = √(RSS_v/df / x̃·x̃) and t_v = β_v/SE_v. The parametric p is two-sided from Student's t.
//! A voxel whose residuals are zero (constant across subjects, or explained entirely by the
//! covariates) has no t: it is reported as NaN, counted in [`VoxelwiseResult::degenerate_voxels`]
//! and left out of every maximum and cluster.
//!
//! # Permutations
//!
//! Under Freedman–Lane the permuted data are y*_v = H_Z y_v + P ẽ_v. Because x̃ ⟂ Z,
//! x̃·R_Z y*_v = x̃·P ẽ_v and ‖R_Z y*_v‖² = ‖ẽ_v‖² − Σ_j (q_j·P ẽ_v)², where q_j are the
//! non-constant columns of an orthonormal basis of Z (the constant column contributes nothing:
//! ẽ_v sums to zero and so does any permutation of it). With w = Pᵀx̃ and g_j = Pᵀq_j, each
//! permutation needs only the inner products of w and the g_j with every ẽ_v: for a block of m
//! permutations that is ONE matrix product (m(1 + c) × n)·(n × V), done by faer tile by tile over
//! voxels. Sign-flipping (the paired / one-sample design, where Z is empty and x = 1) is the same
//! with w = the vector of random signs and no g_j; for the one-sample design with symmetric
//! errors it is exact.
//!
//! From these products the partial correlation r = x̃·Pẽ / √(x̃·x̃ ‖R_Z Pẽ‖²) follows, and
//! t = r √(df / (1 − r²)) is an increasing function of r with the same df for every voxel and
//! every permutation. All comparisons (maxima, exceedances, the cluster-forming threshold) are
//! therefore made on q = r|r| = (x̃·Pẽ)|x̃·Pẽ| / (x̃·x̃ ‖R_Z Pẽ‖²), also increasing in t, which
//! gives exactly the decisions the t values would give with one multiplication per element
//! without covariates and one division (no square root) with them.
//!
//! The observed data are the identity permutation: they are entry 0 of every null distribution,
//! followed by B random relabellings (or sign vectors). With a tail statistic s (|t| two-sided,
//! t or −t one-sided, [`Tail`]):
//!
//! * uncorrected p_v = (1 + #{b ≥ 1: s_b,v ≥ s_v}) / (B + 1);
//! * max-T p_FWE,v = #{b ≥ 0: max_u s_b,u ≥ s_v} / (B + 1), i.e. (1 + #{random b}) / (B + 1);
//! * ties are counted with a relative tolerance of 1e-10, as in [`super::association`].
//!
//! Relabellings are drawn at random, not enumerated, so repeats are possible; with very few
//! subjects B should stay well below the number of distinct relabellings (n!/(n₁! n₀!) for two
//! groups, 2ⁿ sign vectors).
//!
//! # Cluster extent
//!
//! Voxels with t ≥ +threshold form positive clusters and voxels with t ≤ −threshold negative
//! clusters, separately, under 6-, 18- or 26-connectivity on the 3D grid of the mask
//! ([`Connectivity`], default 26). The threshold is declared as a t value or converted from an
//! uncorrected p ([`ClusterThreshold`]; two-sided p for a two-sided tail). The null distribution
//! is the largest cluster of each permutation: over both signs pooled for a two-sided test, over
//! one sign for a one-sided test; p_FWE of a cluster of k voxels is #{b ≥ 0: max size_b ≥ k}/(B+1).
//! Clusters are labelled by union–find over the supra-threshold voxels only, using a neighbour
//! list built once (each voxel's earlier neighbours, in mask order); a block keeps one 64-bit
//! word per voxel and sign whose bit p says "supra-threshold in permutation p", so no grid-sized
//! volume is touched per permutation.
//!
//! # Determinism and memory
//!
//! Permutations run in blocks of [`PERMUTATION_BLOCK`] on rayon; block b draws its permutations
//! from its own stream `Rng::derived(seed, "block/{b}")`, faer runs sequentially inside a block,
//! per-voxel exceedance counts are integers, and per-permutation maxima are concatenated in
//! block order: results are bitwise identical whatever the thread count. Memory is the residual
//! matrix (n × V), per-voxel counts, the B + 1 maxima, and per running block a product tile, one
//! 64-bit word per voxel and sign, and the union–find scratch (two u32 per voxel).
//!
//! One file because the GLM, the permutation engine and the cluster labelling share the blocked
//! residual matrix and its memory layout; its tests against brute force sit beside them.

use super::exchange::Exchange;
use super::linalg::{dot, matmul_tn, orthonormal_basis, residualise};
use super::rng::Rng;
use super::t_two_sided_p;
use crate::error::{Error, Result};
use crate::imaging::regions::Grid;
use rayon::prelude::*;
use std::sync::atomic::{AtomicU32, Ordering};

/// Random permutations per block (a block is the unit of parallel work and of random streams;
/// its permutations are the 64 bits of one word per voxel in the cluster masks).
pub const PERMUTATION_BLOCK: usize = 64;
/// Voxels per product tile inside a block.
const VOXEL_TILE: usize = 1024;
const TIE_TOLERANCE: f64 = 1e-10;

/// Nuisance regressors: n × c, column-major, with a name per column for error messages.
#[derive(Debug, Clone, Default)]
pub struct Covariates {
    pub names: Vec<String>,
    pub values: Vec<f64>,
}

impl Covariates {
    pub fn none() -> Self {
        Covariates::default()
    }
}

/// The group-level design; every variant tests one regressor of interest.
#[derive(Debug, Clone)]
pub enum Design {
    /// Group 1 (`true`) minus group 0 (`false`), adjusted for the covariates.
    TwoSample { group: Vec<bool>, covariates: Covariates },
    /// One-sample test of the mean of within-subject differences (post − pre), by sign-flipping.
    Paired,
    /// Slope of a continuous regressor (e.g. symptom change), adjusted for the covariates.
    Correlation { x: Vec<f64>, covariates: Covariates },
}

/// Which direction counts as extreme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Tail {
    /// |t|: both directions; positive and negative clusters pool into one null.
    #[default]
    TwoSided,
    /// t (group 1 > group 0, positive slope, post > pre).
    Positive,
    /// −t.
    Negative,
}

/// Which voxels touch: sharing a face (6), a face or an edge (18), or any corner (26).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Connectivity {
    Faces6,
    Edges18,
    #[default]
    Corners26,
}

/// The cluster-forming threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ClusterThreshold {
    /// |t| ≥ this value (e.g. 3.1).
    T(f64),
    /// Uncorrected p (two-sided for a two-sided tail, one-sided otherwise), converted to t with
    /// the model's df.
    P(f64),
}

/// A brain mask on a grid: the voxels in analysis order.
#[derive(Debug, Clone)]
pub struct MaskedGrid {
    pub grid: Grid,
    /// Flat grid index (i fastest, as NIfTI stores voxels) of each analysed voxel.
    pub voxels: Vec<usize>,
}

impl MaskedGrid {
    /// The nonzero, finite voxels of a mask image on `grid`, in storage order.
    pub fn from_mask(grid: Grid, mask: &[f64]) -> Result<Self> {
        if mask.len() != grid.len() {
            return Err(Error::data(format!(
                "the mask has {} voxels but its grid {:?} has {}",
                mask.len(),
                grid.shape,
                grid.len()
            )));
        }
        let voxels = mask.iter().enumerate().filter(|(_, v)| v.is_finite() && **v != 0.0).map(|(i, _)| i).collect();
        Ok(MaskedGrid { grid, voxels })
    }

    /// Voxels given by their (i, j, k) grid coordinates, in the given order.
    pub fn from_ijk(grid: Grid, ijk: &[[usize; 3]]) -> Result<Self> {
        let mut seen = vec![false; grid.len()];
        let mut voxels = Vec::with_capacity(ijk.len());
        for (v, c) in ijk.iter().enumerate() {
            if (0..3).any(|a| c[a] >= grid.shape[a]) {
                return Err(Error::data(format!("mask voxel {v} at {c:?} lies outside the grid {:?}", grid.shape)));
            }
            let flat = grid.index(c[0], c[1], c[2]);
            if std::mem::replace(&mut seen[flat], true) {
                return Err(Error::data(format!("mask voxel {v} at {c:?} is listed twice")));
            }
            voxels.push(flat);
        }
        Ok(MaskedGrid { grid, voxels })
    }

    pub fn len(&self) -> usize {
        self.voxels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.voxels.is_empty()
    }

    /// Grid coordinates of mask voxel `v`.
    pub fn ijk(&self, v: usize) -> [usize; 3] {
        let [nx, ny, _] = self.grid.shape;
        let flat = self.voxels[v];
        [flat % nx, (flat / nx) % ny, flat / (nx * ny)]
    }

    /// World coordinates (mm; MNI for a template-space mask) of mask voxel `v`.
    pub fn world(&self, v: usize) -> [f64; 3] {
        let [i, j, k] = self.ijk(v);
        self.grid.world(i, j, k)
    }

    /// Volume of one voxel in mm³ (|det| of the affine's 3 × 3 part).
    pub fn voxel_volume_mm3(&self) -> f64 {
        let m = &self.grid.affine;
        (m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]))
            .abs()
    }
}

/// Cluster-extent inference settings.
#[derive(Debug, Clone)]
pub struct ClusterSettings<'a> {
    pub threshold: ClusterThreshold,
    pub connectivity: Connectivity,
    /// The grid positions of the analysed voxels (same order as the data's voxel columns).
    pub mask: &'a MaskedGrid,
}

#[derive(Clone)]
pub struct Settings<'a> {
    /// Random permutations B (the identity is added: B + 1 in every null distribution).
    pub permutations: usize,
    pub seed: u64,
    pub tail: Tail,
    pub cluster: Option<ClusterSettings<'a>>,
    /// A statistic of a whole t map, evaluated on the observed map and on every permutation's
    /// (TFCE's maximum, NBS's largest component); see [`MapStatistic`].
    pub map_statistic: Option<&'a MapStatistic<'a>>,
}

/// A statistic of one whole t map (V values, NaN where a unit has no t), e.g. the largest TFCE
/// score or the largest NBS component. It is called on the observed map and on each
/// permutation's map, from the permutation blocks' threads (in any order: it must be a pure
/// function of the map), and its values form a family-wise null distribution
/// ([`VoxelwiseResult::null_map_statistic`]).
pub type MapStatistic<'a> = dyn Fn(&[f64]) -> f64 + Sync + 'a;

/// One supra-threshold cluster of the observed t map.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// 1-based rank: largest first, then the stronger peak.
    pub id: usize,
    /// +1 for t ≥ threshold, −1 for t ≤ −threshold.
    pub sign: i8,
    /// Mask indices, ascending.
    pub voxels: Vec<usize>,
    /// Mask index of the peak (largest |t|).
    pub peak: usize,
    pub peak_t: f64,
    pub p_fwe: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClusterResult {
    /// The cluster-forming |t|.
    pub t_threshold: f64,
    pub clusters: Vec<Cluster>,
    /// Largest cluster (voxels) in each of the B + 1 permutations, identity first.
    pub null_max_size: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VoxelwiseResult {
    pub subjects: usize,
    pub df: f64,
    /// Random permutations B.
    pub permutations: usize,
    pub beta: Vec<f64>,
    pub t: Vec<f64>,
    /// Parametric two-sided p.
    pub p: Vec<f64>,
    /// Uncorrected permutation p (in the requested tail); NaN when B = 0.
    pub p_perm: Vec<f64>,
    /// Max-T family-wise p; NaN when B = 0.
    pub p_fwe: Vec<f64>,
    /// Maximum tail statistic (t, −t or |t|) over voxels per permutation, identity first.
    pub null_max_t: Vec<f64>,
    /// Voxels with zero residual variance (t is NaN; left out of maxima and clusters).
    pub degenerate_voxels: usize,
    pub clusters: Option<ClusterResult>,
    /// The map statistic of the observed t map, then of each permutation's (empty without one).
    pub null_map_statistic: Vec<f64>,
}

/// The regressor of interest after residualisation on Z, and what the permutations need.
struct Model {
    /// x̃ (n).
    x: Vec<f64>,
    sxx: f64,
    /// Orthonormal basis of Z (n × k), intercept first; empty for the paired design.
    q: Vec<f64>,
    k: usize,
    sign_flip: bool,
}

fn model(design: &Design, n: usize) -> Result<Model> {
    let (x, covariates, sign_flip) = match design {
        Design::TwoSample { group, covariates } => {
            if group.len() != n {
                return Err(Error::data(format!("the group vector has {} entries for {n} subjects", group.len())));
            }
            let ones = group.iter().filter(|g| **g).count();
            if ones == 0 || ones == n {
                return Err(Error::data(format!(
                    "a two-sample test needs subjects in both groups; group 1 has {ones} of {n}"
                )));
            }
            (group.iter().map(|&g| if g { 1.0 } else { 0.0 }).collect::<Vec<_>>(), Some(covariates), false)
        }
        Design::Correlation { x, covariates } => {
            if x.len() != n {
                return Err(Error::data(format!("the regressor has {} values for {n} subjects", x.len())));
            }
            if let Some(i) = x.iter().position(|v| !v.is_finite()) {
                return Err(Error::data(format!("the regressor of subject {i} is {}", x[i])));
            }
            (x.clone(), Some(covariates), false)
        }
        Design::Paired => (vec![1.0; n], None, true),
    };
    let (q, k) = match covariates {
        None => (Vec::new(), 0),
        Some(cov) => {
            let c = cov.names.len();
            if cov.values.len() != n * c {
                return Err(Error::data(format!(
                    "{} covariate values for {c} covariates × {n} subjects",
                    cov.values.len()
                )));
            }
            if let Some(i) = cov.values.iter().position(|v| !v.is_finite()) {
                return Err(Error::data(format!(
                    "covariate `{}` of subject {} is {}",
                    cov.names[i / n],
                    i % n,
                    cov.values[i]
                )));
            }
            let mut z = vec![1.0; n];
            z.extend_from_slice(&cov.values);
            let q = orthonormal_basis(&z, n, c + 1).map_err(|j| {
                Error::data(format!(
                    "covariate `{}` is constant or a linear combination of the other covariates",
                    cov.names[j.max(1) - 1]
                ))
            })?;
            (q, c + 1)
        }
    };
    if n < k + 2 {
        return Err(Error::data(format!(
            "{n} subjects leave no degrees of freedom for {k} nuisance terms and the effect"
        )));
    }
    let mut x = x;
    if k > 0 {
        residualise(&q, n, k, &mut x, 1);
    }
    let sxx = dot(&x, &x);
    if !(sxx > 1e-12 * n as f64) {
        return Err(Error::data("the regressor of interest is explained entirely by the covariates"));
    }
    Ok(Model { x, sxx, q, k, sign_flip })
}

/// The |t| that an uncorrected two-sided p corresponds to with `df` degrees of freedom
/// (inverse of [`super::t_two_sided_p`], through the inverse regularised incomplete beta:
/// y = I⁻¹(df/2, ½; p), t = √(df (1 − y)/y)).
pub fn t_for_two_sided_p(p: f64, df: f64) -> f64 {
    let y = statrs::function::beta::inv_beta_reg(df / 2.0, 0.5, p);
    (df * (1.0 - y) / y).sqrt()
}

/// q = r|r| of a t value: the squared partial correlation with the sign of t.
fn q_from_t(t: f64, df: f64) -> f64 {
    let r = t / (df + t * t).sqrt();
    r * r.abs()
}

/// Both arms are computed and one is selected, so a loop of these vectorises (the t maps of a
/// map statistic take one per voxel and permutation).
#[inline(always)]
fn t_from_q(q: f64, df: f64) -> f64 {
    let r = q.signum() * q.abs().sqrt();
    let inside = r * (df / (1.0 - r * r)).sqrt();
    if r.abs() >= 1.0 { r.signum() * f64::INFINITY } else { inside }
}

impl Tail {
    /// The tail statistic in q = r|r| units (|q|, q or −q).
    #[inline]
    fn stat(self, q: f64) -> f64 {
        match self {
            Tail::TwoSided => q.abs(),
            Tail::Positive => q,
            Tail::Negative => -q,
        }
    }
    fn signs(self) -> (bool, bool) {
        match self {
            Tail::TwoSided => (true, true),
            Tail::Positive => (true, false),
            Tail::Negative => (false, true),
        }
    }
}

/// Each voxel's earlier neighbours (smaller mask index), as a compressed list.
struct Neighbours {
    offsets: Vec<u32>,
    list: Vec<u32>,
}

impl Neighbours {
    fn build(mask: &MaskedGrid, connectivity: Connectivity) -> Result<Self> {
        let (offsets, list) = neighbour_lists(mask, connectivity, true)?;
        Ok(Neighbours { offsets, list })
    }

    fn of(&self, v: usize) -> &[u32] {
        &self.list[self.offsets[v] as usize..self.offsets[v + 1] as usize]
    }
}

/// Each mask voxel's neighbours under `connectivity` as a compressed list (offsets, list), in a
/// fixed order (dk, dj, di ascending); with `earlier_only`, only those with a smaller mask index.
pub(crate) fn neighbour_lists(
    mask: &MaskedGrid,
    connectivity: Connectivity,
    earlier_only: bool,
) -> Result<(Vec<u32>, Vec<u32>)> {
    let shape = mask.grid.shape;
    if mask.len() >= u32::MAX as usize {
        return Err(Error::data("more than 2³² mask voxels"));
    }
    let mut index = vec![u32::MAX; mask.grid.len()];
    for (v, &flat) in mask.voxels.iter().enumerate() {
        if flat >= index.len() {
            return Err(Error::data(format!("mask voxel {v} lies outside the grid {shape:?}")));
        }
        index[flat] = v as u32;
    }
    let reach = match connectivity {
        Connectivity::Faces6 => 1,
        Connectivity::Edges18 => 2,
        Connectivity::Corners26 => 3,
    };
    let mut steps = Vec::new();
    for dk in -1i64..=1 {
        for dj in -1i64..=1 {
            for di in -1i64..=1 {
                let manhattan = di.abs() + dj.abs() + dk.abs();
                if manhattan > 0 && manhattan <= reach {
                    steps.push([di, dj, dk]);
                }
            }
        }
    }
    let mut offsets = Vec::with_capacity(mask.len() + 1);
    let mut list = Vec::new();
    offsets.push(0u32);
    for v in 0..mask.len() {
        let c = mask.ijk(v).map(|a| a as i64);
        for s in &steps {
            let (i, j, k) = (c[0] + s[0], c[1] + s[1], c[2] + s[2]);
            if i < 0 || j < 0 || k < 0 || i >= shape[0] as i64 || j >= shape[1] as i64 || k >= shape[2] as i64 {
                continue;
            }
            let u = index[mask.grid.index(i as usize, j as usize, k as usize)];
            if u != u32::MAX && (!earlier_only || (u as usize) < v) {
                list.push(u);
            }
        }
        offsets.push(list.len() as u32);
    }
    Ok((offsets, list))
}

fn find(parent: &mut [u32], mut x: u32) -> u32 {
    while parent[x as usize] != x {
        let grand = parent[parent[x as usize] as usize];
        parent[x as usize] = grand;
        x = grand;
    }
    x
}

/// Union–find over the `active` voxels (ascending mask indices), where voxel u is active when bit
/// `p` of `bits[u]` is set; `parent` and `size` are scratch (length V) whose entries are
/// initialised only for active voxels. Returns the largest cluster's size.
fn union_find(
    active: &[u32],
    bits: &[u64],
    p: u32,
    neighbours: &Neighbours,
    parent: &mut [u32],
    size: &mut [u32],
) -> u32 {
    let mut largest = 0;
    for &v in active {
        parent[v as usize] = v;
        size[v as usize] = 1;
        let mut root = v;
        for &u in neighbours.of(v as usize) {
            if (bits[u as usize] >> p) & 1 == 0 {
                continue;
            }
            let other = find(parent, u);
            if other == root {
                continue;
            }
            if size[other as usize] >= size[root as usize] {
                parent[root as usize] = other;
                size[other as usize] += size[root as usize];
                root = other;
            } else {
                parent[other as usize] = root;
                size[root as usize] += size[other as usize];
            }
        }
        largest = largest.max(size[root as usize]);
    }
    largest
}

/// The clusters of the voxels whose bit 0 is set, as ascending voxel lists.
fn components(bits: &[u64], neighbours: &Neighbours) -> Vec<Vec<usize>> {
    let active: Vec<u32> = (0..bits.len() as u32).filter(|&v| bits[v as usize] & 1 == 1).collect();
    let mut parent = vec![0u32; bits.len()];
    let mut size = vec![0u32; bits.len()];
    union_find(&active, bits, 0, neighbours, &mut parent, &mut size);
    let mut slot = vec![u32::MAX; bits.len()];
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for &v in &active {
        let root = find(&mut parent, v) as usize;
        if slot[root] == u32::MAX {
            slot[root] = groups.len() as u32;
            groups.push(Vec::new());
        }
        groups[slot[root] as usize].push(v as usize);
    }
    groups
}

/// Everything a permutation block reads.
struct Context<'a> {
    n: usize,
    voxels: usize,
    residuals: &'a [f64],
    model: &'a Model,
    /// ‖ẽ_v‖².
    ee: &'a [f64],
    /// 1/(x̃·x̃ ‖ẽ_v‖²) (0 for degenerate voxels): q = s|s|·scale when there are no covariates.
    scale: &'a [f64],
    valid: &'a [bool],
    /// Observed tail statistic minus the tie tolerance.
    exceed_at: &'a [f64],
    tail: Tail,
    seed: u64,
    /// Which permutations / sign flips are allowed.
    exchange: &'a Exchange,
    /// Cluster-forming threshold in q units, and the neighbour lists.
    cluster: Option<(f64, &'a Neighbours)>,
    counts: &'a [AtomicU32],
    map_statistic: Option<&'a MapStatistic<'a>>,
    /// Buffers for a block's t maps, reused across blocks: each is m × voxels (118 MB at
    /// MNI 2 mm), and a fresh one per block cost a page fault per 4 KB and a NaN fill.
    /// Entries of voxels without a t are NaN from the first fill and never written.
    t_pool: &'a super::Pool<Vec<f64>>,
    /// The most permutations any block has (B when B < PERMUTATION_BLOCK): the t maps' size.
    largest_block: usize,
    df: f64,
}

struct BlockResult {
    max_stat: Vec<f64>,
    max_size: Vec<u32>,
    map_statistic: Vec<f64>,
}

/// Per permutation of a block: count exceedances of the observed statistic (`count`), track the
/// maximum, for one tail statistic `stat`. Kept branch-free so that it vectorises.
#[inline(always)]
fn accumulate(max_stat: &mut [f64], r: &[f64], threshold: f64, stat: impl Fn(f64) -> f64) -> u32 {
    let mut count = 0u32;
    for (best, &rp) in max_stat.iter_mut().zip(r) {
        let s = stat(rp);
        count += u32::from(s >= threshold);
        *best = if s > *best { s } else { *best };
    }
    count
}

fn run_block(ctx: &Context<'_>, block: usize, m: usize) -> BlockResult {
    // A block's permutations are the bits of one u64 per voxel in the cluster masks.
    debug_assert!(m <= 64);
    let n = ctx.n;
    let model = ctx.model;
    // Non-constant columns of Q (the constant one contributes nothing, see the module doc).
    let extra = model.k.saturating_sub(1);
    let rows = m * (1 + extra);
    let mut a = vec![0.0; n * rows];
    let mut rng = Rng::derived(ctx.seed, &format!("block/{block}"));
    for p in 0..m {
        if model.sign_flip
            && let Some(flips) = ctx.exchange.block_flips(&mut rng, n)
        {
            for (i, (value, &xi)) in a[p * n..(p + 1) * n].iter_mut().zip(&model.x).enumerate() {
                *value = if flips[i] { -xi } else { xi };
            }
        } else if model.sign_flip {
            let column = &mut a[p * n..(p + 1) * n];
            for (chunk, x) in column.chunks_mut(64).zip(model.x.chunks(64)) {
                let bits = rng.next_u64();
                for (i, (value, &xi)) in chunk.iter_mut().zip(x).enumerate() {
                    *value = if (bits >> i) & 1 == 1 { -xi } else { xi };
                }
            }
        } else {
            let perm = ctx.exchange.permutation(&mut rng, n);
            for (i, &target) in perm.iter().enumerate() {
                a[p * n + target as usize] = model.x[i];
                for j in 0..extra {
                    a[(m + j * m + p) * n + target as usize] = model.q[(j + 1) * n + i];
                }
            }
        }
    }

    let (want_pos, want_neg) = ctx.tail.signs();
    let clusters = ctx.cluster.is_some();
    // Bit p of pos_bits[v] (neg_bits[v]): voxel v is above +threshold (below −threshold) in
    // permutation p of the block.
    let mut pos_bits = if clusters && want_pos { vec![0u64; ctx.voxels] } else { Vec::new() };
    let mut neg_bits = if clusters && want_neg { vec![0u64; ctx.voxels] } else { Vec::new() };
    let q_cluster = ctx.cluster.map_or(f64::INFINITY, |(q, _)| q);
    let mut max_stat = vec![f64::NEG_INFINITY; m];
    // For a map statistic: each permutation's t map (permutation-major), NaN where no t.
    let mut t_maps = match ctx.map_statistic {
        Some(_) => ctx.t_pool.take(|| vec![f64::NAN; ctx.largest_block * ctx.voxels]),
        None => Vec::new(),
    };
    // One voxel's t over the block's permutations, before they go to their maps.
    let mut t_row = [0.0f64; PERMUTATION_BLOCK];
    // q = r|r| of each permutation for the current voxel.
    let mut r = vec![0.0; m];
    let mut resid = vec![0.0; m];
    let sxx = model.sxx;
    for v0 in (0..ctx.voxels).step_by(VOXEL_TILE) {
        let v1 = (v0 + VOXEL_TILE).min(ctx.voxels);
        let tile = v1 - v0;
        let products = matmul_tn(&a, &ctx.residuals[v0 * n..v1 * n], n, rows, tile);
        for (col, c) in products.chunks_exact(rows).enumerate() {
            let v = v0 + col;
            if !ctx.valid[v] {
                continue;
            }
            let (s, g) = c.split_at(m);
            if extra == 0 {
                let scale = ctx.scale[v];
                for (qp, &sp) in r.iter_mut().zip(s) {
                    *qp = sp * sp.abs() * scale;
                }
            } else {
                resid.fill(ctx.ee[v]);
                for gj in g.chunks_exact(m) {
                    for (e, &gp) in resid.iter_mut().zip(gj) {
                        *e -= gp * gp;
                    }
                }
                for ((qp, &sp), &e) in r.iter_mut().zip(s).zip(&resid) {
                    *qp = sp * sp.abs() / (sxx * e.max(f64::MIN_POSITIVE));
                }
            }
            let threshold = ctx.exceed_at[v];
            let count = match ctx.tail {
                Tail::TwoSided => accumulate(&mut max_stat, &r, threshold, f64::abs),
                Tail::Positive => accumulate(&mut max_stat, &r, threshold, |x| x),
                Tail::Negative => accumulate(&mut max_stat, &r, threshold, |x| -x),
            };
            if count > 0 {
                ctx.counts[v].fetch_add(count, Ordering::Relaxed);
            }
            if !t_maps.is_empty() {
                // t first, without a branch (so it vectorises), then the strided stores.
                for (t, &qp) in t_row.iter_mut().zip(&r) {
                    *t = t_from_q(qp, ctx.df);
                }
                for (p, &t) in t_row[..m].iter().enumerate() {
                    t_maps[p * ctx.voxels + v] = t;
                }
            }
            if clusters {
                let (mut pos, mut neg) = (0u64, 0u64);
                for (p, &qp) in r.iter().enumerate() {
                    pos |= u64::from(qp >= q_cluster) << p;
                    neg |= u64::from(qp <= -q_cluster) << p;
                }
                if want_pos {
                    pos_bits[v] = pos;
                }
                if want_neg {
                    neg_bits[v] = neg;
                }
            }
        }
    }

    let mut max_size = Vec::new();
    if let Some((_, neighbours)) = ctx.cluster {
        let mut parent = vec![0u32; ctx.voxels];
        let mut size = vec![0u32; ctx.voxels];
        max_size = vec![0u32; m];
        let mut active: Vec<Vec<u32>> = vec![Vec::new(); m];
        for bits in [&pos_bits, &neg_bits] {
            if bits.is_empty() {
                continue;
            }
            active.iter_mut().for_each(Vec::clear);
            for (v, &word) in bits.iter().enumerate() {
                let mut word = word;
                while word != 0 {
                    active[word.trailing_zeros() as usize].push(v as u32);
                    word &= word - 1;
                }
            }
            for (p, list) in active.iter().enumerate() {
                let largest = union_find(list, bits, p as u32, neighbours, &mut parent, &mut size);
                max_size[p] = max_size[p].max(largest);
            }
        }
    }
    let map_statistic = match ctx.map_statistic {
        Some(statistic) => {
            let maxima = t_maps[..m * ctx.voxels].chunks_exact(ctx.voxels).map(statistic).collect();
            ctx.t_pool.give(t_maps);
            maxima
        }
        None => Vec::new(),
    };
    BlockResult { max_stat, max_size, map_statistic }
}

/// Fit the voxelwise GLM and run the permutations.
///
/// `y` holds the data of `subjects` subjects at V voxels, column-major per voxel: subject i of
/// voxel v is `y[v * subjects + i]` (for the paired design, post − pre differences). With
/// cluster settings, V must equal the mask's voxel count and voxel v is the mask's voxel v.
/// `progress` is told how many permutations finished.
pub fn fit(
    y: &[f64],
    subjects: usize,
    design: &Design,
    settings: &Settings<'_>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<VoxelwiseResult> {
    fit_blocked(y, subjects, design, settings, &Exchange::Free, progress)
}

/// [`fit`] with exchangeability blocks: permutations (or, under `whole`, sign flips) only as
/// `exchange` allows. Free exchange draws exactly what [`fit`] draws.
pub fn fit_blocked(
    y: &[f64],
    subjects: usize,
    design: &Design,
    settings: &Settings<'_>,
    exchange: &Exchange,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<VoxelwiseResult> {
    let n = subjects;
    if n == 0 || y.is_empty() || !y.len().is_multiple_of(n) {
        return Err(Error::data(format!("{} data values do not divide into {n} subjects", y.len())));
    }
    let voxels = y.len() / n;
    if let Some(i) = y.iter().position(|v| !v.is_finite()) {
        return Err(Error::data(format!(
            "the value of subject {} at voxel {} is {}; restrict the mask to voxels with data in every subject",
            i % n,
            i / n,
            y[i]
        )));
    }
    let model = model(design, n)?;
    let df = (n - model.k - 1) as f64;
    let tail = settings.tail;

    let mut residuals = y.to_vec();
    if model.k > 0 {
        residualise(&model.q, n, model.k, &mut residuals, voxels);
    }
    let ee: Vec<f64> = residuals.chunks_exact(n).map(|e| dot(e, e)).collect();
    let sxy = matmul_tn(&model.x, &residuals, n, 1, voxels);
    // Residuals below 1e-12 of the data's own scale are rounding noise: the voxel is constant
    // (or, with covariates, explained by them).
    let valid: Vec<bool> = y.chunks_exact(n).zip(&ee).map(|(raw, &e)| e > 0.0 && e > 1e-24 * dot(raw, raw)).collect();
    let degenerate_voxels = valid.iter().filter(|v| !**v).count();

    let mut beta = vec![f64::NAN; voxels];
    let mut t = vec![f64::NAN; voxels];
    let mut p = vec![f64::NAN; voxels];
    let mut q_obs = vec![0.0; voxels];
    let mut scale = vec![0.0; voxels];
    for v in (0..voxels).filter(|&v| valid[v]) {
        let b = sxy[v] / model.sxx;
        let rss = (ee[v] - b * b * model.sxx).max(0.0);
        beta[v] = b;
        t[v] = b / (rss / df / model.sxx).sqrt();
        p[v] = t_two_sided_p(t[v], df);
        scale[v] = 1.0 / (model.sxx * ee[v]);
        q_obs[v] = sxy[v] * sxy[v].abs() * scale[v];
    }
    let stat_obs: Vec<f64> = q_obs.iter().map(|&r| tail.stat(r)).collect();
    let exceed_at: Vec<f64> = stat_obs.iter().map(|s| s - TIE_TOLERANCE * s.abs()).collect();
    let observed_max = (0..voxels).filter(|&v| valid[v]).map(|v| stat_obs[v]).fold(f64::NEG_INFINITY, f64::max);

    // Observed clusters.
    let cluster_setup = match &settings.cluster {
        None => None,
        Some(cs) => {
            if cs.mask.len() != voxels {
                return Err(Error::data(format!(
                    "the mask has {} voxels but the data have {voxels} voxel columns",
                    cs.mask.len()
                )));
            }
            let t_threshold = match cs.threshold {
                ClusterThreshold::T(value) => value,
                ClusterThreshold::P(p) => {
                    if !(p > 0.0 && p < 1.0) {
                        return Err(Error::data(format!("the cluster-forming p must lie in (0, 1), not {p}")));
                    }
                    t_for_two_sided_p(if tail == Tail::TwoSided { p } else { (2.0 * p).min(1.0) }, df)
                }
            };
            if !(t_threshold.is_finite() && t_threshold > 0.0) {
                return Err(Error::data(format!(
                    "the cluster-forming threshold must be a positive t, not {t_threshold}"
                )));
            }
            Some((t_threshold, Neighbours::build(cs.mask, cs.connectivity)?))
        }
    };
    let q_cluster = cluster_setup.as_ref().map(|(t_thr, _)| q_from_t(*t_thr, df));
    let observed_clusters: Vec<(i8, Vec<usize>)> = match (&cluster_setup, q_cluster) {
        (Some((_, neighbours)), Some(q_thr)) => {
            let (want_pos, want_neg) = tail.signs();
            let mut found = Vec::new();
            for (sign, wanted) in [(1i8, want_pos), (-1i8, want_neg)] {
                if !wanted {
                    continue;
                }
                let bits: Vec<u64> =
                    (0..voxels).map(|v| u64::from(valid[v] && f64::from(sign) * q_obs[v] >= q_thr)).collect();
                found.extend(components(&bits, neighbours).into_iter().map(|c| (sign, c)));
            }
            found
        }
        _ => Vec::new(),
    };
    let observed_max_size = observed_clusters.iter().map(|(_, c)| c.len()).max().unwrap_or(0);

    // Random permutations 1..=B in fixed blocks.
    let b_total = settings.permutations;
    let counts: Vec<AtomicU32> = (0..voxels).map(|_| AtomicU32::new(0)).collect();
    let ctx = Context {
        n,
        voxels,
        residuals: &residuals,
        model: &model,
        ee: &ee,
        scale: &scale,
        valid: &valid,
        exceed_at: &exceed_at,
        tail,
        seed: settings.seed,
        exchange,
        cluster: cluster_setup.as_ref().zip(q_cluster).map(|((_, nb), q)| (q, nb)),
        counts: &counts,
        map_statistic: settings.map_statistic,
        t_pool: &Default::default(),
        largest_block: PERMUTATION_BLOCK.min(b_total),
        df,
    };
    let blocks = b_total.div_ceil(PERMUTATION_BLOCK);
    let per_block: Vec<BlockResult> = (0..blocks)
        .into_par_iter()
        .map(|block| {
            let m = PERMUTATION_BLOCK.min(b_total - block * PERMUTATION_BLOCK);
            let result = run_block(&ctx, block, m);
            progress(m as u64);
            result
        })
        .collect();

    let mut null_max_stat = Vec::with_capacity(b_total + 1);
    null_max_stat.push(observed_max);
    let mut null_max_size = Vec::with_capacity(b_total + 1);
    null_max_size.push(observed_max_size);
    let mut null_map_statistic: Vec<f64> = settings.map_statistic.map(|statistic| statistic(&t)).into_iter().collect();
    for block in per_block {
        null_max_stat.extend(block.max_stat);
        null_max_size.extend(block.max_size.into_iter().map(|s| s as usize));
        null_map_statistic.extend(block.map_statistic);
    }

    let denominator = (b_total + 1) as f64;
    let permuted = |count: usize| if b_total > 0 { count as f64 / denominator } else { f64::NAN };
    let mut sorted_max = null_max_stat.clone();
    sorted_max.sort_by(f64::total_cmp);
    let mut p_perm = vec![f64::NAN; voxels];
    let mut p_fwe = vec![f64::NAN; voxels];
    for v in (0..voxels).filter(|&v| valid[v]) {
        p_perm[v] = permuted(1 + counts[v].load(Ordering::Relaxed) as usize);
        p_fwe[v] = permuted(sorted_max.len() - sorted_max.partition_point(|&m| m < exceed_at[v]));
    }

    let clusters = cluster_setup.map(|(t_threshold, _)| {
        let mut sorted_sizes = null_max_size.clone();
        sorted_sizes.sort_unstable();
        let mut clusters: Vec<Cluster> = observed_clusters
            .into_iter()
            .map(|(sign, voxels)| {
                let peak = voxels
                    .iter()
                    .copied()
                    .max_by(|&a, &b| {
                        (f64::from(sign) * q_obs[a]).total_cmp(&(f64::from(sign) * q_obs[b])).then(b.cmp(&a))
                    })
                    .unwrap_or(0);
                let exceed = sorted_sizes.len() - sorted_sizes.partition_point(|&s| s < voxels.len());
                Cluster { id: 0, sign, peak, peak_t: t[peak], p_fwe: permuted(exceed), voxels }
            })
            .collect();
        clusters.sort_by(|a, b| {
            b.voxels
                .len()
                .cmp(&a.voxels.len())
                .then(b.peak_t.abs().total_cmp(&a.peak_t.abs()))
                .then(a.peak.cmp(&b.peak))
        });
        for (i, c) in clusters.iter_mut().enumerate() {
            c.id = i + 1;
        }
        ClusterResult { t_threshold, clusters, null_max_size }
    });

    Ok(VoxelwiseResult {
        subjects: n,
        df,
        permutations: b_total,
        beta,
        t,
        p,
        p_perm,
        p_fwe,
        null_max_t: null_max_stat.iter().map(|&s| t_from_q(s, df)).collect(),
        degenerate_voxels,
        clusters,
        null_map_statistic,
    })
}

/// One row of the cluster table.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterRow {
    pub id: usize,
    pub sign: i8,
    pub size: usize,
    pub volume_mm3: f64,
    pub peak_t: f64,
    pub peak_ijk: [usize; 3],
    /// World (MNI, mm) coordinates of the peak through the grid's affine.
    pub peak_xyz: [f64; 3],
    pub p_fwe: f64,
    /// Atlas label at the peak, when a lookup was given and knows the voxel.
    pub label: Option<String>,
}

/// The cluster table; `label_at` maps a mask index to an atlas label name.
pub fn cluster_table(
    result: &ClusterResult,
    mask: &MaskedGrid,
    label_at: Option<&dyn Fn(usize) -> Option<String>>,
) -> Vec<ClusterRow> {
    let voxel_volume = mask.voxel_volume_mm3();
    result
        .clusters
        .iter()
        .map(|c| ClusterRow {
            id: c.id,
            sign: c.sign,
            size: c.voxels.len(),
            volume_mm3: c.voxels.len() as f64 * voxel_volume,
            peak_t: c.peak_t,
            peak_ijk: mask.ijk(c.peak),
            peak_xyz: mask.world(c.peak),
            p_fwe: c.p_fwe,
            label: label_at.and_then(|f| f(c.peak)),
        })
        .collect()
}

/// The cluster table as TSV (header line, tab-separated, `n/a` for missing values).
pub fn render_cluster_table(rows: &[ClusterRow]) -> String {
    fn number(v: f64) -> String {
        if v.is_finite() { format!("{v}") } else { "n/a".to_string() }
    }
    let mut out = String::from(
        "cluster\tsign\tsize_voxels\tvolume_mm3\tpeak_t\tpeak_i\tpeak_j\tpeak_k\tpeak_x\tpeak_y\tpeak_z\tp_fwe\tlabel\n",
    );
    for r in rows {
        let label = r.label.as_deref().filter(|l| !l.is_empty()).unwrap_or("n/a");
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            r.id,
            if r.sign > 0 { "+" } else { "-" },
            r.size,
            number(r.volume_mm3),
            number(r.peak_t),
            r.peak_ijk[0],
            r.peak_ijk[1],
            r.peak_ijk[2],
            number(r.peak_xyz[0]),
            number(r.peak_xyz[1]),
            number(r.peak_xyz[2]),
            number(r.p_fwe),
            label.replace(['\t', '\n'], " ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three supra-threshold pairs on a 6×6×6 grid: sharing a face, an edge, a corner.
    #[test]
    fn connectivity_decides_which_voxels_touch() {
        let grid =
            Grid { shape: [6, 6, 6], affine: [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]] };
        let mask = MaskedGrid::from_mask(grid.clone(), &vec![1.0; grid.len()]).unwrap();
        let mut bits = vec![0u64; mask.len()];
        for [i, j, k] in [[0, 0, 0], [1, 0, 0], [4, 0, 0], [5, 1, 0], [0, 4, 4], [1, 5, 5]] {
            bits[grid.index(i, j, k)] = 1;
        }
        let sizes = |connectivity| {
            let mut sizes: Vec<usize> =
                components(&bits, &Neighbours::build(&mask, connectivity).unwrap()).iter().map(Vec::len).collect();
            sizes.sort_unstable();
            sizes
        };
        assert_eq!(sizes(Connectivity::Faces6), vec![1, 1, 1, 1, 2]);
        assert_eq!(sizes(Connectivity::Edges18), vec![1, 1, 2, 2]);
        assert_eq!(sizes(Connectivity::Corners26), vec![2, 2, 2]);
        // The largest-cluster count of a permutation word agrees, and a voxel outside the mask
        // breaks a cluster.
        let neighbours = Neighbours::build(&mask, Connectivity::Corners26).unwrap();
        let active: Vec<u32> = (0..bits.len() as u32).filter(|&v| bits[v as usize] == 1).collect();
        let (mut parent, mut size) = (vec![0; bits.len()], vec![0; bits.len()]);
        assert_eq!(union_find(&active, &bits, 0, &neighbours, &mut parent, &mut size), 2);
        // A line of voxels listed backwards, with (3, 0, 0) outside the mask.
        let ijk = [[5, 0, 0], [4, 0, 0], [2, 0, 0], [1, 0, 0], [0, 0, 0]];
        let line = MaskedGrid::from_ijk(grid, &ijk).unwrap();
        let groups = components(&[1; 5], &Neighbours::build(&line, Connectivity::Corners26).unwrap());
        assert_eq!(groups, vec![vec![0, 1], vec![2, 3, 4]]);
        assert!(MaskedGrid::from_ijk(line.grid.clone(), &[[0, 0, 0], [0, 0, 0]]).is_err());
        assert!(MaskedGrid::from_ijk(line.grid.clone(), &[[6, 0, 0]]).is_err());
    }

    #[test]
    fn q_and_t_round_trip() {
        for t in [-7.5, -3.1, 0.0, 0.4, 3.1, 12.0] {
            assert!((t_from_q(q_from_t(t, 17.0), 17.0) - t).abs() < 1e-12 * (1.0 + f64::abs(t)));
        }
        assert!((t_for_two_sided_p(t_two_sided_p(3.1, 20.0), 20.0) - 3.1).abs() < 1e-10);
    }
}

//! The network-based statistic (Zalesky et al. 2010) for edge-wise group analyses.
//!
//! Edges whose tail statistic exceeds the threshold (|t| > t₀ two-sided, as bctpy's
//! `tail = 'both'`; t > t₀ or −t > t₀ one-sided; strictly greater, as bctpy) form a graph on the
//! regions they join; a seed × target analysis gives a bipartite graph, an all-pairs one a square
//! graph, and either is handled as one graph on the named regions. Each connected component with
//! at least one edge has a size (its number of edges, as bctpy) or an intensity (the sum of its
//! edges' tail statistics). The FWE p of a component is #{b ≥ 0: largest component statistic of
//! permutation b ≥ its statistic} / (B + 1), over the same permutations (Freedman–Lane or sign
//! flips) as max-T, the observed map counting as permutation 0. The largest component of a map
//! is a [`super::voxelwise::MapStatistic`].

use super::voxelwise::Tail;

/// What a component is measured by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NbsStatistic {
    /// Number of edges.
    #[default]
    Size,
    /// Sum of the edges' tail statistics (|t|, t or −t).
    Intensity,
}

/// One connected component of supra-threshold edges.
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    /// Edge indices, ascending.
    pub edges: Vec<usize>,
    /// Number of regions it joins.
    pub nodes: usize,
    /// Its size or intensity.
    pub statistic: f64,
    /// FWE p (NaN without permutations).
    pub p_fwe: f64,
}

/// The edge graph of an analysis and how it is thresholded.
pub struct Nbs {
    endpoints: Vec<(u32, u32)>,
    nodes: usize,
    threshold: f64,
    statistic: NbsStatistic,
    tail: Tail,
}

impl Nbs {
    /// `endpoints`: each edge's two regions (by name); `threshold`: t₀ > 0.
    pub fn new(endpoints: &[(String, String)], threshold: f64, statistic: NbsStatistic, tail: Tail) -> Self {
        let mut names: Vec<&str> = endpoints.iter().flat_map(|(a, b)| [a.as_str(), b.as_str()]).collect();
        names.sort_unstable();
        names.dedup();
        let index = |n: &str| names.binary_search(&n).expect("listed") as u32;
        let endpoints = endpoints.iter().map(|(a, b)| (index(a), index(b))).collect();
        Nbs { endpoints, nodes: names.len(), threshold, statistic, tail }
    }

    /// The t threshold.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    fn tail_stat(&self, t: f64) -> f64 {
        match self.tail {
            Tail::TwoSided => t.abs(),
            Tail::Positive => t,
            Tail::Negative => -t,
        }
    }

    /// The components of a t map (one value per edge; NaN never exceeds), largest statistic
    /// first (then by first edge), with NaN p.
    pub fn components(&self, t: &[f64]) -> Vec<Component> {
        let mut parent: Vec<u32> = (0..self.nodes as u32).collect();
        fn find(parent: &mut [u32], mut x: u32) -> u32 {
            while parent[x as usize] != x {
                parent[x as usize] = parent[parent[x as usize] as usize];
                x = parent[x as usize];
            }
            x
        }
        let supra: Vec<usize> = (0..t.len()).filter(|&e| self.tail_stat(t[e]) > self.threshold).collect();
        for &e in &supra {
            let (a, b) = self.endpoints[e];
            let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
            if ra != rb {
                parent[ra.max(rb) as usize] = ra.min(rb);
            }
        }
        let mut slot = vec![usize::MAX; self.nodes];
        let mut components: Vec<Component> = Vec::new();
        let mut members: Vec<Vec<u32>> = Vec::new();
        for &e in &supra {
            let root = find(&mut parent, self.endpoints[e].0) as usize;
            if slot[root] == usize::MAX {
                slot[root] = components.len();
                components.push(Component { edges: Vec::new(), nodes: 0, statistic: 0.0, p_fwe: f64::NAN });
                members.push(Vec::new());
            }
            let c = &mut components[slot[root]];
            c.edges.push(e);
            c.statistic += match self.statistic {
                NbsStatistic::Size => 1.0,
                NbsStatistic::Intensity => self.tail_stat(t[e]),
            };
            let (a, b) = self.endpoints[e];
            members[slot[root]].extend([a, b]);
        }
        for (c, mut m) in components.iter_mut().zip(members) {
            m.sort_unstable();
            m.dedup();
            c.nodes = m.len();
        }
        components.sort_by(|a, b| b.statistic.total_cmp(&a.statistic).then(a.edges[0].cmp(&b.edges[0])));
        components
    }

    /// The largest component statistic of a t map (0 without supra-threshold edges).
    pub fn maximum(&self, t: &[f64]) -> f64 {
        self.components(t).first().map_or(0.0, |c| c.statistic)
    }

    /// The observed components with FWE p from the null maxima (identity first, B + 1 values).
    pub fn infer(&self, t: &[f64], null_max: &[f64], permutations: usize) -> Vec<Component> {
        let mut sorted = null_max.to_vec();
        sorted.sort_by(f64::total_cmp);
        let mut components = self.components(t);
        for c in &mut components {
            let at = c.statistic - 1e-10 * c.statistic.abs();
            c.p_fwe = if permutations == 0 {
                f64::NAN
            } else {
                (sorted.len() - sorted.partition_point(|&m| m < at)) as f64 / (permutations + 1) as f64
            };
        }
        components
    }
}

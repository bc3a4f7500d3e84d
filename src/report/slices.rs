//! Slice montages of voxelwise group maps: the t map as grey background; coloured by sign, the
//! voxels with p_FWE < .05 — inside a cluster with cluster-extent p_FWE < .05 (rebuilt from its
//! peak, the cluster-forming threshold and the connectivity) or voxel-level max-T p_FWE < .05 —
//! and the significant clusters outlined in black. The montage is one RGB PNG (written
//! here with flate2, already a dependency, so no image crate is needed), embedded as a data URI in
//! an SVG that also lists the thresholded voxels (`data-voxels`, i,j,k) so the figure can be
//! checked against the map. Region sets are drawn the same way ([`region_slices`]): orthogonal
//! slices of the published label image, each region in its colour, over the grid's published
//! mean BOLD volume in grey.

use super::charts::esc;
use base64::Engine as _;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write as _;

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// Encode an 8-bit RGB image (row-major, top row first) as PNG.
pub fn png_rgb(width: usize, height: usize, rgb: &[u8]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(height * (3 * width + 1));
    for row in rgb.chunks(3 * width) {
        raw.push(0);
        raw.extend_from_slice(row);
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&raw).expect("in memory");
    let idat = z.finish().expect("in memory");
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&(width as u32).to_be_bytes());
    ihdr.extend_from_slice(&(height as u32).to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &idat);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// A 3D map on a grid (x fastest).
pub struct Volume<'a> {
    pub shape: [usize; 3],
    pub t: &'a [f64],
    pub p_fwe: Option<&'a [f64]>,
    /// |t| at or above this is inside a cluster-forming region (outlined).
    pub cluster_t: Option<f64>,
    /// Peaks (i, j, k) of the clusters with cluster-extent p_FWE < .05.
    pub peaks: Vec<[usize; 3]>,
    /// Cluster connectivity: 6, 18 or 26 neighbours.
    pub connectivity: u8,
}

/// The voxels of the significant clusters: flood fill from each peak through voxels whose |t|
/// reaches the cluster-forming threshold with the peak's sign (the clusters the analysis found).
fn cluster_voxels(v: &Volume<'_>) -> Vec<bool> {
    let [nx, ny, nz] = v.shape;
    let mut inside = vec![false; nx * ny * nz];
    let Some(threshold) = v.cluster_t else { return inside };
    let index = |i: usize, j: usize, k: usize| i + nx * (j + ny * k);
    for peak in &v.peaks {
        let [pi, pj, pk] = *peak;
        if pi >= nx || pj >= ny || pk >= nz {
            continue;
        }
        let sign = v.t[index(pi, pj, pk)].signum();
        let mut stack = vec![*peak];
        while let Some([i, j, k]) = stack.pop() {
            let at = index(i, j, k);
            if inside[at] || v.t[at] * sign < threshold {
                continue;
            }
            inside[at] = true;
            for dk in -1i64..=1 {
                for dj in -1i64..=1 {
                    for di in -1i64..=1 {
                        let order = di.abs() + dj.abs() + dk.abs();
                        let allowed = match v.connectivity {
                            6 => order == 1,
                            18 => order == 1 || order == 2,
                            _ => order >= 1,
                        };
                        let (a, b, c) = (i as i64 + di, j as i64 + dj, k as i64 + dk);
                        if allowed
                            && a >= 0
                            && b >= 0
                            && c >= 0
                            && (a as usize) < nx
                            && (b as usize) < ny
                            && (c as usize) < nz
                        {
                            stack.push([a as usize, b as usize, c as usize]);
                        }
                    }
                }
            }
        }
    }
    inside
}

impl Volume<'_> {
    fn at(&self, values: &[f64], i: usize, j: usize, k: usize) -> f64 {
        values[i + self.shape[0] * (j + self.shape[1] * k)]
    }
}

/// The montage as an SVG figure: axial slices through the extent of non-zero t.
pub fn montage(title: &str, v: &Volume<'_>) -> String {
    let [nx, ny, nz] = v.shape;
    let nonzero: Vec<usize> =
        (0..nz).filter(|&k| (0..ny).any(|j| (0..nx).any(|i| v.at(v.t, i, j, k) != 0.0))).collect();
    let (k0, k1) = (nonzero.first().copied().unwrap_or(0), nonzero.last().copied().unwrap_or(nz.saturating_sub(1)));
    let count = 8.min(k1 - k0 + 1).max(1);
    // The slices of the cluster peaks first, then evenly spaced ones through the map.
    let clustered = cluster_voxels(v);
    let mut slices: Vec<usize> = v.peaks.iter().map(|p| p[2]).filter(|&k| k < nz).take(4).collect();
    for s in 0..count {
        let k = k0 + (s * (k1 - k0)) / (count - 1).max(1);
        if slices.len() < count && !slices.contains(&k) {
            slices.push(k);
        }
    }
    slices.sort_unstable();
    slices.dedup();
    let count = slices.len();
    let scale = (240 / nx.max(ny)).clamp(1, 8);
    let cols = count.min(4);
    let rows = count.div_ceil(cols);
    let (w, h) = (cols * nx * scale, rows * ny * scale);
    let mut rgb = vec![0u8; w * h * 3];
    let tmax = v.t.iter().fold(0.0f64, |m, x| m.max(x.abs())).max(1e-12);
    let mut voxels = Vec::new();
    for (s, &k) in slices.iter().enumerate() {
        let (ox, oy) = ((s % cols) * nx * scale, (s / cols) * ny * scale);
        for j in 0..ny {
            for i in 0..nx {
                let t = v.at(v.t, i, j, k);
                let significant = clustered[i + nx * (j + ny * k)]
                    || v.p_fwe.is_some_and(|p| {
                        let p = v.at(p, i, j, k);
                        t != 0.0 && p.is_finite() && p < 0.05
                    });
                let inside = |ii: usize, jj: usize| clustered[ii + nx * (jj + ny * k)];
                let edge = inside(i, j)
                    && (i == 0
                        || j == 0
                        || i + 1 == nx
                        || j + 1 == ny
                        || !inside(i - 1, j)
                        || !inside(i + 1, j)
                        || !inside(i, j - 1)
                        || !inside(i, j + 1));
                let grey = (40.0 + 160.0 * (t.abs() / tmax)) as u8;
                let colour = if edge {
                    [0, 0, 0]
                } else if significant && t > 0.0 {
                    voxels.push(format!("{i},{j},{k}"));
                    [255, (80.0 + 175.0 * (t / tmax).min(1.0)) as u8, 0]
                } else if significant {
                    voxels.push(format!("{i},{j},{k}"));
                    [0, (80.0 + 175.0 * (-t / tmax).min(1.0)) as u8, 255]
                } else if t == 0.0 {
                    [0, 0, 0]
                } else {
                    [grey, grey, grey]
                };
                if edge && significant {
                    voxels.push(format!("{i},{j},{k}"));
                }
                // Radiological convention is not assumed: x increases to the right, y upwards.
                for dy in 0..scale {
                    for dx in 0..scale {
                        let px = ox + i * scale + dx;
                        let py = oy + (ny - 1 - j) * scale + dy;
                        rgb[3 * (py * w + px)..3 * (py * w + px) + 3].copy_from_slice(&colour);
                    }
                }
            }
        }
    }
    let png = base64::engine::general_purpose::STANDARD.encode(png_rgb(w, h, &rgb));
    let listed = if voxels.len() <= 20_000 { voxels.join(";") } else { String::new() };
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" width=\"{w}\" height=\"{}\" viewBox=\"0 0 {w} {}\" font-family=\"sans-serif\" font-size=\"11\" \
         class=\"montage\" data-slices=\"{}\" data-significant=\"{}\" data-voxels=\"{listed}\">\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/><text x=\"4\" y=\"14\" font-size=\"13\">{}</text>\
         <image x=\"0\" y=\"20\" width=\"{w}\" height=\"{h}\" href=\"data:image/png;base64,{png}\"/>",
        h + 38,
        h + 38,
        slices.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(","),
        voxels.len(),
        esc(title),
    );
    for (s, k) in slices.iter().enumerate() {
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" fill=\"white\">k={k}</text>",
            (s % cols) * nx * scale + 3,
            20 + (s / cols) * ny * scale + 12
        );
    }
    let _ = write!(
        svg,
        "<text x=\"4\" y=\"{}\">red/yellow: t &gt; 0, blue: t &lt; 0 at voxel p_FWE &lt; .05; black outline: significant clusters</text></svg>",
        h + 34
    );
    svg
}

/// A colour per region label (distinct hues, cycling after twelve).
fn label_colour(label: usize) -> [u8; 3] {
    const COLOURS: [[u8; 3]; 12] = [
        [230, 25, 75],
        [60, 180, 75],
        [255, 225, 25],
        [0, 130, 200],
        [245, 130, 48],
        [145, 30, 180],
        [70, 240, 240],
        [240, 50, 230],
        [210, 245, 60],
        [250, 190, 212],
        [0, 128, 128],
        [220, 190, 255],
    ];
    COLOURS[(label + COLOURS.len() - 1) % COLOURS.len()]
}

/// A label image and, when published, the reference image it is drawn over (both flat, i
/// fastest, on the same grid).
pub struct LabelVolume<'a> {
    pub shape: [usize; 3],
    pub labels: &'a [f64],
    /// The grid's mean BOLD volume.
    pub reference: Option<&'a [f64]>,
}

/// The grey window of a reference image: the 2nd and 98th percentiles of its finite non-zero
/// voxels (so a few bright voxels do not flatten the rest); None without such voxels.
pub fn reference_window(values: &[f64]) -> Option<(f64, f64)> {
    let mut inside: Vec<f64> = values.iter().copied().filter(|v| v.is_finite() && *v != 0.0).collect();
    if inside.is_empty() {
        return None;
    }
    inside.sort_by(f64::total_cmp);
    let at = |q: f64| inside[((q * (inside.len() - 1) as f64).round() as usize).min(inside.len() - 1)];
    Some((at(0.02), at(0.98)))
}

/// The grey level of a reference voxel: black where the image is zero or not finite, else
/// 40–240 linearly across `window` (clamped).
pub fn reference_grey(value: f64, window: (f64, f64)) -> u8 {
    if !value.is_finite() || value == 0.0 {
        return 0;
    }
    let (lo, hi) = window;
    let x = if hi > lo { ((value - lo) / (hi - lo)).clamp(0.0, 1.0) } else { 0.5 };
    (40.0 + 200.0 * x).round() as u8
}

/// The slices that show a set: axial, coronal, sagittal, each placed where it shows the most of
/// the set's labels not yet shown by the previous ones; then up to three more while a region is
/// still unseen. Returns the (axis, index) planes and the labels they show.
fn choose_planes(
    shape: [usize; 3],
    at: &dyn Fn(usize, usize, usize) -> usize,
    ours: &BTreeSet<usize>,
) -> (Vec<(usize, usize)>, BTreeSet<usize>) {
    let [nx, ny, nz] = shape;
    let mut shown = BTreeSet::new();
    let mut planes = Vec::new();
    for (step, axis) in [2usize, 1, 0, 2, 1, 0].into_iter().enumerate() {
        if step >= 3 && shown.len() == ours.len() {
            break;
        }
        let n = shape[axis];
        let in_plane = |s: usize| -> BTreeSet<usize> {
            let mut out = BTreeSet::new();
            let (a, b) = match axis {
                0 => (ny, nz),
                1 => (nx, nz),
                _ => (nx, ny),
            };
            for u in 0..a {
                for v in 0..b {
                    let l = match axis {
                        0 => at(s, u, v),
                        1 => at(u, s, v),
                        _ => at(u, v, s),
                    };
                    if ours.contains(&l) {
                        out.insert(l);
                    }
                }
            }
            out
        };
        let best = (0..n)
            .map(|s| {
                let labels = in_plane(s);
                (labels.difference(&shown).count(), labels.len(), s)
            })
            .max_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)).then(b.2.cmp(&a.2)))
            .map_or(n / 2, |b| b.2);
        shown.extend(in_plane(best));
        planes.push((axis, best));
    }
    (planes, shown)
}

/// One region set drawn as orthogonal slices of the label image (see [`choose_planes`]), each
/// region in its own colour over the grid's reference image in grey ([`reference_grey`]; voxels
/// of other sets show the reference). Without a reference, other sets are dim grey and the rest
/// of the grid dark. `set` lists the set's regions (label, name). The SVG lists the labels the
/// slices show (`data-labels-shown`), the planes, the pixels per voxel (`data-scale`) and the
/// grey window (`data-window`), so the picture can be recomputed from the published images.
pub fn region_slices(title: &str, volume: &LabelVolume<'_>, set: &[(usize, String)]) -> String {
    let shape = volume.shape;
    let [nx, ny, nz] = shape;
    let index = |i: usize, j: usize, k: usize| i + nx * (j + ny * k);
    let at = |i: usize, j: usize, k: usize| volume.labels[index(i, j, k)] as usize;
    let ours: BTreeSet<usize> = set.iter().map(|s| s.0).collect();
    let (planes, shown) = choose_planes(shape, &at, &ours);
    let window = volume.reference.and_then(reference_window);
    let scale = (160 / nx.max(ny).max(nz)).clamp(1, 8);
    let dims = |axis: usize| match axis {
        0 => (ny, nz),
        1 => (nx, nz),
        _ => (nx, ny),
    };
    let w: usize = planes.iter().map(|&(a, _)| dims(a).0 * scale).sum::<usize>() + 4 * (planes.len() - 1);
    let h = planes.iter().map(|&(a, _)| dims(a).1 * scale).max().unwrap_or(1);
    let mut rgb = vec![255u8; w * h * 3];
    let mut ox = 0;
    for &(axis, s) in &planes {
        let (a, b) = dims(axis);
        for u in 0..a {
            for v in 0..b {
                let (i, j, k) = match axis {
                    0 => (s, u, v),
                    1 => (u, s, v),
                    _ => (u, v, s),
                };
                let l = at(i, j, k);
                let colour = match (ours.contains(&l), volume.reference.zip(window)) {
                    (true, _) => label_colour(l),
                    (false, Some((reference, window))) => [reference_grey(reference[index(i, j, k)], window); 3],
                    (false, None) if l != 0 => [110, 110, 110],
                    (false, None) => [30, 30, 30],
                };
                for dy in 0..scale {
                    for dx in 0..scale {
                        let (px, py) = (ox + u * scale + dx, (b - 1 - v) * scale + dy);
                        rgb[3 * (py * w + px)..3 * (py * w + px) + 3].copy_from_slice(&colour);
                    }
                }
            }
        }
        ox += a * scale + 4;
    }
    let png = base64::engine::general_purpose::STANDARD.encode(png_rgb(w, h, &rgb));
    let legend_h = 16 * set.len();
    let total_h = h + 38 + legend_h;
    let plane_list =
        |sep: &str| planes.iter().map(|(a, s)| format!("{}={s}", ["i", "j", "k"][*a])).collect::<Vec<_>>().join(sep);
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{total_h}\" viewBox=\"0 0 {width} {total_h}\" \
         font-family=\"sans-serif\" font-size=\"11\" class=\"regions\" data-regions=\"{}\" data-labels-shown=\"{}\" \
         data-planes=\"{}\" data-scale=\"{scale}\"{}><rect width=\"100%\" height=\"100%\" fill=\"white\"/>\
         <text x=\"4\" y=\"14\" font-size=\"13\">{}</text>\
         <image x=\"0\" y=\"20\" width=\"{w}\" height=\"{h}\" href=\"data:image/png;base64,{png}\"/>",
        set.len(),
        shown.iter().map(|l| l.to_string()).collect::<Vec<_>>().join(","),
        plane_list(","),
        window.map(|(lo, hi)| format!(" data-window=\"{lo},{hi}\"")).unwrap_or_default(),
        esc(title),
        width = w.max(260),
    );
    let _ = write!(
        svg,
        "<text x=\"4\" y=\"{}\">slices {}; {}</text>",
        h + 34,
        plane_list(", "),
        if window.is_some() { "grey: the mean BOLD volume" } else { "dark: the BOLD grid, grey: other region sets" }
    );
    for (row, (label, name)) in set.iter().enumerate() {
        let [r, g, b] = label_colour(*label);
        let y = h + 40 + 16 * row;
        let _ = write!(
            svg,
            "<rect x=\"4\" y=\"{y}\" width=\"12\" height=\"12\" fill=\"rgb({r},{g},{b})\"/><text x=\"20\" y=\"{}\" data-label=\"{label}\">{}{}</text>",
            y + 10,
            esc(name),
            if shown.contains(label) { "" } else { " (not in these slices)" }
        );
    }
    svg.push_str("</svg>");
    svg
}

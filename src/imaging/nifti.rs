//! NIfTI-1 and NIfTI-2 images, `.nii` and `.nii.gz`, read volume by volume.
//!
//! The header is parsed here for both versions rather than with the `nifti` crate: that crate
//! reads NIfTI-1 only, and its whole-image path copies the data twice and returns Fortran order
//! (see ../shared/CRATES.md). One small parser for both layouts keeps one code path, and the
//! streaming reader decompresses (zlib-rs) straight into a reusable volume buffer, so a 4D image
//! is never held in memory.
//!
//! Values are returned as `f64` after `scl_slope`/`scl_inter` scaling (as nibabel does: a slope
//! of 0 or NaN means no scaling). The affine is the sform when `sform_code > 0`, else the qform
//! when `qform_code > 0`, else a plain voxel-size scaling — nibabel's order of preference.

use crate::error::{Error, Result};
pub use coding::{Coding, Intent, Qform};

mod coding;
use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// Voxel storage types we read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    U8,
    I8,
    I16,
    U16,
    I32,
    U32,
    F32,
    F64,
}

impl DataType {
    fn from_code(code: i64) -> Option<DataType> {
        Some(match code {
            2 => DataType::U8,
            256 => DataType::I8,
            4 => DataType::I16,
            512 => DataType::U16,
            8 => DataType::I32,
            768 => DataType::U32,
            16 => DataType::F32,
            64 => DataType::F64,
            _ => return None,
        })
    }

    pub fn bytes(self) -> usize {
        match self {
            DataType::U8 | DataType::I8 => 1,
            DataType::I16 | DataType::U16 => 2,
            DataType::I32 | DataType::U32 | DataType::F32 => 4,
            DataType::F64 => 8,
        }
    }
}

/// What we need from a NIfTI header.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// 1 or 2.
    pub version: u8,
    /// Image dimensions (x, y, z, t, …); at least 3 entries, trailing 1s kept.
    pub dim: Vec<usize>,
    pub datatype: DataType,
    /// Voxel sizes (mm) and, in `pixdim[3]`, the repetition time in the header's time unit.
    pub pixdim: [f64; 7],
    pub vox_offset: u64,
    pub scl_slope: f64,
    pub scl_inter: f64,
    /// Voxel → world (mm) affine, rows of a 3×4 matrix.
    pub affine: [[f64; 4]; 3],
    pub big_endian: bool,
    /// Time unit code bits of `xyzt_units` (8 s, 16 ms, 24 µs).
    pub time_unit: u8,
    /// The xform code of the affine used: `sform_code` when positive, else `qform_code`, else 0
    /// (4 = MNI-152, as fMRIPrep codes template-space images).
    pub xform_code: i16,
    /// The qform, when the header has one that agrees with the sform (as nibabel and fMRIPrep
    /// write them): written images on this grid carry it too.
    pub qform: Option<Qform>,
}

impl Header {
    /// Voxels in one 3D volume.
    pub fn volume_len(&self) -> usize {
        self.dim[0] * self.dim[1] * self.dim[2]
    }
    /// Number of 3D volumes (product of dimensions 4 and up).
    pub fn volumes(&self) -> usize {
        self.dim[3..].iter().product::<usize>().max(1)
    }
    pub fn shape3(&self) -> [usize; 3] {
        [self.dim[0], self.dim[1], self.dim[2]]
    }
    /// Repetition time in seconds, if the header states one.
    pub fn tr_seconds(&self) -> Option<f64> {
        let t = self.pixdim[3];
        if !(t > 0.0) || self.dim.len() < 4 {
            return None;
        }
        Some(match self.time_unit {
            16 => t / 1000.0,
            24 => t / 1_000_000.0,
            _ => t,
        })
    }
    fn scaling(&self) -> Option<(f64, f64)> {
        (self.scl_slope != 0.0 && self.scl_slope.is_finite() && (self.scl_slope != 1.0 || self.scl_inter != 0.0))
            .then_some((self.scl_slope, if self.scl_inter.is_finite() { self.scl_inter } else { 0.0 }))
    }
}

fn le_or_be<const N: usize>(bytes: &[u8], at: usize, big: bool) -> [u8; N] {
    let mut b: [u8; N] = bytes[at..at + N].try_into().expect("in bounds");
    if big {
        b.reverse();
    }
    b
}

struct Fields<'a> {
    bytes: &'a [u8],
    big: bool,
}

impl Fields<'_> {
    fn i16(&self, at: usize) -> i64 {
        i16::from_le_bytes(le_or_be(self.bytes, at, self.big)) as i64
    }
    fn i32(&self, at: usize) -> i64 {
        i32::from_le_bytes(le_or_be(self.bytes, at, self.big)) as i64
    }
    fn i64(&self, at: usize) -> i64 {
        i64::from_le_bytes(le_or_be(self.bytes, at, self.big))
    }
    fn f32(&self, at: usize) -> f64 {
        f32::from_le_bytes(le_or_be(self.bytes, at, self.big)) as f64
    }
    fn f64(&self, at: usize) -> f64 {
        f64::from_le_bytes(le_or_be(self.bytes, at, self.big))
    }
}

/// Parse a header from the first 540 (or 348) bytes of a file.
pub fn parse_header(bytes: &[u8], path: &Path) -> Result<Header> {
    let bad = |what: &str| Error::data(format!("{}: not a valid NIfTI image ({what})", path.display()));
    if bytes.len() < 348 {
        return Err(bad("file shorter than a NIfTI header"));
    }
    let size_le = i32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes"));
    let size_be = i32::from_be_bytes(bytes[0..4].try_into().expect("4 bytes"));
    let (version, big) = match (size_le, size_be) {
        (348, _) => (1, false),
        (_, 348) => (1, true),
        (540, _) => (2, false),
        (_, 540) => (2, true),
        _ => return Err(bad("header size is neither 348 (NIfTI-1) nor 540 (NIfTI-2)")),
    };
    let f = Fields { bytes, big };
    let header = if version == 1 {
        if &bytes[344..347] != b"n+1" && &bytes[344..347] != b"ni1" {
            return Err(bad("missing the NIfTI-1 magic `n+1`"));
        }
        if &bytes[344..347] == b"ni1" {
            return Err(bad("a .hdr/.img pair; convert it to a single .nii file"));
        }
        let dim: Vec<i64> = (0..8).map(|i| f.i16(40 + 2 * i)).collect();
        let pixdim: Vec<f64> = (0..8).map(|i| f.f32(76 + 4 * i)).collect();
        let quatern = [f.f32(256), f.f32(260), f.f32(264), f.f32(268), f.f32(272), f.f32(276)];
        let srow = [0, 1, 2].map(|r| [0, 1, 2, 3].map(|c| f.f32(280 + 16 * r + 4 * c)));
        build(
            1,
            big,
            &dim,
            f.i16(70),
            &pixdim,
            f.f32(108) as i64,
            f.f32(112),
            f.f32(116),
            f.i16(252),
            f.i16(254),
            quatern,
            srow,
            bytes[123],
            path,
        )?
    } else {
        if bytes.len() < 540 {
            return Err(bad("file shorter than a NIfTI-2 header"));
        }
        if &bytes[4..7] != b"n+2" {
            return Err(bad("missing the NIfTI-2 magic `n+2`"));
        }
        let dim: Vec<i64> = (0..8).map(|i| f.i64(16 + 8 * i)).collect();
        let pixdim: Vec<f64> = (0..8).map(|i| f.f64(104 + 8 * i)).collect();
        let quatern = [f.f64(352), f.f64(360), f.f64(368), f.f64(376), f.f64(384), f.f64(392)];
        let srow = [0, 1, 2].map(|r| [0, 1, 2, 3].map(|c| f.f64(400 + 32 * r + 8 * c)));
        build(
            2,
            big,
            &dim,
            f.i16(12),
            &pixdim,
            f.i64(168),
            f.f64(176),
            f.f64(184),
            f.i32(344),
            f.i32(348),
            quatern,
            srow,
            (f.i32(500) & 0xff) as u8,
            path,
        )?
    };
    Ok(header)
}

#[allow(clippy::too_many_arguments)]
fn build(
    version: u8,
    big_endian: bool,
    dim: &[i64],
    datatype: i64,
    pixdim: &[f64],
    vox_offset: i64,
    scl_slope: f64,
    scl_inter: f64,
    qform_code: i64,
    sform_code: i64,
    quatern: [f64; 6],
    srow: [[f64; 4]; 3],
    xyzt_units: u8,
    path: &Path,
) -> Result<Header> {
    let bad = |what: String| Error::data(format!("{}: not a valid NIfTI image ({what})", path.display()));
    let ndim = dim[0];
    if !(1..=7).contains(&ndim) {
        return Err(bad(format!("dim[0] = {ndim}")));
    }
    let mut dims: Vec<usize> = Vec::new();
    for (i, &d) in dim[1..=ndim as usize].iter().enumerate() {
        if d < 1 {
            return Err(bad(format!("dimension {} has size {d}", i + 1)));
        }
        dims.push(d as usize);
    }
    while dims.len() < 3 {
        dims.push(1);
    }
    let datatype = DataType::from_code(datatype).ok_or_else(|| {
        bad(format!("unsupported datatype code {datatype}; supported: uint8, int8, int16, uint16, int32, uint32, float32, float64"))
    })?;
    let header_len = if version == 1 { 348 } else { 540 };
    if vox_offset < header_len {
        return Err(bad(format!("vox_offset {vox_offset} lies inside the header")));
    }
    let mut px = [1.0; 7];
    px.copy_from_slice(&pixdim[1..8]);
    let zooms = [px[0].abs(), px[1].abs(), px[2].abs()].map(|z| if z > 0.0 { z } else { 1.0 });
    let quaternion = (qform_code > 0).then(|| quaternion_affine(quatern, zooms, pixdim[0]));
    let agrees = |q: &[[f64; 4]; 3]| q.iter().flatten().zip(srow.iter().flatten()).all(|(a, b)| (a - b).abs() < 1e-4);
    let qform = quaternion.filter(|q| sform_code <= 0 || agrees(q)).map(|_| Qform {
        code: qform_code as i16,
        quatern,
        qfac: if pixdim[0] < 0.0 { -1.0 } else { 1.0 },
    });
    let affine = if sform_code > 0 {
        srow
    } else if let Some(q) = quaternion {
        q
    } else {
        [[zooms[0], 0.0, 0.0, 0.0], [0.0, zooms[1], 0.0, 0.0], [0.0, 0.0, zooms[2], 0.0]]
    };
    Ok(Header {
        version,
        dim: dims,
        datatype,
        pixdim: px,
        vox_offset: vox_offset as u64,
        scl_slope,
        scl_inter,
        affine,
        big_endian,
        time_unit: xyzt_units & 0x38,
        xform_code: if sform_code > 0 { sform_code as i16 } else { qform_code.max(0) as i16 },
        qform,
    })
}

/// The qform affine (NIfTI-1 standard, method 2).
fn quaternion_affine(q: [f64; 6], zooms: [f64; 3], qfac: f64) -> [[f64; 4]; 3] {
    let (b, c, d) = (q[0], q[1], q[2]);
    let a2 = 1.0 - (b * b + c * c + d * d);
    let (a, b, c, d) = if a2 < 1e-7 {
        let norm = (b * b + c * c + d * d).sqrt();
        (0.0, b / norm, c / norm, d / norm)
    } else {
        (a2.sqrt(), b, c, d)
    };
    let qfac = if qfac < 0.0 { -1.0 } else { 1.0 };
    let r = [
        [a * a + b * b - c * c - d * d, 2.0 * (b * c - a * d), 2.0 * (b * d + a * c)],
        [2.0 * (b * c + a * d), a * a + c * c - b * b - d * d, 2.0 * (c * d - a * b)],
        [2.0 * (b * d - a * c), 2.0 * (c * d + a * b), a * a + d * d - c * c - b * b],
    ];
    let scale = [zooms[0], zooms[1], zooms[2] * qfac];
    let mut out = [[0.0; 4]; 3];
    for i in 0..3 {
        for j in 0..3 {
            out[i][j] = r[i][j] * scale[j];
        }
        out[i][3] = q[3 + i];
    }
    out
}

/// A NIfTI image opened for streaming, one 3D volume at a time.
pub struct VolumeReader {
    pub header: Header,
    pub path: PathBuf,
    stream: Box<dyn Read + Send>,
    raw: Vec<u8>,
    next: usize,
}

fn open_stream(path: &Path) -> Result<Box<dyn Read + Send>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let buffered = BufReader::with_capacity(1 << 20, file);
    let gz = path.to_string_lossy().to_lowercase().ends_with(".gz");
    Ok(if gz { Box::new(BufReader::with_capacity(1 << 20, MultiGzDecoder::new(buffered))) } else { Box::new(buffered) })
}

fn read_full(stream: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match stream.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

impl VolumeReader {
    pub fn open(path: &Path) -> Result<VolumeReader> {
        let mut stream = open_stream(path)?;
        let mut head = vec![0u8; 540];
        let got = read_full(&mut stream, &mut head).map_err(|e| corrupt(path, &e))?;
        head.truncate(got);
        let header = parse_header(&head, path)?;
        // Skip to the data (extensions, if any, sit between the header and vox_offset).
        let skip = header.vox_offset as usize - got.min(header.vox_offset as usize);
        if got as u64 > header.vox_offset {
            // The data starts inside what we read (NIfTI-1 with vox_offset < 540).
            let already = head[header.vox_offset as usize..].to_vec();
            let chained = std::io::Cursor::new(already).chain(stream);
            stream = Box::new(chained);
        } else {
            let mut sink = vec![0u8; skip];
            let n = read_full(&mut stream, &mut sink).map_err(|e| corrupt(path, &e))?;
            if n < skip {
                return Err(truncated(path, 0, header.volumes()));
            }
        }
        let raw = vec![0u8; header.volume_len() * header.datatype.bytes()];
        Ok(VolumeReader { header, path: path.to_path_buf(), stream, raw, next: 0 })
    }

    /// Read the next volume into `out` (length = voxels per volume), scaled. Returns false at the end.
    pub fn next_volume(&mut self, out: &mut [f64]) -> Result<bool> {
        if self.next >= self.header.volumes() {
            return Ok(false);
        }
        let n = read_full(&mut self.stream, &mut self.raw).map_err(|e| corrupt(&self.path, &e))?;
        if n < self.raw.len() {
            return Err(truncated(&self.path, self.next, self.header.volumes()));
        }
        decode(&self.raw, self.header.datatype, self.header.big_endian, self.header.scaling(), out);
        self.next += 1;
        Ok(true)
    }
}

fn corrupt(path: &Path, e: &std::io::Error) -> Error {
    Error::data(format!("{}: cannot read the image ({e}); the file is corrupt or not a NIfTI image", path.display()))
}

fn truncated(path: &Path, volume: usize, volumes: usize) -> Error {
    Error::data(format!(
        "{}: the file ends inside volume {} of {volumes}; it is truncated (an interrupted copy or download?)",
        path.display(),
        volume + 1
    ))
}

fn decode(raw: &[u8], datatype: DataType, big: bool, scaling: Option<(f64, f64)>, out: &mut [f64]) {
    // Scaling in f64, as nibabel's get_fdata does.
    let (slope, inter) = scaling.unwrap_or((1.0, 0.0));
    let scaled = scaling.is_some();
    macro_rules! convert {
        ($t:ty, $n:expr) => {
            for (o, chunk) in out.iter_mut().zip(raw.chunks_exact($n)) {
                let mut b: [u8; $n] = chunk.try_into().expect("chunk size");
                if big {
                    b.reverse();
                }
                let v = <$t>::from_le_bytes(b) as f64;
                *o = if scaled { v * slope + inter } else { v };
            }
        };
    }
    match datatype {
        DataType::U8 => convert!(u8, 1),
        DataType::I8 => convert!(i8, 1),
        DataType::I16 => convert!(i16, 2),
        DataType::U16 => convert!(u16, 2),
        DataType::I32 => convert!(i32, 4),
        DataType::U32 => convert!(u32, 4),
        DataType::F32 => convert!(f32, 4),
        DataType::F64 => convert!(f64, 8),
    }
}

/// Read a whole 3D image (label maps, masks).
pub fn read_3d(path: &Path) -> Result<(Header, Vec<f64>)> {
    let mut reader = VolumeReader::open(path)?;
    let mut data = vec![0.0f64; reader.header.volume_len()];
    if reader.header.volumes() != 1 {
        return Err(Error::data(format!(
            "{}: expected a 3D image, found {} volumes",
            path.display(),
            reader.header.volumes()
        )));
    }
    reader.next_volume(&mut data)?;
    Ok((reader.header, data))
}

/// Write a NIfTI-1 float32 image (`.nii`, or `.nii.gz` at compression level 1, by extension).
/// `dim` has 3 or 4 entries. The affine is written as the sform (sform_code 2, "aligned"),
/// qform_code 0; `tr` (seconds) goes to pixdim[4].
pub fn write_f32(path: &Path, dim: &[usize], affine: [[f64; 4]; 3], tr: Option<f64>, data: &[f32]) -> Result<()> {
    write_f32_coded(path, dim, affine, tr, data, Coding::PLAIN)
}

/// [`write_f32`] with the affine's xform code and the values' intent given: the affine is the
/// sform with `coding.xform_code` (and the source's qform with its code when `coding.qform`
/// has one, else qform_code 0), the intent goes to `intent_code`,
/// `intent_p1` and `intent_name`.
pub fn write_f32_coded(
    path: &Path,
    dim: &[usize],
    affine: [[f64; 4]; 3],
    tr: Option<f64>,
    data: &[f32],
    coding: Coding,
) -> Result<()> {
    let mut header = vec![0u8; 352];
    let put_i16 = |h: &mut Vec<u8>, at: usize, v: i16| h[at..at + 2].copy_from_slice(&v.to_le_bytes());
    let put_f32 = |h: &mut Vec<u8>, at: usize, v: f32| h[at..at + 4].copy_from_slice(&v.to_le_bytes());
    header[0..4].copy_from_slice(&348i32.to_le_bytes());
    put_i16(&mut header, 40, dim.len() as i16);
    for (i, d) in dim.iter().enumerate() {
        put_i16(&mut header, 42 + 2 * i, *d as i16);
    }
    for i in dim.len()..7 {
        put_i16(&mut header, 42 + 2 * i, 1);
    }
    put_i16(&mut header, 70, 16);
    put_i16(&mut header, 72, 32);
    put_f32(&mut header, 76, coding.qform.map_or(1.0, |q| q.qfac) as f32);
    for c in 0..3 {
        let zoom = affine.iter().map(|row| row[c] * row[c]).sum::<f64>().sqrt();
        put_f32(&mut header, 80 + 4 * c, zoom as f32);
    }
    put_f32(&mut header, 92, tr.unwrap_or(0.0) as f32);
    put_f32(&mut header, 108, 352.0);
    put_f32(&mut header, 112, 1.0);
    header[123] = 2 | if tr.is_some() { 8 } else { 0 }; // mm, seconds
    put_f32(&mut header, 56, coding.intent.p1);
    put_i16(&mut header, 68, coding.intent.code);
    let name = coding.intent.name.as_bytes();
    header[328..328 + name.len().min(15)].copy_from_slice(&name[..name.len().min(15)]);
    put_i16(&mut header, 254, coding.xform_code);
    if let Some(q) = coding.qform {
        put_i16(&mut header, 252, q.code);
        for (i, v) in q.quatern.iter().enumerate() {
            put_f32(&mut header, 256 + 4 * i, *v as f32);
        }
    }
    for (r, row) in affine.iter().enumerate() {
        for (c, value) in row.iter().enumerate() {
            put_f32(&mut header, 280 + 16 * r + 4 * c, *value as f32);
        }
    }
    header[344..348].copy_from_slice(b"n+1\0");
    let mut bytes = header;
    bytes.reserve(data.len() * 4);
    for v in data {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    let out = if path.to_string_lossy().to_lowercase().ends_with(".gz") {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(1));
        encoder.write_all(&bytes).map_err(|e| Error::io(path, e))?;
        encoder.finish().map_err(|e| Error::io(path, e))?
    } else {
        bytes
    };
    std::fs::write(path, out).map_err(|e| Error::io(path, e))
}

/// Write a map of values at masked voxels as a 3D float32 image: `voxels` are flat indices
/// (i fastest) into a grid of `shape`, `values` one per masked voxel (a t map, p values);
/// every other voxel is `fill`. The affine is the data's (BOLD or mask) affine, coded as
/// `coding` says.
pub fn write_masked_f32(
    path: &Path,
    shape: [usize; 3],
    affine: [[f64; 4]; 3],
    voxels: &[usize],
    values: &[f64],
    fill: f32,
    coding: Coding,
) -> Result<()> {
    let len = shape.iter().product::<usize>();
    if voxels.len() != values.len() {
        return Err(Error::data(format!(
            "{}: {} values for {} masked voxels",
            path.display(),
            values.len(),
            voxels.len()
        )));
    }
    let mut volume = vec![fill; len];
    for (&v, &value) in voxels.iter().zip(values) {
        let slot = volume.get_mut(v).ok_or_else(|| {
            Error::data(format!("{}: masked voxel {v} lies outside the grid {shape:?}", path.display()))
        })?;
        *slot = value as f32;
    }
    write_f32_coded(path, &shape, affine, None, &volume, coding)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.nii.gz");
        let affine = [[2.0, 0.0, 0.0, -10.0], [0.0, 2.0, 0.0, -12.0], [0.0, 0.0, 2.0, -8.0]];
        let data: Vec<f32> = (0..2 * 3 * 4 * 5).map(|i| i as f32 * 0.5).collect();
        write_f32(&path, &[2, 3, 4, 5], affine, Some(2.0), &data).unwrap();
        let mut reader = VolumeReader::open(&path).unwrap();
        assert_eq!(reader.header.dim, vec![2, 3, 4, 5]);
        assert_eq!(reader.header.affine, affine);
        assert_eq!(reader.header.tr_seconds(), Some(2.0));
        let mut volume = vec![0.0; 24];
        for t in 0..5 {
            assert!(reader.next_volume(&mut volume).unwrap());
            assert_eq!(volume[1], data[t * 24 + 1] as f64);
        }
        assert!(!reader.next_volume(&mut volume).unwrap());

        // Truncated: cut the compressed stream in half.
        let bytes = std::fs::read(&path).unwrap();
        let cut = dir.path().join("cut.nii.gz");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let mut reader = VolumeReader::open(&cut).unwrap();
        let err = (0..5).map(|_| reader.next_volume(&mut volume)).find_map(Result::err).unwrap().to_string();
        assert!(err.contains("cut.nii.gz") && (err.contains("truncated") || err.contains("corrupt")), "{err}");
        // Not an image at all.
        let junk = dir.path().join("junk.nii");
        std::fs::write(&junk, b"hello").unwrap();
        assert!(VolumeReader::open(&junk).err().unwrap().to_string().contains("not a valid NIfTI"));
    }
}

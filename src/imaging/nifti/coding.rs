//! How a written image is coded: the xform code of its affine and the intent of its values.

use super::Header;

/// What a written image's values mean (NIfTI-1 `intent_code`, `intent_p1`, `intent_name`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Intent {
    pub code: i16,
    /// First intent parameter (the degrees of freedom of a t map).
    pub p1: f32,
    /// Up to 15 bytes.
    pub name: &'static str,
}

impl Intent {
    /// No particular meaning (NIFTI_INTENT_NONE).
    pub const NONE: Intent = Intent { code: 0, p1: 0.0, name: "" };
    /// p-values (NIFTI_INTENT_PVAL).
    pub const PVALUE: Intent = Intent { code: 22, p1: 0.0, name: "p" };
    /// An estimate of a parameter, e.g. a Fisher-z connectivity or TFCE value (NIFTI_INTENT_ESTIMATE).
    pub const ESTIMATE: Intent = Intent { code: 1001, p1: 0.0, name: "estimate" };
    /// Region labels (NIFTI_INTENT_LABEL).
    pub const LABEL: Intent = Intent { code: 1002, p1: 0.0, name: "label" };

    /// Student t values with `dof` degrees of freedom (NIFTI_INTENT_TTEST).
    pub fn t(dof: f64) -> Intent {
        Intent { code: 3, p1: dof as f32, name: "t" }
    }
}

/// A header's qform: its code, quaternion b, c, d and offsets x, y, z (mm), and qfac (±1, the
/// sign of `pixdim[0]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Qform {
    pub code: i16,
    pub quatern: [f64; 6],
    pub qfac: f64,
}

/// How a written image is coded: the xform code of its affine (written as the sform; 4 =
/// MNI-152, 2 = aligned to another image, 1 = scanner), the source's qform if it had one, and
/// its intent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coding {
    pub xform_code: i16,
    /// Written as the qform (None: qform_code 0).
    pub qform: Option<Qform>,
    pub intent: Intent,
}

impl Coding {
    /// An affine aligned to another image, values without a declared meaning.
    pub const PLAIN: Coding = Coding { xform_code: 2, qform: None, intent: Intent::NONE };

    /// The xform code of `source` (the image whose grid is written: 4 for MNI templates as
    /// fMRIPrep writes them) and its qform (when it agrees with the sform), with `intent`.
    pub fn like(source: &Header, intent: Intent) -> Coding {
        Coding { xform_code: if source.xform_code > 0 { source.xform_code } else { 2 }, qform: source.qform, intent }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::nifti::{read_3d, write_f32_coded};

    /// MNI-152 at 2 mm, as fMRIPrep writes it: sform and qform both code 4, the same affine.
    const AFFINE: [[f64; 4]; 3] = [[2.0, 0.0, 0.0, -90.0], [0.0, 2.0, 0.0, -126.0], [0.0, 0.0, 2.0, -72.0]];
    const QFORM: Qform = Qform { code: 4, quatern: [0.0, 0.0, 0.0, -90.0, -126.0, -72.0], qfac: 1.0 };

    fn written(affine: [[f64; 4]; 3], qform: Option<Qform>) -> Header {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("map.nii");
        let coding = Coding { xform_code: 4, qform, intent: Intent::ESTIMATE };
        write_f32_coded(&path, &[2, 2, 2], affine, None, &[0.0; 8], coding).unwrap();
        // The raw header fields, read without the reader's interpretation.
        let bytes = std::fs::read(&path).unwrap();
        let i16_at = |at: usize| i16::from_le_bytes([bytes[at], bytes[at + 1]]);
        let f32_at = |at: usize| f32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let code = qform.map_or(0, |q| q.code);
        assert_eq!((i16_at(252), i16_at(254)), (code, 4), "qform_code and sform_code");
        let quatern: Vec<f32> = (0..6).map(|i| f32_at(256 + 4 * i)).collect();
        let expected: Vec<f32> = qform.map_or([0.0; 6], |q| q.quatern).iter().map(|v| *v as f32).collect();
        assert_eq!(quatern, expected);
        read_3d(&path).unwrap().0
    }

    #[test]
    fn a_source_qform_that_agrees_with_the_sform_is_carried_to_written_maps() {
        let header = written(AFFINE, Some(QFORM));
        assert_eq!(header.qform, Some(QFORM));
        // A map written "like" it carries the same qform again.
        assert_eq!(Coding::like(&header, Intent::ESTIMATE).qform, Some(QFORM));
        assert_eq!(header.affine, AFFINE);
    }

    #[test]
    fn without_a_qform_or_with_one_that_disagrees_none_is_carried() {
        assert_eq!(written(AFFINE, None).qform, None);
        let shifted = Qform { quatern: [0.0, 0.0, 0.0, -80.0, -126.0, -72.0], ..QFORM };
        let header = written(AFFINE, Some(shifted));
        assert_eq!(header.qform, None, "the qform (x offset −80) disagrees with the sform (−90)");
        assert_eq!(Coding::like(&header, Intent::ESTIMATE).qform, None);
    }
}

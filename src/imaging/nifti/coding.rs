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

/// How a written image is coded: the xform code of its affine (written as the sform; 4 =
/// MNI-152, 2 = aligned to another image, 1 = scanner) and its intent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coding {
    pub xform_code: i16,
    pub intent: Intent,
}

impl Coding {
    /// An affine aligned to another image, values without a declared meaning.
    pub const PLAIN: Coding = Coding { xform_code: 2, intent: Intent::NONE };

    /// The xform code of `source` (the image whose grid is written: 4 for MNI templates as
    /// fMRIPrep writes them), with `intent`.
    pub fn like(source: &Header, intent: Intent) -> Coding {
        Coding { xform_code: if source.xform_code > 0 { source.xform_code } else { 2 }, intent }
    }
}

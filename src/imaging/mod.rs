//! Imaging: NIfTI streaming, regions on a grid, region time series, denoising, connectivity.

pub mod confounds;
pub mod connectivity;
pub mod denoise;
pub mod discover;
pub mod extract;
pub mod filter;
pub mod interpolate;
pub mod nifti;
pub mod regions;
pub mod run;

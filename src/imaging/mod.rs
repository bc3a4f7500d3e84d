//! Imaging: NIfTI streaming, regions on a grid, region time series, denoising, connectivity.

pub mod nifti;

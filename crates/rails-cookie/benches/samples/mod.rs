//! Criterion's samples of the run that just finished, read back from `target/criterion` for the benches' summaries.
//!
//! The machines are small VMs with noisy neighbours: a median can move by 50% between runs. Each measurement is
//! therefore summarised by its fastest sample (the per-iteration time of the quickest of criterion's ~100 samples),
//! the best estimate of the code's own cost, with the median beside it.

use std::path::PathBuf;

/// Where criterion writes its results.
pub(crate) fn criterion_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("criterion")
}

fn read(id: &str, file: &str) -> Option<serde_json::Value> {
    let path = criterion_dir().join(id).join("new").join(file);
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// The fastest sample of benchmark `id`, in nanoseconds per iteration.
pub(crate) fn fastest(id: &str) -> Option<f64> {
    let s = read(id, "sample.json")?;
    let (iters, times) = (s["iters"].as_array()?, s["times"].as_array()?);
    iters
        .iter()
        .zip(times)
        .filter_map(|(i, t)| Some(t.as_f64()? / i.as_f64()?))
        .min_by(f64::total_cmp)
}

/// Criterion's median estimate for benchmark `id`, in nanoseconds.
pub(crate) fn median(id: &str) -> Option<f64> {
    read(id, "estimates.json")?["median"]["point_estimate"].as_f64()
}

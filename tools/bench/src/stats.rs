//! Order statistics: latency percentiles within a run and medians across repeated runs.

use std::time::Duration;

/// The nearest-rank percentile (`p` in 0.0–1.0) of `sorted`: the smallest value with at least
/// `p` of all values at or below it. `None` when there are no values.
///
/// Nearest rank, not interpolation, so a reported p99 is always a latency some request really
/// had (the same rule as `devstack::load::Report::latency_percentile`).
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    // `as` saturates; p is clamped, so the rank is within 0..=len.
    let rank = (p.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.saturating_sub(1).min(sorted.len() - 1)])
}

/// The median of `values` (the mean of the two middle ones for an even count), ignoring NaN.
/// `None` when there is nothing to take the median of.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    })
}

/// Milliseconds as a float, the unit of every latency in the report.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `value` rounded to `digits` decimals, so the JSON does not carry float noise.
pub fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_the_nearest_rank() {
        let values: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&values, 0.5), Some(50));
        assert_eq!(percentile(&values, 0.99), Some(99));
        assert_eq!(percentile(&values, 1.0), Some(100));
        assert_eq!(percentile(&values, 0.0), Some(1));
        assert_eq!(percentile(&[7u32], 0.99), Some(7));
        assert_eq!(percentile::<u32>(&[], 0.5), None);
    }

    #[test]
    fn percentile_of_a_small_sample_is_its_largest_value_at_p99() {
        // 10 values: p99 is the 10th, not an interpolation beyond the 9th.
        let values: Vec<u32> = (1..=10).collect();
        assert_eq!(percentile(&values, 0.99), Some(10));
        assert_eq!(percentile(&values, 0.9), Some(9));
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[5.0]), Some(5.0));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN, 1.0]), Some(1.0));
    }

    #[test]
    fn rounding_and_milliseconds() {
        assert_eq!(round(1.23456, 2), 1.23);
        assert_eq!(round(0.35, 1), 0.4);
        assert_eq!(ms(Duration::from_micros(1500)), 1.5);
    }
}

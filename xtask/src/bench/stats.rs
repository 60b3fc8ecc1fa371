//! Medians with their spread, and quantiles of Prometheus histograms.

/// The median of some samples, with the smallest and the largest.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub samples: usize,
}

impl Spread {
    /// `None` without samples.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
        let mut values: Vec<f64> = values.into_iter().collect();
        values.sort_by(f64::total_cmp);
        let len = values.len();
        let median = match len {
            0 => return None,
            _ if len % 2 == 1 => values[len / 2],
            _ => (values[len / 2 - 1] + values[len / 2]) / 2.0,
        };
        Some(Spread {
            median,
            min: values[0],
            max: values[len - 1],
            samples: len,
        })
    }
}

/// The `q`-quantile of the observations in cumulative `buckets` (upper bound, observations at
/// or below it; increasing bounds, `+Inf` last), as Prometheus' `histogram_quantile` estimates
/// it: linear within the bucket the quantile falls in, from 0 for the first bucket, and the
/// highest finite bound when it falls in the `+Inf` bucket. `None` without observations.
pub fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let &(last_bound, observations) = buckets.last()?;
    if last_bound != f64::INFINITY || observations <= 0.0 {
        return None;
    }
    let rank = q * observations;
    let index = buckets.iter().position(|&(_, count)| count >= rank)?;
    if index == buckets.len() - 1 {
        return Some(if index == 0 {
            0.0
        } else {
            buckets[index - 1].0
        });
    }
    let (end, count) = buckets[index];
    let (start, below) = if index == 0 {
        (0.0, 0.0)
    } else {
        buckets[index - 1]
    };
    let in_bucket = count - below;
    Some(start + (end - start) * (rank - below) / in_bucket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_spread_of_odd_and_even_counts() {
        let odd = Spread::of([3.0, 1.0, 2.0]).unwrap();
        assert_eq!(
            (odd.median, odd.min, odd.max, odd.samples),
            (2.0, 1.0, 3.0, 3)
        );
        assert_eq!(Spread::of([4.0, 1.0, 3.0, 2.0]).unwrap().median, 2.5);
        assert_eq!(Spread::of([]), None);
    }

    const INF: f64 = f64::INFINITY;

    #[test]
    fn quantiles_interpolate_within_their_bucket_as_prometheus_does() {
        // 100 observations: 50 up to 1 ms, 40 more up to 2 ms, 10 more up to 4 ms.
        let buckets = [(0.001, 50.0), (0.002, 90.0), (0.004, 100.0), (INF, 100.0)];
        assert_eq!(histogram_quantile(0.5, &buckets), Some(0.001));
        assert_eq!(histogram_quantile(0.25, &buckets), Some(0.0005));
        let p70 = histogram_quantile(0.7, &buckets).unwrap();
        assert!((p70 - 0.0015).abs() < 1e-12, "{p70}");
        let p99 = histogram_quantile(0.99, &buckets).unwrap();
        assert!((p99 - 0.0038).abs() < 1e-12, "{p99}");
    }

    #[test]
    fn quantiles_in_the_infinite_bucket_are_the_highest_finite_bound() {
        let buckets = [(0.001, 1.0), (0.002, 2.0), (INF, 10.0)];
        assert_eq!(histogram_quantile(0.99, &buckets), Some(0.002));
    }

    #[test]
    fn no_quantile_without_observations_or_an_infinite_bucket() {
        assert_eq!(histogram_quantile(0.5, &[(0.001, 0.0), (INF, 0.0)]), None);
        assert_eq!(histogram_quantile(0.5, &[(0.001, 3.0)]), None);
    }
}

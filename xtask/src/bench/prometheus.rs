//! Reading samples out of the Prometheus text exposition format.

/// One line `name{labels} value [timestamp]`.
struct Sample<'a> {
    name: &'a str,
    /// The text between the braces, empty when there are none.
    labels: &'a str,
    value: f64,
}

impl Sample<'_> {
    fn has_labels(&self, wanted: &[(&str, &str)]) -> bool {
        wanted
            .iter()
            .all(|(name, value)| label_value(self.labels, name).as_deref() == Some(*value))
    }
}

/// The sum of every sample of `metric` carrying all of the `wanted` labels (others may differ).
pub fn sum(exposition: &str, metric: &str, wanted: &[(&str, &str)]) -> f64 {
    samples(exposition)
        .filter(|sample| sample.name == metric && sample.has_labels(wanted))
        .map(|sample| sample.value)
        .sum()
}

/// Each value of label `label` among `metric`'s samples, with the sum of its samples.
pub fn by_label(exposition: &str, metric: &str, label: &str) -> Vec<(String, f64)> {
    let mut values: Vec<(String, f64)> = Vec::new();
    for sample in samples(exposition).filter(|sample| sample.name == metric) {
        let Some(value) = label_value(sample.labels, label) else {
            continue;
        };
        match values.iter_mut().find(|(known, _)| *known == value) {
            Some((_, sum)) => *sum += sample.value,
            None => values.push((value, sample.value)),
        }
    }
    values
}

/// The cumulative buckets of histogram `metric` for the series with the `wanted` labels, as
/// (upper bound, observations at or below it), in increasing order of bound; `+Inf` last.
pub fn histogram_buckets(
    exposition: &str,
    metric: &str,
    wanted: &[(&str, &str)],
) -> Vec<(f64, f64)> {
    let bucket_metric = format!("{metric}_bucket");
    let mut buckets: Vec<(f64, f64)> = samples(exposition)
        .filter(|sample| sample.name == bucket_metric && sample.has_labels(wanted))
        .filter_map(|sample| {
            let bound = label_value(sample.labels, "le")?;
            // Rust's float parser reads "+Inf" as infinity, the bound of the last bucket.
            Some((bound.parse().ok()?, sample.value))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    buckets
}

fn samples(exposition: &str) -> impl Iterator<Item = Sample<'_>> {
    exposition
        .lines()
        .map(str::trim)
        .filter(|line| !line.starts_with('#'))
        .filter_map(split_sample)
}

fn split_sample(line: &str) -> Option<Sample<'_>> {
    let (name, labels, rest) = match line.find('{') {
        Some(open) => {
            let close = line.rfind('}')?;
            (&line[..open], &line[open + 1..close], &line[close + 1..])
        }
        None => {
            let (name, rest) = line.split_once(char::is_whitespace)?;
            (name, "", rest)
        }
    };
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// The value of `wanted` in `a="x",b="y"`, with the format's escapes undone.
fn label_value(labels: &str, wanted: &str) -> Option<String> {
    let mut rest = labels;
    loop {
        let (name, after_name) = rest.split_once('=')?;
        let quoted = after_name.trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        let end = loop {
            match chars.next()? {
                (index, '"') => break index,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (_, other) => value.push(other),
            }
        };
        if name.trim() == wanted {
            return Some(value);
        }
        rest = quoted[end + 1..].trim_start().strip_prefix(',')?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPOSITION: &str = r#"# HELP escape_detector_events_total Events received from the kernel.
# TYPE escape_detector_events_total counter
escape_detector_events_total{kind="exec"} 10004
escape_detector_events_total{kind="fork",cpu="0"} 3
escape_detector_events_total{cpu="1",kind="fork"} 4
escape_detector_events_lost_total{kind="we\"ird, one"} 1.2e1
escape_detector_tracked_processes 17
escape_detector_alert_latency_seconds_bucket{rule="bpf-from-container",le="0.005"} 7
escape_detector_alert_latency_seconds_bucket{rule="bpf-from-container",le="+Inf"} 9
escape_detector_alert_latency_seconds_bucket{rule="bpf-from-container",le="0.001"} 2
escape_detector_alert_latency_seconds_bucket{rule="sensitive-mount",le="0.001"} 5
"#;

    #[test]
    fn sums_the_samples_with_the_wanted_labels() {
        let events = "escape_detector_events_total";
        assert_eq!(sum(EXPOSITION, events, &[]), 10011.0);
        assert_eq!(sum(EXPOSITION, events, &[("kind", "fork")]), 7.0);
        assert_eq!(sum(EXPOSITION, events, &[("kind", "exit")]), 0.0);
    }

    #[test]
    fn reads_unlabelled_samples_scientific_notation_and_escapes() {
        assert_eq!(
            sum(EXPOSITION, "escape_detector_tracked_processes", &[]),
            17.0
        );
        let lost = "escape_detector_events_lost_total";
        assert_eq!(sum(EXPOSITION, lost, &[("kind", "we\"ird, one")]), 12.0);
    }

    #[test]
    fn sums_by_one_label_s_values_in_order_of_appearance() {
        let events = "escape_detector_events_total";
        assert_eq!(
            by_label(EXPOSITION, events, "kind"),
            [("exec".to_owned(), 10004.0), ("fork".to_owned(), 7.0)]
        );
        assert_eq!(by_label(EXPOSITION, events, "rule"), []);
    }

    #[test]
    fn orders_one_series_buckets_by_bound() {
        let buckets = histogram_buckets(
            EXPOSITION,
            "escape_detector_alert_latency_seconds",
            &[("rule", "bpf-from-container")],
        );
        assert_eq!(buckets, [(0.001, 2.0), (0.005, 7.0), (f64::INFINITY, 9.0)]);
    }
}

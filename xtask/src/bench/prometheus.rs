//! Reading counters out of the Prometheus text exposition format.

use std::collections::BTreeMap;

/// The values of every sample of `metric`, summed by the value of `label` (other labels are
/// added together). Samples without `label` are ignored.
pub fn sum_by_label(exposition: &str, metric: &str, label: &str) -> BTreeMap<String, u64> {
    let mut sums = BTreeMap::new();
    for line in exposition.lines().map(str::trim) {
        if line.starts_with('#') {
            continue;
        }
        let Some((name, labels, value)) = split_sample(line) else {
            continue;
        };
        if name != metric {
            continue;
        }
        let Some(label_value) = label_value(labels, label) else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        // Counters of events are whole numbers, whatever notation the exporter uses.
        *sums.entry(label_value).or_insert(0) += value.round() as u64;
    }
    sums
}

/// `name{labels} value [timestamp]` into its name, the text between the braces, and the value.
fn split_sample(line: &str) -> Option<(&str, &str, &str)> {
    match line.find('{') {
        Some(open) => {
            let close = line.rfind('}')?;
            let value = line[close + 1..].split_whitespace().next()?;
            Some((&line[..open], &line[open + 1..close], value))
        }
        None => {
            let mut words = line.split_whitespace();
            Some((words.next()?, "", words.next()?))
        }
    }
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
escape_detector_events_lost_total{kind="exec"} 1.2e1
escape_detector_events_lost_total{kind="we\"ird, one"} 1
escape_detector_up 1
"#;

    #[test]
    fn sums_samples_by_label() {
        let received = sum_by_label(EXPOSITION, "escape_detector_events_total", "kind");
        assert_eq!(received.get("exec"), Some(&10004));
        assert_eq!(received.get("fork"), Some(&7));
        assert_eq!(received.len(), 2);
    }

    #[test]
    fn reads_scientific_notation_and_escaped_label_values() {
        let lost = sum_by_label(EXPOSITION, "escape_detector_events_lost_total", "kind");
        assert_eq!(lost.get("exec"), Some(&12));
        assert_eq!(lost.get("we\"ird, one"), Some(&1));
    }

    #[test]
    fn ignores_samples_without_the_label() {
        assert!(sum_by_label(EXPOSITION, "escape_detector_up", "kind").is_empty());
    }
}

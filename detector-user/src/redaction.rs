//! Secrets on command lines (`--password hunter2`, `API_TOKEN=...`, a URL's password, a bearer
//! token) masked in every alert before any output or webhook sees it. Each pattern is a regular
//! expression; what its capture groups match (the whole match, for a pattern without one)
//! becomes [`MASK`]. A process's argv is matched as one line, its arguments joined by spaces, so
//! a flag and its value in two arguments are seen together, and the mask lands in the argument
//! that held the secret.

use regex::Regex;
use serde_json::Value;

use crate::alert::Alert;

pub const MASK: &str = "*****";

/// What the agent masks unless `[redaction] patterns` says otherwise.
pub const DEFAULT_PATTERNS: &[&str] = &[
    // A flag naming a secret, then its value: `--db-password=x`, `--api-token x`, `-secret:x`.
    r"(?i)(?:^|\s)--?[a-z0-9_.-]*(?:password|passwd|secret|token|api[_-]?key|access[_-]?key|credentials?)[a-z0-9_.-]*(?:[=:]|\s+)([^\s]+)",
    // An assignment to a name naming a secret: `PGPASSWORD=x`, `aws_secret_access_key=x`.
    r"(?i)\b[a-z0-9_.-]*(?:password|passwd|secret|token|api[_-]?key|access[_-]?key)[a-z0-9_.-]*=([^\s&;,]+)",
    // The password in a URL: `https://user:x@host/`.
    r"(?i)\b[a-z][a-z0-9+.-]*://[^/\s:@]*:([^/\s@]+)@",
    // An HTTP bearer token: `-H "Authorization: Bearer x"`.
    r"(?i)\bbearer\s+([a-z0-9._~+/=-]+)",
];

#[derive(Debug, Clone)]
pub struct Redaction {
    patterns: Vec<Regex>,
}

impl Default for Redaction {
    fn default() -> Self {
        Redaction::new(DEFAULT_PATTERNS).expect("the default patterns compile")
    }
}

impl Redaction {
    pub fn new(patterns: &[impl AsRef<str>]) -> Result<Self, regex::Error> {
        let patterns = patterns
            .iter()
            .map(|pattern| Regex::new(pattern.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(Redaction { patterns })
    }

    /// `alert` with every secret masked: its process's argv, its message and its details.
    pub fn apply(&self, mut alert: Alert) -> Alert {
        if self.patterns.is_empty() {
            return alert;
        }
        alert.process.args = self.mask_args(&alert.process.args);
        alert.message = self.mask(&alert.message);
        self.mask_value(&mut alert.details);
        alert
    }

    fn mask_value(&self, value: &mut Value) {
        match value {
            Value::String(text) => *text = self.mask(text),
            Value::Array(items) => items.iter_mut().for_each(|item| self.mask_value(item)),
            Value::Object(fields) => fields.values_mut().for_each(|field| self.mask_value(field)),
            _ => {}
        }
    }

    fn mask(&self, text: &str) -> String {
        let mut masked = vec![false; text.len()];
        self.mark_secrets(text, &mut masked);
        apply_marks(text, &masked)
    }

    /// The arguments matched as one line; each keeps its own boundaries.
    fn mask_args(&self, args: &[String]) -> Vec<String> {
        let line = args.join(" ");
        let mut masked = vec![false; line.len()];
        self.mark_secrets(&line, &mut masked);
        let mut start = 0;
        args.iter()
            .map(|arg| {
                let end = start + arg.len();
                let out = apply_marks(arg, &masked[start..end]);
                start = end + 1;
                out
            })
            .collect()
    }

    /// Marks the bytes of `text` that a pattern's groups (or whole match) cover.
    fn mark_secrets(&self, text: &str, masked: &mut [bool]) {
        for pattern in &self.patterns {
            for captures in pattern.captures_iter(text) {
                let groups: Vec<_> = captures.iter().skip(1).flatten().collect();
                let spans = if groups.is_empty() {
                    captures.get(0).into_iter().collect()
                } else {
                    groups
                };
                for span in spans {
                    masked[span.range()].fill(true);
                }
            }
        }
    }
}

/// `text` with each run of marked bytes replaced by one [`MASK`]. Marks follow regex match
/// boundaries, which are character boundaries.
fn apply_marks(text: &str, masked: &[bool]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_mask = false;
    for (at, c) in text.char_indices() {
        if masked[at] {
            if !in_mask {
                out.push_str(MASK);
            }
            in_mask = true;
        } else {
            out.push(c);
            in_mask = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &[&str]) -> Vec<String> {
        Redaction::default().mask_args(&line.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn flag_values_are_masked_in_one_argument_or_the_next() {
        assert_eq!(
            args(&["psql", "--db-password=hunter2", "--host", "db"]),
            ["psql", "--db-password=*****", "--host", "db"]
        );
        assert_eq!(
            args(&["vault", "login", "--api-token", "s.abc123", "-v"]),
            ["vault", "login", "--api-token", "*****", "-v"]
        );
        assert_eq!(args(&["app", "-secret:xyz"]), ["app", "-secret:*****"]);
    }

    #[test]
    fn assignments_urls_and_bearer_tokens_are_masked() {
        assert_eq!(
            args(&[
                "env",
                "PGPASSWORD=hunter2",
                "AWS_SECRET_ACCESS_KEY=abc/def",
                "psql"
            ]),
            [
                "env",
                "PGPASSWORD=*****",
                "AWS_SECRET_ACCESS_KEY=*****",
                "psql"
            ]
        );
        assert_eq!(
            args(&["git", "clone", "https://bob:pw123@git.example/repo"]),
            ["git", "clone", "https://bob:*****@git.example/repo"]
        );
        assert_eq!(
            args(&[
                "curl",
                "-H",
                "Authorization: Bearer eyJhbGciOi.x-y_z",
                "https://k8s"
            ]),
            ["curl", "-H", "Authorization: Bearer *****", "https://k8s"]
        );
    }

    #[test]
    fn ordinary_command_lines_and_paths_stay() {
        let plain = [
            "cat",
            "/var/run/secrets/kubernetes.io/serviceaccount/token",
            "/etc/passwd",
            "--tokens-dir",
        ];
        assert_eq!(args(&plain), plain);
        assert_eq!(
            Redaction::default().mask("read the token file /etc/passwd"),
            "read the token file /etc/passwd"
        );
    }

    #[test]
    fn a_pattern_without_groups_masks_its_whole_match_and_none_masks_nothing() {
        let custom = Redaction::new(&["customer-[0-9]+"]).unwrap();
        assert_eq!(custom.mask("id customer-4711 ok"), "id ***** ok");
        let none = Redaction::new(&[] as &[&str]).unwrap();
        assert_eq!(none.mask("--password=x"), "--password=x");
    }

    #[test]
    fn details_and_message_are_masked_too() {
        let mut details = serde_json::json!({"helper": ["/x", "--token=abc"], "n": 1});
        Redaction::default().mask_value(&mut details);
        assert_eq!(
            details,
            serde_json::json!({"helper": ["/x", "--token=*****"], "n": 1})
        );
    }

    #[test]
    fn multibyte_text_around_a_secret_is_kept() {
        assert_eq!(
            Redaction::default().mask("pässwörd ✓ --password=geheimé ✓"),
            "pässwörd ✓ --password=***** ✓"
        );
    }
}

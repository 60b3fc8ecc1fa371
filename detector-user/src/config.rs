//! The agent's configuration file (TOML).
//!
//! Every key is optional and unknown keys are errors. Errors carry the file, line and column of
//! the offending value (or of the key, for unknown keys) so `check-config` can point at it.
//!
//! The file is read in two steps: the text is parsed into a plain `toml::Table`, which is checked
//! field by field; only when a check fails is the text walked again to find where the culprit
//! sits. Spans cannot be taken up front with `toml::Spanned` fields because tables created by
//! dotted keys (`rules.disabled = [...]`) have no span, and deserializing them as `Spanned` fails.

use std::fmt;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::state::identity_hierarchy::Choice;
use toml::{Spanned, Table, Value};

const DEFAULT_METRICS_ADDR: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9560));
const DEFAULT_RING_BUFFER_BYTES: u32 = 16 << 20;
/// The kernel rounds BPF ring buffers to whole pages, so a smaller one cannot exist.
const MIN_RING_BUFFER_BYTES: u32 = 4096;
const MAX_RING_BUFFER_BYTES: u32 = 1 << 30;

const TOP_LEVEL_KEYS: &[&str] = &[
    "metrics_addr",
    "alerts_file",
    "enforce",
    "log_level",
    "host_reference_pid",
    "cgroup_identity",
    "hostname",
    "ring_buffer_bytes",
    "extra_runtime_sockets",
    "rules",
];
const RULES_KEYS: &[&str] = &["disabled"];

/// The validated configuration. Command-line flags are applied on top by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub metrics_addr: SocketAddr,
    pub alerts_file: Option<PathBuf>,
    /// Kill the offending process on critical alerts.
    pub enforce: bool,
    pub log_level: LogLevel,
    /// The process whose namespaces count as "the host".
    pub host_reference_pid: u32,
    /// The cgroup hierarchy whose cgroups say which container a process belongs to.
    pub cgroup_identity: Choice,
    /// Overrides the kernel's hostname in alerts.
    pub hostname: Option<String>,
    pub ring_buffer_bytes: u32,
    /// Socket paths watched by runtime-socket-access besides the well-known ones.
    pub extra_runtime_sockets: Vec<PathBuf>,
    pub disabled_rules: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            metrics_addr: DEFAULT_METRICS_ADDR,
            alerts_file: None,
            enforce: false,
            log_level: LogLevel::Info,
            host_reference_pid: 1,
            cgroup_identity: Choice::Auto,
            hostname: None,
            ring_buffer_bytes: DEFAULT_RING_BUFFER_BYTES,
            extra_runtime_sockets: Vec::new(),
            disabled_rules: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogLevel {
    Error,
    Warn,
    #[default]
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    const ALL: [LogLevel; 5] = [
        LogLevel::Error,
        LogLevel::Warn,
        LogLevel::Info,
        LogLevel::Debug,
        LogLevel::Trace,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|level| level.as_str() == name)
    }
}

/// Why a configuration file was rejected, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based; 0 when the error has no position (the file could not be read).
    pub line: usize,
    /// 1-based, in characters; 0 when the error has no position.
    pub column: usize,
    /// The dotted path of the offending key, e.g. `rules.disabled`.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Reads and validates the configuration file at `path`. `known_rules` are the rule ids that
/// `[rules] disabled` may name.
///
/// # Errors
///
/// When the file cannot be read (at line 0, column 0) or [`parse`] rejects it.
pub fn load(path: &Path, known_rules: &[&str]) -> Result<Settings, ConfigError> {
    let text = fs::read_to_string(path).map_err(|err| ConfigError {
        file: path.to_owned(),
        line: 0,
        column: 0,
        field: None,
        message: format!("cannot read the file: {err}"),
    })?;
    parse(path, &text, known_rules)
}

/// Validates configuration `text`; `path` only names the file in errors.
///
/// # Errors
///
/// On a TOML syntax error, an unknown key, or a value of the wrong type or out of range; the
/// error points at the first of them in the text.
pub fn parse(path: &Path, text: &str, known_rules: &[&str]) -> Result<Settings, ConfigError> {
    let root: Table = toml::from_str(text).map_err(|err| syntax_error(path, text, &err))?;
    let mut problems = Vec::new();
    let settings = read_settings(&root, known_rules, &mut problems);
    match first_in_file(problems, text) {
        Some((problem, span)) => Err(problem.into_error(path, text, span)),
        None => Ok(settings),
    }
}

fn syntax_error(path: &Path, text: &str, err: &toml::de::Error) -> ConfigError {
    let (line, column) = err
        .span()
        .map_or((0, 0), |span| line_and_column(text, span.start));
    ConfigError {
        file: path.to_owned(),
        line,
        column,
        field: None,
        // toml splits some messages over lines; keep the error on one line like the others.
        message: err.message().trim().replace('\n', "; "),
    }
}

/// Converts a byte offset into a 1-based line and a 1-based column counted in characters.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..text.floor_char_boundary(offset)];
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let line = before.matches('\n').count() + 1;
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

// ---------------------------------------------------------------------------------------------
// Validation. Every field is checked, each problem is recorded, and the one that comes first in
// the file is reported, so users fix errors top to bottom whatever order the checks run in.

fn read_settings(root: &Table, known_rules: &[&str], problems: &mut Vec<Problem>) -> Settings {
    let top = TableReader {
        table: root,
        path: &[],
    };
    top.report_unknown_keys(TOP_LEVEL_KEYS, problems);
    let defaults = Settings::default();
    Settings {
        metrics_addr: top
            .read("metrics_addr", parse_metrics_addr, problems)
            .unwrap_or(defaults.metrics_addr),
        alerts_file: top.read("alerts_file", parse_alerts_file, problems),
        enforce: top
            .read("enforce", expect_bool, problems)
            .unwrap_or(defaults.enforce),
        log_level: top
            .read("log_level", parse_log_level, problems)
            .unwrap_or(defaults.log_level),
        host_reference_pid: top
            .read("host_reference_pid", parse_pid, problems)
            .unwrap_or(defaults.host_reference_pid),
        cgroup_identity: top
            .read("cgroup_identity", parse_cgroup_identity, problems)
            .unwrap_or(defaults.cgroup_identity),
        hostname: top.read("hostname", parse_hostname, problems),
        ring_buffer_bytes: top
            .read("ring_buffer_bytes", parse_ring_buffer_bytes, problems)
            .unwrap_or(defaults.ring_buffer_bytes),
        extra_runtime_sockets: top
            .read("extra_runtime_sockets", parse_socket_paths, problems)
            .unwrap_or_default(),
        disabled_rules: read_disabled_rules(&top, known_rules, problems).unwrap_or_default(),
    }
}

fn read_disabled_rules(
    top: &TableReader,
    known_rules: &[&str],
    problems: &mut Vec<Problem>,
) -> Option<Vec<String>> {
    let rules = TableReader {
        table: top.read("rules", expect_table, problems)?,
        path: &["rules"],
    };
    rules.report_unknown_keys(RULES_KEYS, problems);
    rules.read(
        "disabled",
        |value| parse_rule_ids(value, known_rules),
        problems,
    )
}

/// A table of the document and its path from the root, to name keys in problems.
struct TableReader<'a> {
    table: &'a Table,
    path: &'a [&'a str],
}

impl<'a> TableReader<'a> {
    fn report_unknown_keys(&self, known_keys: &[&str], problems: &mut Vec<Problem>) {
        let unknown = self
            .table
            .keys()
            .filter(|key| !known_keys.contains(&key.as_str()));
        for key in unknown {
            problems.push(Problem {
                path: self.steps_to(key),
                part: Part::Key,
                message: format!("unknown key; expected one of {}", known_keys.join(", ")),
            });
        }
    }

    /// The parsed value of `key`; `None` when it is absent or invalid (the problem is recorded).
    fn read<T>(
        &self,
        key: &str,
        parse: impl FnOnce(&'a Value) -> Result<T, Invalid>,
        problems: &mut Vec<Problem>,
    ) -> Option<T> {
        let value = self.table.get(key)?;
        match parse(value) {
            Ok(parsed) => Some(parsed),
            Err(invalid) => {
                let mut path = self.steps_to(key);
                path.extend(invalid.element.map(Step::Index));
                problems.push(Problem {
                    path,
                    part: Part::Value,
                    message: invalid.message,
                });
                None
            }
        }
    }

    fn steps_to(&self, key: &str) -> Vec<Step> {
        self.path
            .iter()
            .chain([&key])
            .map(|&key| Step::Key(key.to_owned()))
            .collect()
    }
}

/// Why a value was rejected; `element` is the index of the culprit when the value is an array.
struct Invalid {
    message: String,
    element: Option<usize>,
}

impl Invalid {
    fn new(message: String) -> Self {
        Self {
            message,
            element: None,
        }
    }

    fn in_element(self, index: usize) -> Self {
        Self {
            element: Some(index),
            ..self
        }
    }
}

fn parse_metrics_addr(value: &Value) -> Result<SocketAddr, Invalid> {
    let text = expect_str(value)?;
    text.parse().map_err(|_| {
        Invalid::new(format!(
            "{text:?} is not a host:port address (an IP address and a port, e.g. 127.0.0.1:9560)"
        ))
    })
}

fn parse_alerts_file(value: &Value) -> Result<PathBuf, Invalid> {
    let path = Path::new(expect_str(value)?);
    if !path.is_absolute() {
        return Err(Invalid::new(format!("{path:?} is not an absolute path")));
    }
    if path.is_dir() {
        return Err(Invalid::new(format!(
            "{path:?} is a directory; expected a file path"
        )));
    }
    match path.parent() {
        Some(parent) if parent.is_dir() => Ok(path.to_owned()),
        Some(parent) => Err(Invalid::new(format!(
            "the parent directory {parent:?} does not exist"
        ))),
        None => Err(Invalid::new(format!("{path:?} is not a file path"))),
    }
}

fn parse_log_level(value: &Value) -> Result<LogLevel, Invalid> {
    let name = expect_str(value)?;
    LogLevel::from_name(name).ok_or_else(|| {
        let names: Vec<_> = LogLevel::ALL.iter().map(|level| level.as_str()).collect();
        Invalid::new(format!(
            "{name:?} is not a log level; expected one of {}",
            names.join(", ")
        ))
    })
}

/// The cgroup v1 controllers a kernel may have (`/proc/cgroups`).
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "blkio",
    "perf_event",
    "net_prio",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

fn parse_cgroup_identity(value: &Value) -> Result<Choice, Invalid> {
    match expect_str(value)? {
        "auto" => Ok(Choice::Auto),
        "unified" => Ok(Choice::Unified),
        c if V1_CONTROLLERS.contains(&c) => Ok(Choice::Controller(c.to_owned())),
        other => Err(Invalid::new(format!(
            "{other:?} is not a cgroup hierarchy; expected \"auto\", \"unified\" or a v1 \
             controller ({})",
            V1_CONTROLLERS.join(", ")
        ))),
    }
}

fn parse_pid(value: &Value) -> Result<u32, Invalid> {
    let number = expect_integer(value)?;
    u32::try_from(number)
        .ok()
        .filter(|&pid| pid > 0)
        .ok_or_else(|| Invalid::new(format!("{number} is not a process id; expected a pid > 0")))
}

fn parse_hostname(value: &Value) -> Result<String, Invalid> {
    let name = expect_str(value)?;
    if name.trim().is_empty() {
        return Err(Invalid::new("expected a non-empty hostname".to_owned()));
    }
    Ok(name.to_owned())
}

fn parse_ring_buffer_bytes(value: &Value) -> Result<u32, Invalid> {
    let bytes = expect_integer(value)?;
    // The kernel requires a power-of-two ring buffer of at least one page.
    if bytes <= 0 || bytes.count_ones() != 1 {
        return Err(Invalid::new(format!("{bytes} is not a power of two")));
    }
    if bytes < i64::from(MIN_RING_BUFFER_BYTES) {
        return Err(Invalid::new(format!(
            "{bytes} is smaller than one page ({MIN_RING_BUFFER_BYTES} bytes)"
        )));
    }
    u32::try_from(bytes)
        .ok()
        .filter(|&bytes| bytes <= MAX_RING_BUFFER_BYTES)
        .ok_or_else(|| {
            Invalid::new(format!(
                "{bytes} is larger than 1 GiB ({MAX_RING_BUFFER_BYTES} bytes)"
            ))
        })
}

/// Absolute paths; the sockets need not exist yet (a runtime may start after the agent).
fn parse_socket_paths(value: &Value) -> Result<Vec<PathBuf>, Invalid> {
    let elements = expect_array(value)?;
    elements
        .iter()
        .enumerate()
        .map(|(index, element)| {
            let path = Path::new(expect_str(element).map_err(|e| e.in_element(index))?);
            if path.is_absolute() {
                Ok(path.to_owned())
            } else {
                Err(Invalid::new(format!("{path:?} is not an absolute path")).in_element(index))
            }
        })
        .collect()
}

fn parse_rule_ids(value: &Value, known_rules: &[&str]) -> Result<Vec<String>, Invalid> {
    let elements = expect_array(value)?;
    elements
        .iter()
        .enumerate()
        .map(|(index, element)| {
            parse_rule_id(element, known_rules).map_err(|invalid| invalid.in_element(index))
        })
        .collect()
}

fn parse_rule_id(value: &Value, known_rules: &[&str]) -> Result<String, Invalid> {
    let id = expect_str(value)?;
    if !known_rules.contains(&id) {
        return Err(Invalid::new(format!(
            "unknown rule id {id:?}; known: {}",
            known_rules.join(", ")
        )));
    }
    Ok(id.to_owned())
}

fn expect_str(value: &Value) -> Result<&str, Invalid> {
    value
        .as_str()
        .ok_or_else(|| type_mismatch("a string", value))
}

fn expect_integer(value: &Value) -> Result<i64, Invalid> {
    value
        .as_integer()
        .ok_or_else(|| type_mismatch("an integer", value))
}

fn expect_bool(value: &Value) -> Result<bool, Invalid> {
    value
        .as_bool()
        .ok_or_else(|| type_mismatch("true or false", value))
}

fn expect_array(value: &Value) -> Result<&Vec<Value>, Invalid> {
    value
        .as_array()
        .ok_or_else(|| type_mismatch("an array", value))
}

fn expect_table(value: &Value) -> Result<&Table, Invalid> {
    value
        .as_table()
        .ok_or_else(|| type_mismatch("a table", value))
}

fn type_mismatch(expected: &str, found: &Value) -> Invalid {
    let found = match found {
        Value::String(text) => format!("string {text:?}"),
        Value::Integer(number) => format!("integer {number}"),
        Value::Float(number) => format!("float {number}"),
        Value::Boolean(flag) => format!("boolean {flag}"),
        Value::Datetime(datetime) => format!("datetime {datetime}"),
        Value::Array(_) => "an array".to_owned(),
        Value::Table(_) => "a table".to_owned(),
    };
    Invalid::new(format!("expected {expected}, found {found}"))
}

// ---------------------------------------------------------------------------------------------
// Locating problems in the text.

/// A rejected key or value, identified by its path from the document root.
struct Problem {
    path: Vec<Step>,
    part: Part,
    message: String,
}

impl Problem {
    fn field(&self) -> String {
        let keys: Vec<&str> = self
            .path
            .iter()
            .filter_map(|step| match step {
                Step::Key(key) => Some(key.as_str()),
                Step::Index(_) => None,
            })
            .collect();
        keys.join(".")
    }

    fn into_error(self, path: &Path, text: &str, span: Option<Range<usize>>) -> ConfigError {
        let (line, column) = span.map_or((0, 0), |span| line_and_column(text, span.start));
        ConfigError {
            file: path.to_owned(),
            line,
            column,
            field: Some(self.field()),
            message: self.message,
        }
    }
}

enum Step {
    Key(String),
    Index(usize),
}

/// Whether a problem is about a key itself (unknown keys) or about its value.
#[derive(Clone, Copy)]
enum Part {
    Key,
    Value,
}

/// The problem that starts earliest in the text, with its span.
fn first_in_file(problems: Vec<Problem>, text: &str) -> Option<(Problem, Option<Range<usize>>)> {
    problems
        .into_iter()
        .map(|problem| {
            let span = locate(text, &problem);
            (problem, span)
        })
        .min_by_key(|(_, span)| span.as_ref().map_or(usize::MAX, |span| span.start))
}

/// The byte span of a problem's key or value; `None` only if the text does not contain it,
/// which cannot happen for a problem found in that same text.
fn locate(text: &str, problem: &Problem) -> Option<Range<usize>> {
    let locator = Locator {
        remaining: &problem.path,
        part: problem.part,
    };
    locator
        .deserialize(toml::de::Deserializer::new(text))
        .ok()
        .flatten()
}

/// Walks the document down a path of keys and indices and returns the span found at its end.
struct Locator<'a> {
    remaining: &'a [Step],
    part: Part,
}

impl<'de> DeserializeSeed<'de> for Locator<'_> {
    type Value = Option<Range<usize>>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Locator<'_> {
    type Value = Option<Range<usize>>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a table or an array")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let Some((Step::Key(wanted), rest)) = self.remaining.split_first() else {
            return Ok(None);
        };
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            if key.get_ref() != wanted {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            if !rest.is_empty() {
                return map.next_value_seed(Locator {
                    remaining: rest,
                    part: self.part,
                });
            }
            return Ok(Some(match self.part {
                Part::Key => key.span(),
                // Tables made of dotted keys or [[headers]] have no span of their own; their key
                // is the nearest place to point at.
                Part::Value => map
                    .next_value::<Spanned<IgnoredAny>>()
                    .map_or(key.span(), |value| value.span()),
            }));
        }
        Ok(None)
    }

    /// Array elements are always the last step: no setting nests deeper than a list of strings.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let [Step::Index(wanted)] = self.remaining else {
            return Ok(None);
        };
        for _ in 0..*wanted {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(None);
            }
        }
        let element = seq.next_element::<Spanned<IgnoredAny>>()?;
        Ok(element.map(|element| element.span()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTRACT_RULE_IDS: &[&str] = &[
        "host-namespace-entry",
        "namespace-escape",
        "host-fd-leak",
        "cgroup-release-agent",
        "kernel-helper-hijack",
        "usermode-helper-exec",
        "runtime-binary-overwrite",
        "host-root-chroot",
        "kernel-module-load",
        "sensitive-mount",
        "runtime-socket-access",
        "bpf-from-container",
        "open-by-handle",
        "ptrace-outside-container",
        "privileged-device-access",
        "kernel-tunable-write",
        "cgroup-escape",
        "agent-tamper",
        "privilege-escalation",
        "userns-creation",
    ];

    fn parse_text(text: &str) -> Result<Settings, ConfigError> {
        parse(Path::new("test.toml"), text, CONTRACT_RULE_IDS)
    }

    #[test]
    fn full_file_sets_every_field() {
        let alerts_file = std::env::temp_dir().join("alerts.jsonl");
        let text = format!(
            r#"
metrics_addr = "0.0.0.0:9999"
alerts_file = '{}'
enforce = true
log_level = "debug"
host_reference_pid = 42
cgroup_identity = "pids"
hostname = "node-7"
ring_buffer_bytes = 4096
extra_runtime_sockets = ["/run/user/1000/docker.sock"]

[rules]
disabled = ["sensitive-mount", "userns-creation"]
"#,
            alerts_file.display()
        );
        let expected = Settings {
            metrics_addr: "0.0.0.0:9999".parse().unwrap(),
            alerts_file: Some(alerts_file),
            enforce: true,
            log_level: LogLevel::Debug,
            host_reference_pid: 42,
            cgroup_identity: Choice::Controller("pids".to_owned()),
            hostname: Some("node-7".to_owned()),
            ring_buffer_bytes: 4096,
            extra_runtime_sockets: vec![PathBuf::from("/run/user/1000/docker.sock")],
            disabled_rules: vec!["sensitive-mount".to_owned(), "userns-creation".to_owned()],
        };
        assert_eq!(parse_text(&text).unwrap(), expected);
    }

    #[test]
    fn empty_file_gives_defaults() {
        for text in ["", "\n# only a comment\n", "[rules]\n"] {
            assert_eq!(parse_text(text).unwrap(), Settings::default(), "{text:?}");
        }
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let defaults = Settings::default();
        assert_eq!(defaults.metrics_addr.to_string(), "127.0.0.1:9560");
        assert_eq!(defaults.log_level.as_str(), "info");
        assert_eq!(defaults.host_reference_pid, 1);
        assert_eq!(defaults.ring_buffer_bytes, 16_777_216);
        assert!(!defaults.enforce);
    }

    #[test]
    fn dotted_keys_and_inline_tables_work_like_sections() {
        for text in [
            "rules.disabled = [\"agent-tamper\"]\n",
            "rules = { disabled = [\"agent-tamper\"] }\n",
        ] {
            let settings = parse_text(text).unwrap();
            assert_eq!(settings.disabled_rules, ["agent-tamper"], "{text:?}");
        }
    }

    struct InvalidCase {
        name: &'static str,
        text: &'static str,
        line: usize,
        column: usize,
        field: Option<&'static str>,
        message: &'static str,
    }

    const INVALID_CASES: &[InvalidCase] = &[
        InvalidCase {
            name: "unknown top-level key",
            text: "enforce = true\nmetric_addr = \"127.0.0.1:1\"\n",
            line: 2,
            column: 1,
            field: Some("metric_addr"),
            message: "unknown key; expected one of metrics_addr, alerts_file",
        },
        InvalidCase {
            name: "unknown key in [rules]",
            text: "[rules]\ndisabled = []\n  enabled = []\n",
            line: 3,
            column: 3,
            field: Some("rules.enabled"),
            message: "unknown key; expected one of disabled",
        },
        InvalidCase {
            name: "unknown section",
            text: "[output]\nformat = \"json\"\n",
            line: 1,
            column: 2,
            field: Some("output"),
            message: "unknown key",
        },
        InvalidCase {
            name: "wrong type",
            text: "enforce = \"yes\"\n",
            line: 1,
            column: 11,
            field: Some("enforce"),
            message: "expected true or false, found string \"yes\"",
        },
        InvalidCase {
            name: "table where a value belongs points at its key",
            text: "log_level.level = \"info\"\n",
            line: 1,
            column: 1,
            field: Some("log_level"),
            message: "expected a string, found a table",
        },
        InvalidCase {
            name: "rules is not a table",
            text: "rules = [\"agent-tamper\"]\n",
            line: 1,
            column: 9,
            field: Some("rules"),
            message: "expected a table, found an array",
        },
        InvalidCase {
            name: "bad address",
            text: "metrics_addr = \"127.0.0.1:abc\"\n",
            line: 1,
            column: 16,
            field: Some("metrics_addr"),
            message: "\"127.0.0.1:abc\" is not a host:port address",
        },
        InvalidCase {
            name: "unknown cgroup hierarchy",
            text: "cgroup_identity = \"systemd\"\n",
            line: 1,
            column: 19,
            field: Some("cgroup_identity"),
            message: "\"systemd\" is not a cgroup hierarchy; expected \"auto\", \"unified\" or a \
                      v1 controller (cpu, cpuacct, cpuset, memory, devices, freezer, net_cls, \
                      blkio, perf_event, net_prio, hugetlb, pids, rdma, misc)",
        },
        InvalidCase {
            name: "relative alerts_file",
            text: "alerts_file = \"alerts.jsonl\"\n",
            line: 1,
            column: 15,
            field: Some("alerts_file"),
            message: "\"alerts.jsonl\" is not an absolute path",
        },
        InvalidCase {
            name: "missing parent directory",
            text: "alerts_file = \"/nonexistent-escape-detector-dir/alerts.jsonl\"\n",
            line: 1,
            column: 15,
            field: Some("alerts_file"),
            message: "the parent directory \"/nonexistent-escape-detector-dir\" does not exist",
        },
        InvalidCase {
            name: "alerts_file is a directory",
            text: "alerts_file = \"/\"\n",
            line: 1,
            column: 15,
            field: Some("alerts_file"),
            message: "\"/\" is a directory",
        },
        InvalidCase {
            name: "bad log level",
            text: "log_level = \"verbose\"\n",
            line: 1,
            column: 13,
            field: Some("log_level"),
            message: "\"verbose\" is not a log level; expected one of error, warn, info, debug, trace",
        },
        InvalidCase {
            name: "zero pid",
            text: "host_reference_pid = 0\n",
            line: 1,
            column: 22,
            field: Some("host_reference_pid"),
            message: "0 is not a process id",
        },
        InvalidCase {
            name: "pid beyond u32",
            text: "host_reference_pid = 4294967296\n",
            line: 1,
            column: 22,
            field: Some("host_reference_pid"),
            message: "4294967296 is not a process id",
        },
        InvalidCase {
            name: "blank hostname",
            text: "hostname = \" \"\n",
            line: 1,
            column: 12,
            field: Some("hostname"),
            message: "expected a non-empty hostname",
        },
        InvalidCase {
            name: "non-power-of-two ring size",
            text: "ring_buffer_bytes = 5000\n",
            line: 1,
            column: 21,
            field: Some("ring_buffer_bytes"),
            message: "5000 is not a power of two",
        },
        InvalidCase {
            name: "ring size below a page",
            text: "ring_buffer_bytes = 2048\n",
            line: 1,
            column: 21,
            field: Some("ring_buffer_bytes"),
            message: "2048 is smaller than one page (4096 bytes)",
        },
        InvalidCase {
            name: "ring size above 1 GiB",
            text: "ring_buffer_bytes = 2147483648\n",
            line: 1,
            column: 21,
            field: Some("ring_buffer_bytes"),
            message: "2147483648 is larger than 1 GiB",
        },
        InvalidCase {
            name: "unknown rule id in the second element of a multi-line array",
            text: "[rules]\ndisabled = [\n    \"agent-tamper\",\n    \"sensitive-mounts\",\n]\n",
            line: 4,
            column: 5,
            field: Some("rules.disabled"),
            message: "unknown rule id \"sensitive-mounts\"; known: host-namespace-entry, namespace-escape",
        },
        InvalidCase {
            name: "rule id of the wrong type",
            text: "[rules]\ndisabled = [\"agent-tamper\", 7]\n",
            line: 2,
            column: 29,
            field: Some("rules.disabled"),
            message: "expected a string, found integer 7",
        },
        InvalidCase {
            name: "column counts characters, not bytes",
            text: "rules.disabled = [\"ünknown\", \"x\"]\n",
            line: 1,
            column: 19,
            field: Some("rules.disabled"),
            message: "unknown rule id \"ünknown\"",
        },
        InvalidCase {
            name: "column after a multi-byte character",
            text: "rules.disabled = [\"agent-tamper\", \"ü\"]\n",
            line: 1,
            column: 35,
            field: Some("rules.disabled"),
            message: "unknown rule id \"ü\"",
        },
        InvalidCase {
            name: "the error earliest in the file is reported",
            text: "ring_buffer_bytes = 5000\n[rules]\ndisabled = [\"nope\"]\nbogus = 1\n",
            line: 1,
            column: 21,
            field: Some("ring_buffer_bytes"),
            message: "5000 is not a power of two",
        },
        InvalidCase {
            name: "relative socket path",
            text: "extra_runtime_sockets = [\"/run/a.sock\", \"b.sock\"]\n",
            line: 1,
            column: 41,
            field: Some("extra_runtime_sockets"),
            message: "\"b.sock\" is not an absolute path",
        },
        InvalidCase {
            name: "TOML syntax error",
            text: "enforce = true\nlog_level = \"info\n",
            line: 2,
            column: 18,
            field: None,
            message: "invalid basic string",
        },
        InvalidCase {
            name: "duplicate key",
            text: "enforce = true\nenforce = false\n",
            line: 2,
            column: 1,
            field: None,
            message: "duplicate key `enforce`",
        },
    ];

    #[test]
    fn invalid_files_report_position_field_and_reason() {
        for case in INVALID_CASES {
            let error = parse_text(case.text).expect_err(case.name);
            assert_eq!(
                (error.line, error.column, error.field.as_deref()),
                (case.line, case.column, case.field),
                "{}: {error}",
                case.name
            );
            assert!(
                error.message.contains(case.message),
                "{}: {:?} does not contain {:?}",
                case.name,
                error.message,
                case.message
            );
            assert_eq!(error.file, Path::new("test.toml"), "{}", case.name);
        }
    }

    #[test]
    fn unreadable_file_has_no_position() {
        let path = Path::new("/nonexistent-escape-detector-dir/config.toml");
        let error = load(path, CONTRACT_RULE_IDS).unwrap_err();
        assert_eq!(
            (error.line, error.column, error.field.as_deref()),
            (0, 0, None)
        );
        assert!(
            error.message.contains("No such file or directory"),
            "{error}"
        );
        assert_eq!(error.file, path);
    }

    #[test]
    fn load_reads_and_validates_the_file() {
        let path = std::env::temp_dir().join(format!(
            "escape-detector-config-test-{}.toml",
            std::process::id()
        ));
        fs::write(&path, "enforce = true\nlog_level = 'warn'\n").unwrap();
        let loaded = load(&path, CONTRACT_RULE_IDS);
        fs::remove_file(&path).unwrap();
        let settings = loaded.unwrap();
        assert!(settings.enforce);
        assert_eq!(settings.log_level, LogLevel::Warn);
    }

    #[test]
    fn error_display_names_file_position_and_field() {
        let mut error = ConfigError {
            file: PathBuf::from("/etc/escape-detector.toml"),
            line: 3,
            column: 16,
            field: Some("metrics_addr".to_owned()),
            message: "bad".to_owned(),
        };
        assert_eq!(
            error.to_string(),
            "/etc/escape-detector.toml:3:16: metrics_addr: bad"
        );
        error.field = None;
        assert_eq!(error.to_string(), "/etc/escape-detector.toml:3:16: bad");
    }

    #[test]
    fn log_levels_round_trip_through_their_names() {
        for level in LogLevel::ALL {
            assert_eq!(LogLevel::from_name(level.as_str()), Some(level));
        }
    }

    #[test]
    fn example_deployment_file_is_valid() {
        // Relative to this file, so it resolves however the module is compiled.
        let text = include_str!("../../deploy/escape-detector.toml");
        let settings = parse(Path::new("escape-detector.toml"), text, CONTRACT_RULE_IDS).unwrap();
        assert_eq!(settings, Settings::default());
    }
}

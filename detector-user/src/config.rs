//! The agent's configuration file (TOML).
//!
//! Every key is optional and unknown keys are errors. serde reads the file in one pass, and each
//! setting is checked by its own deserializer while it is read, so the first error in the file is
//! the one reported: toml gives its span (of the value, or of the key for an unknown key, or of a
//! dotted table's key, which has no span of its own) and serde_path_to_error the key's path.

use std::fmt;
use std::fs;
use std::marker::PhantomData;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};

use detector_common::{DEFAULT_RUNTIME_API_PORTS, MAX_RUNTIME_API_PORTS};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor, value::MapAccessDeserializer};

use crate::redaction::DEFAULT_PATTERNS;
use crate::rules::{CATALOGUE, RuleInfo, Severity};
use crate::state::identity_hierarchy::Choice;
use crate::webhook::Format;

const DEFAULT_METRICS_ADDR: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9560));
const DEFAULT_RING_BUFFER_BYTES: u32 = 16 << 20;
/// The kernel rounds BPF ring buffers to whole pages, so a smaller one cannot exist.
const MIN_RING_BUFFER_BYTES: u32 = 4096;
const MAX_RING_BUFFER_BYTES: u32 = 1 << 30;

/// The validated configuration. Command-line flags are applied on top by the caller.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    #[serde(deserialize_with = "metrics_addr")]
    pub metrics_addr: SocketAddr,
    #[serde(deserialize_with = "alerts_file")]
    pub alerts_file: Option<PathBuf>,
    /// Stop the acts of critical rules (refused by the kernel, or the process killed).
    pub enforce: bool,
    /// `[enforcement]`: which of them `enforce` stops, and where.
    pub enforcement: EnforcementSettings,
    #[serde(deserialize_with = "log_level")]
    pub log_level: LogLevel,
    /// The kernel programs' own diagnostics (aya-log), at this level and above; `None` ("off")
    /// leaves the logging code out of the programs the kernel runs.
    #[serde(deserialize_with = "kernel_log")]
    pub kernel_log: Option<LogLevel>,
    /// The process whose namespaces count as "the host".
    #[serde(deserialize_with = "pid")]
    pub host_reference_pid: u32,
    /// The cgroup hierarchy whose cgroups say which container a process belongs to.
    #[serde(deserialize_with = "cgroup_identity")]
    pub cgroup_identity: Choice,
    /// Overrides the kernel's hostname in alerts.
    #[serde(deserialize_with = "hostname")]
    pub hostname: Option<String>,
    #[serde(deserialize_with = "ring_buffer_bytes")]
    pub ring_buffer_bytes: u32,
    /// Socket paths watched by runtime-socket-access besides the well-known ones.
    #[serde(deserialize_with = "absolute_paths")]
    pub extra_runtime_sockets: Vec<PathBuf>,
    /// TCP ports of the node's own APIs runtime-socket-access watches.
    #[serde(deserialize_with = "api_ports")]
    pub runtime_api_ports: Vec<u16>,
    /// Programs usermode-helper-exec allows the kernel to run besides the distributions' own.
    #[serde(deserialize_with = "absolute_paths")]
    pub extra_usermode_helpers: Vec<PathBuf>,
    /// `[rules] disabled` in the file.
    #[serde(rename = "rules", deserialize_with = "disabled_rules")]
    pub disabled_rules: Vec<String>,
    /// `[[exceptions]]`: acts of the workloads they name that no alert reports.
    pub exceptions: Vec<ExceptionSpec>,
    /// `[webhook]`: alerts also POSTed there.
    pub webhook: Option<WebhookSettings>,
    /// `[redaction]`: secrets masked in every alert.
    pub redaction: RedactionSettings,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedactionSettings {
    /// Regular expressions; what their groups match is masked (`redaction::DEFAULT_PATTERNS`
    /// unless given; an empty list masks nothing).
    #[serde(deserialize_with = "regex_patterns")]
    pub patterns: Vec<String>,
}

impl Default for RedactionSettings {
    fn default() -> Self {
        RedactionSettings {
            patterns: DEFAULT_PATTERNS.iter().map(|p| (*p).to_owned()).collect(),
        }
    }
}

/// A regular expression that compiles.
struct RegexPattern(String);

impl<'de> Deserialize<'de> for RegexPattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_string(d, |pattern| match regex::Regex::new(&pattern) {
            Ok(_) => Ok(RegexPattern(pattern)),
            Err(e) => Err(format!("{pattern:?} is not a regular expression: {e}")),
        })
    }
}

fn regex_patterns<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let patterns = Vec::<RegexPattern>::deserialize(d)?;
    Ok(patterns.into_iter().map(|pattern| pattern.0).collect())
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// The endpoint itself, e.g. `http://alertmanager:9093/api/v2/alerts`.
    #[serde(deserialize_with = "webhook_url")]
    pub url: String,
    #[serde(
        default = "default_webhook_format",
        deserialize_with = "webhook_format"
    )]
    pub format: Format,
}

fn default_webhook_format() -> Format {
    Format::Raw
}

fn webhook_url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    checked_string(d, |url| {
        let scheme_ok = ["http://", "https://"].iter().any(|scheme| {
            url.strip_prefix(scheme)
                .is_some_and(|rest| !rest.is_empty())
        });
        if scheme_ok {
            Ok(url)
        } else {
            Err(format!("{url:?} is not an http:// or https:// URL"))
        }
    })
}

fn webhook_format<'de, D: Deserializer<'de>>(d: D) -> Result<Format, D::Error> {
    checked_string(d, |name| {
        Format::ALL
            .into_iter()
            .find(|format| format.name() == name)
            .ok_or_else(|| {
                format!("{name:?} is not a webhook format: alertmanager, falcosidekick or raw")
            })
    })
}

/// One `[[exceptions]]` table: the acts it covers are those of the `rules` listed (every rule
/// when none) by a process that matches every scope given. A scope is a list of glob
/// patterns (`*`, `?`, `[...]`), any of which may match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExceptionSpec {
    /// Names the exception in `escape_detector_exceptions_suppressed_total`.
    pub name: String,
    pub rules: Vec<String>,
    /// The container's image.
    pub images: Vec<String>,
    pub pod_namespaces: Vec<String>,
    pub pods: Vec<String>,
    /// The container's name.
    pub containers: Vec<String>,
    /// The acting process's executable.
    pub exes: Vec<String>,
    /// An executable among the acting process's ancestors.
    pub ancestor_exes: Vec<String>,
}

impl ExceptionSpec {
    /// Scopes by name, as the file spells them.
    pub fn scopes(&self) -> [(&'static str, &[String]); 6] {
        [
            ("images", &self.images),
            ("pod_namespaces", &self.pod_namespaces),
            ("pods", &self.pods),
            ("containers", &self.containers),
            ("exes", &self.exes),
            ("ancestor_exes", &self.ancestor_exes),
        ]
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExceptionTable {
    name: ExceptionName,
    #[serde(default)]
    rules: Vec<RuleId>,
    #[serde(default)]
    images: Vec<Pattern>,
    #[serde(default)]
    pod_namespaces: Vec<Pattern>,
    #[serde(default)]
    pods: Vec<Pattern>,
    #[serde(default)]
    containers: Vec<Pattern>,
    #[serde(default)]
    exes: Vec<Pattern>,
    #[serde(default)]
    ancestor_exes: Vec<Pattern>,
}

impl<'de> Deserialize<'de> for ExceptionSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let table: ExceptionTable = d.deserialize_map(TableOnly(PhantomData))?;
        let patterns = |list: Vec<Pattern>| list.into_iter().map(|p| p.0).collect();
        let spec = ExceptionSpec {
            name: table.name.0,
            rules: table.rules.into_iter().map(|id| id.0).collect(),
            images: patterns(table.images),
            pod_namespaces: patterns(table.pod_namespaces),
            pods: patterns(table.pods),
            containers: patterns(table.containers),
            exes: patterns(table.exes),
            ancestor_exes: patterns(table.ancestor_exes),
        };
        // An exception without a scope would silence its rules for every container: that is
        // `[rules] disabled`, which says so.
        if spec
            .scopes()
            .iter()
            .all(|(_, patterns)| patterns.is_empty())
        {
            return Err(de::Error::custom(format!(
                "exception {:?} has no scope: give images, pod_namespaces, pods, containers, \
                 exes or ancestor_exes (to silence a rule everywhere, list it in [rules] \
                 disabled)",
                spec.name
            )));
        }
        Ok(spec)
    }
}

/// `[enforcement]`: narrows what `enforce` stops, so a rollout can be staged rule by rule and
/// namespace by namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnforcementSettings {
    /// The critical rules whose acts are stopped; `None`: every critical rule.
    pub rules: Option<Vec<String>>,
    /// Only in containers of the pod namespaces these patterns match; empty: everywhere.
    pub pod_namespaces: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnforcementTable {
    #[serde(default)]
    rules: Option<Vec<CriticalRuleId>>,
    #[serde(default)]
    pod_namespaces: Vec<Pattern>,
}

impl<'de> Deserialize<'de> for EnforcementSettings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let table: EnforcementTable = d.deserialize_map(TableOnly(PhantomData))?;
        if table.rules.as_ref().is_some_and(Vec::is_empty) {
            return Err(de::Error::custom(
                "[enforcement] rules lists no rule: leave it out to enforce every critical \
                 rule, or set enforce = false to enforce none",
            ));
        }
        Ok(EnforcementSettings {
            rules: table
                .rules
                .map(|rules| rules.into_iter().map(|id| id.0).collect()),
            pod_namespaces: table.pod_namespaces.into_iter().map(|p| p.0).collect(),
        })
    }
}

/// A metric label value: letters, digits, `-` and `_`.
struct ExceptionName(String);

impl<'de> Deserialize<'de> for ExceptionName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_string(d, |name| {
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if valid {
                Ok(ExceptionName(name))
            } else {
                Err(format!(
                    "{name:?} is not an exception name (letters, digits, - and _)"
                ))
            }
        })
    }
}

/// A glob pattern globset accepts.
struct Pattern(String);

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_string(d, |text| match globset::Glob::new(&text) {
            Ok(_) => Ok(Pattern(text)),
            Err(e) => Err(format!("{text:?} is not a glob pattern: {}", e.kind())),
        })
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            metrics_addr: DEFAULT_METRICS_ADDR,
            alerts_file: None,
            enforce: false,
            enforcement: EnforcementSettings::default(),
            log_level: LogLevel::Info,
            kernel_log: None,
            host_reference_pid: 1,
            cgroup_identity: Choice::Auto,
            hostname: None,
            ring_buffer_bytes: DEFAULT_RING_BUFFER_BYTES,
            extra_runtime_sockets: Vec::new(),
            runtime_api_ports: DEFAULT_RUNTIME_API_PORTS.to_vec(),
            extra_usermode_helpers: Vec::new(),
            disabled_rules: Vec::new(),
            exceptions: Vec::new(),
            webhook: None,
            redaction: RedactionSettings::default(),
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
    pub(crate) const ALL: [LogLevel; 5] = [
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

/// Reads and validates the configuration file at `path`.
///
/// # Errors
///
/// When the file cannot be read (at line 0, column 0) or [`parse`] rejects it.
pub fn load(path: &Path) -> Result<Settings, ConfigError> {
    let text = fs::read_to_string(path).map_err(|err| ConfigError {
        file: path.to_owned(),
        line: 0,
        column: 0,
        field: None,
        message: format!("cannot read the file: {err}"),
    })?;
    parse(path, &text)
}

/// Validates configuration `text`; `path` only names the file in errors.
///
/// # Errors
///
/// On a TOML syntax error, an unknown key, or a value of the wrong type or out of range; the
/// error points at the first of them in the text.
pub fn parse(path: &Path, text: &str) -> Result<Settings, ConfigError> {
    serde_path_to_error::deserialize(toml::Deserializer::new(text)).map_err(|err| {
        let field = dotted_keys(err.path());
        let err = err.into_inner();
        let (line, column) = err
            .span()
            .map_or((0, 0), |span| line_and_column(text, span.start));
        ConfigError {
            file: path.to_owned(),
            line,
            column,
            field,
            // toml splits some messages over lines; keep the error on one line like the others.
            message: err.message().trim().replace('\n', "; "),
        }
    })
}

/// The keys of a path, without array indices (the position points at the element); `None` at
/// the root, where syntax errors are.
fn dotted_keys(path: &serde_path_to_error::Path) -> Option<String> {
    let keys: Vec<String> = path
        .iter()
        .filter_map(|segment| match segment {
            serde_path_to_error::Segment::Map { key } => Some(key.clone()),
            _ => None,
        })
        .collect();
    (!keys.is_empty()).then(|| keys.join("."))
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
// The settings' checks: each reads a plain value and turns it into the setting or a message.

/// Checks a string or an integer inside the deserializer's own call, where toml gives the error
/// the value's span (an array element's own; after the call it would get the whole array's).
struct Checked<T, U>(fn(T) -> Result<U, String>);

impl<U> Visitor<'_> for Checked<String, U> {
    type Value = U;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<U, E> {
        (self.0)(value.to_owned()).map_err(E::custom)
    }
}

impl<U> Visitor<'_> for Checked<i64, U> {
    type Value = U;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("an integer")
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<U, E> {
        (self.0)(value).map_err(E::custom)
    }
}

fn checked_string<'de, D: Deserializer<'de>, U>(
    deserializer: D,
    check: fn(String) -> Result<U, String>,
) -> Result<U, D::Error> {
    deserializer.deserialize_string(Checked(check))
}

fn checked_integer<'de, D: Deserializer<'de>, U>(
    deserializer: D,
    check: fn(i64) -> Result<U, String>,
) -> Result<U, D::Error> {
    deserializer.deserialize_i64(Checked(check))
}

fn metrics_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    checked_string(d, |text: String| parse_metrics_addr(&text))
}

/// `IP:PORT`, or `HOST:PORT` with a name the resolver knows (`localhost:9560`, the node's own
/// name), resolved once, at start: an IPv4 address where the name has one.
pub fn parse_metrics_addr(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let not_an_address = || {
        format!(
            "{text:?} is not a host:port address (an IP address or a host name, and a port, \
             e.g. 127.0.0.1:9560 or localhost:9560)"
        )
    };
    if text
        .rsplit_once(':')
        .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
    {
        return Err(not_an_address());
    }
    let addrs: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(text)
        .map_err(|e| format!("{}: {e}", not_an_address()))?
        .collect();
    addrs
        .iter()
        .find(|addr| addr.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(not_an_address)
}

fn alerts_file<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    checked_string(d, |text: String| {
        let path = PathBuf::from(text);
        if !path.is_absolute() {
            return Err(format!("{path:?} is not an absolute path"));
        }
        if path.is_dir() {
            return Err(format!("{path:?} is a directory; expected a file path"));
        }
        match path.parent() {
            Some(parent) if parent.is_dir() => Ok(Some(path)),
            Some(parent) => Err(format!("the parent directory {parent:?} does not exist")),
            None => Err(format!("{path:?} is not a file path")),
        }
    })
}

fn log_level<'de, D: Deserializer<'de>>(d: D) -> Result<LogLevel, D::Error> {
    checked_string(d, |name: String| {
        LogLevel::from_name(&name).ok_or_else(|| not_a_log_level(&name, ""))
    })
}

fn kernel_log<'de, D: Deserializer<'de>>(d: D) -> Result<Option<LogLevel>, D::Error> {
    checked_string(d, |name: String| match name.as_str() {
        "off" => Ok(None),
        _ => LogLevel::from_name(&name)
            .map(Some)
            .ok_or_else(|| not_a_log_level(&name, "off, ")),
    })
}

fn not_a_log_level(name: &str, also: &str) -> String {
    let names: Vec<_> = LogLevel::ALL.iter().map(|level| level.as_str()).collect();
    format!(
        "{name:?} is not a log level; expected one of {also}{}",
        names.join(", ")
    )
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

fn cgroup_identity<'de, D: Deserializer<'de>>(d: D) -> Result<Choice, D::Error> {
    checked_string(d, |name: String| match name.as_str() {
        "auto" => Ok(Choice::Auto),
        "unified" => Ok(Choice::Unified),
        c if V1_CONTROLLERS.contains(&c) => Ok(Choice::Controller(name)),
        other => Err(format!(
            "{other:?} is not a cgroup hierarchy; expected \"auto\", \"unified\" or a v1 \
             controller ({})",
            V1_CONTROLLERS.join(", ")
        )),
    })
}

fn pid<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    checked_integer(d, |number: i64| {
        u32::try_from(number)
            .ok()
            .filter(|&pid| pid > 0)
            .ok_or_else(|| format!("{number} is not a process id; expected a pid > 0"))
    })
}

fn hostname<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    checked_string(d, |name: String| {
        if name.trim().is_empty() {
            return Err("expected a non-empty hostname".to_owned());
        }
        Ok(Some(name))
    })
}

fn ring_buffer_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    checked_integer(d, |bytes: i64| {
        // The kernel requires a power-of-two ring buffer of at least one page.
        if bytes <= 0 || bytes.count_ones() != 1 {
            return Err(format!("{bytes} is not a power of two"));
        }
        if bytes < i64::from(MIN_RING_BUFFER_BYTES) {
            return Err(format!(
                "{bytes} is smaller than one page ({MIN_RING_BUFFER_BYTES} bytes)"
            ));
        }
        u32::try_from(bytes)
            .ok()
            .filter(|&bytes| bytes <= MAX_RING_BUFFER_BYTES)
            .ok_or_else(|| format!("{bytes} is larger than 1 GiB ({MAX_RING_BUFFER_BYTES} bytes)"))
    })
}

/// An absolute path, which need not exist yet (a runtime may start after the agent, a helper
/// be installed later).
struct AbsolutePath(PathBuf);

impl<'de> Deserialize<'de> for AbsolutePath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_string(d, |text| {
            let path = PathBuf::from(text);
            if path.is_absolute() {
                Ok(AbsolutePath(path))
            } else {
                Err(format!("{path:?} is not an absolute path"))
            }
        })
    }
}

fn absolute_paths<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PathBuf>, D::Error> {
    let paths = Vec::<AbsolutePath>::deserialize(d)?;
    Ok(paths.into_iter().map(|path| path.0).collect())
}

/// A TCP port, 1 to 65535.
struct ApiPort(u16);

impl<'de> Deserialize<'de> for ApiPort {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_integer(d, |port: i64| {
            u16::try_from(port)
                .ok()
                .filter(|&port| port > 0)
                .map(ApiPort)
                .ok_or_else(|| format!("{port} is not a TCP port; expected 1 to 65535"))
        })
    }
}

/// As many ports as the kernel filter holds.
fn api_ports<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u16>, D::Error> {
    let ports = Vec::<ApiPort>::deserialize(d)?;
    if ports.len() > MAX_RUNTIME_API_PORTS {
        return Err(de::Error::custom(format!(
            "{} ports; the kernel's filter holds at most {MAX_RUNTIME_API_PORTS}",
            ports.len()
        )));
    }
    Ok(ports.into_iter().map(|port| port.0).collect())
}

/// The id of a rule in the catalogue.
struct RuleId(String);

impl<'de> Deserialize<'de> for RuleId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_string(d, |id| known_rule(&id).map(|_| RuleId(id)))
    }
}

/// The id of a critical rule: the only ones enforcement stops.
struct CriticalRuleId(String);

impl<'de> Deserialize<'de> for CriticalRuleId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_string(d, |id| {
            let rule = known_rule(&id)?;
            if rule.severity == Severity::Critical {
                return Ok(CriticalRuleId(id));
            }
            let critical: Vec<&str> = CATALOGUE
                .iter()
                .filter(|rule| rule.severity == Severity::Critical)
                .map(|rule| rule.id)
                .collect();
            Err(format!(
                "{id:?} is a {} rule, and only critical rules are enforced: {}",
                rule.severity.as_str(),
                critical.join(", ")
            ))
        })
    }
}

fn known_rule(id: &str) -> Result<&'static RuleInfo, String> {
    CATALOGUE
        .iter()
        .copied()
        .find(|rule| rule.id == id)
        .ok_or_else(|| {
            let known: Vec<&str> = CATALOGUE.iter().map(|rule| rule.id).collect();
            format!("unknown rule id {id:?}; known: {}", known.join(", "))
        })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesSection {
    #[serde(default)]
    disabled: Vec<RuleId>,
}

fn disabled_rules<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let section: RulesSection = d.deserialize_map(TableOnly(PhantomData))?;
    Ok(section.disabled.into_iter().map(|id| id.0).collect())
}

/// Reads a struct from a table only: serde's derived structs also accept an array of their
/// fields in order, which would make `rules = ["x"]` fail with a puzzling message.
struct TableOnly<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for TableOnly<T> {
    type Value = T;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a table")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Settings, ConfigError> {
        parse(Path::new("test.toml"), text)
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
kernel_log = "warn"
host_reference_pid = 42
cgroup_identity = "pids"
hostname = "node-7"
ring_buffer_bytes = 4096
extra_runtime_sockets = ["/run/user/1000/docker.sock"]
runtime_api_ports = [10250, 6443]
extra_usermode_helpers = ["/usr/local/bin/crash-collector"]

[enforcement]
rules = ["kernel-helper-hijack", "host-namespace-entry"]
pod_namespaces = ["staging-*"]

[rules]
disabled = ["sensitive-mount", "userns-creation"]

[[exceptions]]
name = "ci-docker"
rules = ["runtime-socket-access"]
images = ["registry.example/ci/*"]
ancestor_exes = ["/usr/bin/gitlab-runner"]

[webhook]
url = "http://alertmanager:9093/api/v2/alerts"
format = "alertmanager"

[redaction]
patterns = ["customer-([0-9]+)"]
"#,
            alerts_file.display()
        );
        let expected = Settings {
            metrics_addr: "0.0.0.0:9999".parse().unwrap(),
            alerts_file: Some(alerts_file),
            enforce: true,
            enforcement: EnforcementSettings {
                rules: Some(vec![
                    "kernel-helper-hijack".to_owned(),
                    "host-namespace-entry".to_owned(),
                ]),
                pod_namespaces: vec!["staging-*".to_owned()],
            },
            log_level: LogLevel::Debug,
            kernel_log: Some(LogLevel::Warn),
            host_reference_pid: 42,
            cgroup_identity: Choice::Controller("pids".to_owned()),
            hostname: Some("node-7".to_owned()),
            ring_buffer_bytes: 4096,
            extra_runtime_sockets: vec![PathBuf::from("/run/user/1000/docker.sock")],
            runtime_api_ports: vec![10250, 6443],
            extra_usermode_helpers: vec![PathBuf::from("/usr/local/bin/crash-collector")],
            disabled_rules: vec!["sensitive-mount".to_owned(), "userns-creation".to_owned()],
            exceptions: vec![ExceptionSpec {
                name: "ci-docker".to_owned(),
                rules: vec!["runtime-socket-access".to_owned()],
                images: vec!["registry.example/ci/*".to_owned()],
                ancestor_exes: vec!["/usr/bin/gitlab-runner".to_owned()],
                ..ExceptionSpec::default()
            }],
            webhook: Some(WebhookSettings {
                url: "http://alertmanager:9093/api/v2/alerts".to_owned(),
                format: Format::Alertmanager,
            }),
            redaction: RedactionSettings {
                patterns: vec!["customer-([0-9]+)".to_owned()],
            },
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
            message: "unknown field `metric_addr`, expected one of `metrics_addr`, `alerts_file`",
        },
        InvalidCase {
            name: "unknown key in [rules]",
            text: "[rules]\ndisabled = []\n  enabled = []\n",
            line: 3,
            column: 3,
            field: Some("rules.enabled"),
            message: "unknown field `enabled`, expected `disabled`",
        },
        InvalidCase {
            name: "unknown section",
            text: "[output]\nformat = \"json\"\n",
            line: 1,
            column: 2,
            field: Some("output"),
            message: "unknown field `output`",
        },
        InvalidCase {
            name: "wrong type",
            text: "enforce = \"yes\"\n",
            line: 1,
            column: 11,
            field: Some("enforce"),
            message: "invalid type: string \"yes\", expected a boolean",
        },
        InvalidCase {
            name: "table where a value belongs points at its key",
            text: "log_level.level = \"info\"\n",
            line: 1,
            column: 1,
            field: Some("log_level"),
            message: "invalid type: map, expected a string",
        },
        InvalidCase {
            name: "rules is not a table",
            text: "rules = [\"agent-tamper\"]\n",
            line: 1,
            column: 9,
            field: Some("rules"),
            message: "invalid type: sequence, expected a table",
        },
        InvalidCase {
            name: "enforcement of a rule that is not critical",
            text: "[enforcement]\nrules = [\"userns-creation\"]\n",
            line: 2,
            column: 10,
            field: Some("enforcement.rules"),
            message: "\"userns-creation\" is a medium rule, and only critical rules are enforced",
        },
        InvalidCase {
            name: "enforcement of no rule",
            text: "[enforcement]\nrules = []\n",
            line: 1,
            column: 1,
            field: Some("enforcement"),
            message: "[enforcement] rules lists no rule",
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
            name: "webhook without a scheme",
            text: "[webhook]\nurl = \"alertmanager:9093\"\n",
            line: 2,
            column: 7,
            field: Some("webhook.url"),
            message: "\"alertmanager:9093\" is not an http:// or https:// URL",
        },
        InvalidCase {
            name: "exception without a scope",
            text: "[[exceptions]]\nname = \"all\"\nrules = [\"bpf-from-container\"]\n",
            line: 1,
            column: 1,
            field: Some("exceptions"),
            message: "exception \"all\" has no scope",
        },
        InvalidCase {
            name: "bad exception pattern",
            text: "[[exceptions]]\nname = \"x\"\nimages = [\"ci/[a\"]\n",
            line: 3,
            column: 11,
            field: Some("exceptions.images"),
            message: "\"ci/[a\" is not a glob pattern",
        },
        InvalidCase {
            name: "exception for an unknown rule",
            text: "[[exceptions]]\nname = \"x\"\nrules = [\"no-such-rule\"]\nexes = [\"/x\"]\n",
            line: 3,
            column: 10,
            field: Some("exceptions.rules"),
            message: "unknown rule id \"no-such-rule\"",
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
            name: "bad kernel log level",
            text: "kernel_log = \"all\"\n",
            line: 1,
            column: 14,
            field: Some("kernel_log"),
            message: "\"all\" is not a log level; expected one of off, error, warn, info, debug, \
                      trace",
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
            message: "invalid type: integer `7`, expected a string",
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
            name: "port out of range",
            text: "runtime_api_ports = [10250, 0]\n",
            line: 1,
            column: 29,
            field: Some("runtime_api_ports"),
            message: "0 is not a TCP port; expected 1 to 65535",
        },
        InvalidCase {
            name: "more ports than the kernel filter holds",
            text: "runtime_api_ports = [1, 2, 3, 4, 5, 6, 7, 8, 9]\n",
            line: 1,
            column: 21,
            field: Some("runtime_api_ports"),
            message: "9 ports; the kernel's filter holds at most 8",
        },
        InvalidCase {
            name: "redaction pattern that does not compile",
            text: "[redaction]\npatterns = [\"ok\", \"(unclosed\"]\n",
            line: 2,
            column: 19,
            field: Some("redaction.patterns"),
            message: "\"(unclosed\" is not a regular expression",
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
        // Every case is checked and every mismatch reported, so one run shows them all.
        let mismatches: Vec<String> = INVALID_CASES
            .iter()
            .filter_map(|case| {
                let error = parse_text(case.text).expect_err(case.name);
                let place = (error.line, error.column, error.field.as_deref());
                let matches = place == (case.line, case.column, case.field)
                    && error.message.contains(case.message)
                    && error.file == Path::new("test.toml");
                (!matches).then(|| format!("{}: got {error}", case.name))
            })
            .collect();
        assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    }

    #[test]
    fn unreadable_file_has_no_position() {
        let path = Path::new("/nonexistent-escape-detector-dir/config.toml");
        let error = load(path).unwrap_err();
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
        let loaded = load(&path);
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
        let settings = parse(Path::new("escape-detector.toml"), text).unwrap();
        assert_eq!(settings, Settings::default());
    }

    #[test]
    fn metrics_addr_takes_host_names() {
        assert_eq!(
            parse_metrics_addr("localhost:9560"),
            Ok("127.0.0.1:9560".parse().unwrap())
        );
        assert_eq!(
            parse_metrics_addr("[::1]:9560"),
            Ok("[::1]:9560".parse().unwrap())
        );
        for bad in ["localhost", ":9560", "localhost:port", "localhost:70000"] {
            assert!(parse_metrics_addr(bad).is_err(), "{bad}");
        }
    }
}

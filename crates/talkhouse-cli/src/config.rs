//! `talkhouse.toml`: parsing, `${VAR}` expansion, and errors that name the key and its line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use talkhouse_model::{Destination, Secret, Source};

/// A configuration problem: exit code 2.
#[derive(Debug)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line, where known.
    pub line: Option<usize>,
    /// The key, where one is to blame (`sources.gladly.token`).
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub hint: Option<String>,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": `{key}`")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Where the warehouse is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationConfig {
    /// `duckdb` (default), `postgres` or `delta`.
    #[serde(default = "default_kind")]
    pub kind: String,
    /// DuckDB file (default `warehouse.duckdb`).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// PostgreSQL URL (may carry a password, so it is a secret).
    #[serde(default)]
    pub url: Option<Secret>,
    /// Delta Lake root (local folder or object store URL).
    #[serde(default)]
    pub root: Option<String>,
    /// DuckDB only: the most memory DuckDB may use (`"1GB"`, `"512MB"`, at least 64 MiB); beyond
    /// it, it writes to disk. Default: a quarter of the machine's memory, at most 512 MiB.
    #[serde(default)]
    pub memory_limit: Option<String>,
    /// DuckDB only: its worker threads while it writes a batch (at most DuckDB's `threads`, the
    /// machine's cores). By default one core is left to talkhouse's own parsing of the next
    /// batch; queries use all of DuckDB's threads.
    #[serde(default)]
    pub write_threads: Option<usize>,
}

fn default_kind() -> String {
    "duckdb".into()
}

impl Default for DestinationConfig {
    fn default() -> Self {
        Self {
            kind: default_kind(),
            path: None,
            url: None,
            root: None,
            memory_limit: None,
            write_threads: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    destination: DestinationConfig,
    #[serde(default)]
    sources: BTreeMap<String, toml::Table>,
    #[serde(default)]
    serve: Option<toml::Table>,
}

/// A parsed configuration.
pub struct Config {
    /// The file it came from.
    pub file: PathBuf,
    /// The file's text (for locating keys in later errors).
    text: String,
    /// Destination settings.
    pub destination: DestinationConfig,
    /// `[sources.NAME]` sections, `${VAR}`s expanded, with their vendor.
    pub sources: Vec<SourceSection>,
    /// `[serve]`, if present.
    pub serve: Option<toml::Table>,
}

/// One `[sources.NAME]` section.
#[derive(Clone)]
pub struct SourceSection {
    /// Configured name (the schema).
    pub name: String,
    /// Vendor.
    pub vendor: String,
    /// Settings without `vendor`.
    pub table: toml::Table,
}

// Sections hold expanded secrets: Debug prints names and keys only.
impl std::fmt::Debug for SourceSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceSection")
            .field("name", &self.name)
            .field("vendor", &self.vendor)
            .field("keys", &self.table.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("file", &self.file)
            .field("destination", &self.destination)
            .field("sources", &self.sources)
            .finish_non_exhaustive()
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|b| *b == b'\n')
        .count()
        + 1
}

/// The line of `key = …` inside `[section]`, or of the section header.
fn find_key_line(text: &str, section: &str, key: Option<&str>) -> Option<usize> {
    let header = format!("[{section}]");
    let mut in_section = false;
    let mut header_line = None;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            in_section = t == header;
            if in_section {
                header_line = Some(i + 1);
            }
            continue;
        }
        if in_section && let Some(k) = key {
            let name = t.split('=').next().unwrap_or("").trim().trim_matches('"');
            if name == k {
                return Some(i + 1);
            }
        }
    }
    header_line
}

/// Replaces `${VAR}` in every string of a TOML value with the environment's value.
fn expand(value: &mut toml::Value, path: &str, missing: &mut Vec<(String, String)>) {
    match value {
        toml::Value::String(s) => {
            let mut out = String::with_capacity(s.len());
            let mut rest = s.as_str();
            while let Some(start) = rest.find("${") {
                out.push_str(&rest[..start]);
                let after = &rest[start + 2..];
                let Some(end) = after.find('}') else {
                    out.push_str(&rest[start..]);
                    rest = "";
                    break;
                };
                let var = &after[..end];
                match std::env::var(var) {
                    Ok(v) => out.push_str(&v),
                    Err(_) => missing.push((path.to_owned(), var.to_owned())),
                }
                rest = &after[end + 1..];
            }
            out.push_str(rest);
            *s = out;
        }
        toml::Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                expand(v, &format!("{path}[{i}]"), missing);
            }
        }
        toml::Value::Table(t) => {
            for (k, v) in t.iter_mut() {
                expand(v, &format!("{path}.{k}"), missing);
            }
        }
        _ => {}
    }
}

impl Config {
    /// Reads and checks a configuration file.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the key and line.
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|e| ConfigError {
            file: file.to_owned(),
            line: None,
            key: None,
            message: format!("cannot read the configuration: {e}"),
            hint: Some("pass --config FILE, or create ./talkhouse.toml (see the README's Configuration section)".into()),
        })?;
        Self::parse(file, text)
    }

    /// Parses configuration text.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the key and line.
    pub fn parse(file: &Path, text: String) -> Result<Self, ConfigError> {
        let err = |line, key: Option<String>, message: String, hint: Option<&str>| ConfigError {
            file: file.to_owned(),
            line,
            key,
            message,
            hint: hint.map(str::to_owned),
        };
        let mut doc: toml::Table = toml::from_str(&text).map_err(|e| {
            err(
                e.span().map(|s| line_of(&text, s.start)),
                None,
                e.message().to_owned(),
                Some("check the TOML syntax"),
            )
        })?;
        let mut missing = Vec::new();
        for (k, v) in doc.iter_mut() {
            expand(v, k, &mut missing);
        }
        if let Some((key, var)) = missing.first() {
            let section = key.rsplit_once('.').map_or("", |(s, _)| s);
            let leaf = key.rsplit('.').next();
            return Err(err(
                find_key_line(&text, section, leaf),
                Some(key.clone()),
                format!("environment variable `{var}` is not set"),
                Some(&format!("export {var}=… before running talkhouse")),
            ));
        }
        let raw: RawConfig = toml::Value::Table(doc)
            .try_into()
            .map_err(|e: toml::de::Error| {
                let key = e.message().split('`').nth(1).map(str::to_owned);
                let line = key.as_deref().and_then(|k| {
                    ["destination", "serve", ""].iter().find_map(|s| {
                        if s.is_empty() {
                            text.lines()
                                .position(|l| l.trim_start().starts_with(&format!("[{k}")))
                                .map(|i| i + 1)
                        } else {
                            find_key_line(&text, s, Some(k))
                                .filter(|_| text.contains(&format!("[{s}]")))
                        }
                    })
                });
                err(
                    line,
                    key,
                    e.message().to_owned(),
                    Some("allowed top-level tables: [destination], [sources.NAME], [serve]"),
                )
            })?;
        if !["duckdb", "postgres", "delta"].contains(&raw.destination.kind.as_str()) {
            return Err(err(
                find_key_line(&text, "destination", Some("kind")),
                Some("destination.kind".into()),
                format!("unknown destination kind `{}`", raw.destination.kind),
                Some("use duckdb, postgres or delta"),
            ));
        }
        if raw.destination.kind == "postgres" && raw.destination.url.is_none() {
            return Err(err(
                find_key_line(&text, "destination", None),
                Some("destination.url".into()),
                "a postgres destination needs `url`".into(),
                Some("url = \"postgres://user@127.0.0.1:5432/warehouse\""),
            ));
        }
        if raw.destination.kind == "delta" && raw.destination.root.is_none() {
            return Err(err(
                find_key_line(&text, "destination", None),
                Some("destination.root".into()),
                "a delta destination needs `root`".into(),
                Some("root = \"warehouse-delta\" (a folder), or \"s3://bucket/prefix\""),
            ));
        }
        let duckdb_only = [
            ("memory_limit", raw.destination.memory_limit.is_some()),
            ("write_threads", raw.destination.write_threads.is_some()),
        ];
        for (key, set) in duckdb_only {
            if set && raw.destination.kind != "duckdb" {
                return Err(err(
                    find_key_line(&text, "destination", Some(key)),
                    Some(format!("destination.{key}")),
                    format!(
                        "`{key}` is a DuckDB setting; this destination is {}",
                        raw.destination.kind
                    ),
                    Some("remove it, or use kind = \"duckdb\""),
                ));
            }
        }
        if raw.destination.write_threads == Some(0) {
            return Err(err(
                find_key_line(&text, "destination", Some("write_threads")),
                Some("destination.write_threads".into()),
                "`write_threads` must be at least 1".into(),
                Some("write_threads = 1, or leave it out to keep one core for parsing"),
            ));
        }
        let mut sources = Vec::new();
        for (name, mut table) in raw.sources {
            let vendor = match table.remove("vendor") {
                Some(toml::Value::String(v)) => v,
                Some(_) => {
                    return Err(err(
                        find_key_line(&text, &format!("sources.{name}"), Some("vendor")),
                        Some(format!("sources.{name}.vendor")),
                        "`vendor` must be a string".into(),
                        None,
                    ));
                }
                None => name.clone(),
            };
            if talkhouse_sources::vendor(&vendor).is_none() {
                return Err(err(
                    find_key_line(&text, &format!("sources.{name}"), None),
                    Some(format!("sources.{name}")),
                    format!("unknown vendor `{vendor}`"),
                    Some(
                        "name the section after a vendor (gladly, giosg, ada, ultimate) or set vendor = \"…\"",
                    ),
                ));
            }
            if !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                || name == "talkhouse"
            {
                return Err(err(
                    find_key_line(&text, &format!("sources.{name}"), None),
                    Some(format!("sources.{name}")),
                    "a source name becomes a schema name: use lower-case letters, digits and `_` (and not `talkhouse`)".into(),
                    None,
                ));
            }
            sources.push(SourceSection {
                name,
                vendor,
                table,
            });
        }
        Ok(Self {
            file: file.to_owned(),
            text,
            destination: raw.destination,
            sources,
            serve: raw.serve,
        })
    }

    /// Builds every configured source (or those named).
    ///
    /// # Errors
    /// A [`ConfigError`] when a section is invalid or a name is unknown.
    pub fn build_sources(&self, only: &[String]) -> Result<Vec<Arc<dyn Source>>, ConfigError> {
        for name in only {
            if !self.sources.iter().any(|s| &s.name == name) {
                let known: Vec<&str> = self.sources.iter().map(|s| s.name.as_str()).collect();
                return Err(ConfigError {
                    file: self.file.clone(),
                    line: None,
                    key: Some(format!("sources.{name}")),
                    message: format!("no source `{name}` is configured"),
                    hint: Some(format!(
                        "configured sources: {}",
                        if known.is_empty() {
                            "none".into()
                        } else {
                            known.join(", ")
                        }
                    )),
                });
            }
        }
        self.sources
            .iter()
            .filter(|s| only.is_empty() || only.contains(&s.name))
            .map(|s| self.build_source(s))
            .collect()
    }

    /// Builds one source.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the key and its line.
    pub fn build_source(&self, s: &SourceSection) -> Result<Arc<dyn Source>, ConfigError> {
        let entry = talkhouse_sources::vendor(&s.vendor).ok_or_else(|| {
            self.section_error(s, None, format!("unknown vendor `{}`", s.vendor), None)
        })?;
        (entry.build)(&s.name, s.table.clone())
            .map_err(|e| self.section_error(s, e.key.as_deref(), e.message, e.hint))
    }

    /// An error located in a source's section.
    pub fn section_error(
        &self,
        s: &SourceSection,
        key: Option<&str>,
        message: String,
        hint: Option<String>,
    ) -> ConfigError {
        let section = format!("sources.{}", s.name);
        ConfigError {
            file: self.file.clone(),
            line: find_key_line(&self.text, &section, key),
            key: Some(key.map_or_else(|| section.clone(), |k| format!("{section}.{k}"))),
            message,
            hint: hint.or_else(|| {
                Some(format!(
                    "see the [sources.{}] example in the README",
                    s.vendor
                ))
            }),
        }
    }

    /// Opens the destination.
    ///
    /// # Errors
    /// When it cannot be reached.
    pub async fn open_destination(&self) -> anyhow::Result<Arc<dyn Destination>> {
        open_destination(&self.destination).await
    }
}

/// Opens a destination from its settings.
///
/// # Errors
/// When it cannot be reached.
pub async fn open_destination(d: &DestinationConfig) -> anyhow::Result<Arc<dyn Destination>> {
    match d.kind.as_str() {
        "postgres" => {
            let url = d.url.as_ref().map(Secret::expose).unwrap_or_default();
            let dest = talkhouse_destinations::postgres::connect(url).await?;
            Ok(Arc::new(dest))
        }
        #[cfg(feature = "delta")]
        "delta" => {
            let root = d.root.as_deref().unwrap_or("warehouse-delta");
            Ok(Arc::new(
                talkhouse_destinations::delta::DeltaDestination::open(root)?,
            ))
        }
        #[cfg(not(feature = "delta"))]
        "delta" => anyhow::bail!(
            "this build has no Delta Lake support (root {})\nhint: rebuild with `--features delta` (cargo build -p talkhouse-cli --features delta), or use kind = \"duckdb\" or \"postgres\"",
            d.root.as_deref().unwrap_or("unset")
        ),
        #[cfg(feature = "duckdb")]
        _ => {
            let path = d
                .path
                .clone()
                .unwrap_or_else(|| PathBuf::from("warehouse.duckdb"));
            let options = talkhouse_destinations::duckdb::DuckDbOptions {
                memory_limit: d.memory_limit.clone(),
                write_threads: d.write_threads,
            };
            Ok(Arc::new(
                talkhouse_destinations::duckdb::DuckDbDestination::open_with(&path, &options)?,
            ))
        }
        #[cfg(not(feature = "duckdb"))]
        _ => anyhow::bail!(
            "this build has no DuckDB support\nhint: rebuild with the default features, or use kind = \"postgres\""
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("talkhouse.toml"), text.to_owned())
    }

    #[test]
    fn unknown_top_level_key_names_key_and_line() {
        let e = parse("[destination]\nkind = \"duckdb\"\npaht = \"x\"\n").expect_err("unknown key");
        assert_eq!(e.key.as_deref(), Some("paht"));
        assert_eq!(e.line, Some(3));
        assert!(e.to_string().contains("hint:"));
    }

    #[test]
    fn missing_env_var_names_it() {
        let e = parse("[sources.ada]\ntoken = \"${TALKHOUSE_SURELY_UNSET_VAR}\"\n")
            .expect_err("unset var");
        assert_eq!(e.key.as_deref(), Some("sources.ada.token"));
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("TALKHOUSE_SURELY_UNSET_VAR"));
    }

    #[test]
    fn vendor_key_and_names() {
        let c =
            parse("[sources.gladly_eu]\nvendor = \"gladly\"\nemail = \"a@b\"\n").expect("valid");
        assert_eq!(c.sources[0].vendor, "gladly");
        assert!(!c.sources[0].table.contains_key("vendor"));
        let e = parse("[sources.zendesk]\n").expect_err("unknown vendor");
        assert!(e.message.contains("zendesk"));
        let e = parse("[destination]\nkind = \"snowflake\"\n").expect_err("bad kind");
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn syntax_error_has_a_line() {
        let e = parse("[destination]\nkind = \n").expect_err("syntax");
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn postgres_url_is_never_printed() {
        let c = parse("[destination]\nkind = \"postgres\"\nurl = \"postgres://u:hunter2@h/db\"\n")
            .expect("valid");
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn memory_limit_is_a_duckdb_setting() {
        let c = parse("[destination]\nmemory_limit = \"1GB\"\n").expect("valid");
        assert_eq!(c.destination.memory_limit.as_deref(), Some("1GB"));
        let e = parse("[destination]\nkind = \"delta\"\nroot = \"d\"\nmemory_limit = \"1GB\"\n")
            .expect_err("not for delta");
        assert_eq!(e.key.as_deref(), Some("destination.memory_limit"));
        assert_eq!(e.line, Some(4));
        assert!(e.to_string().contains("hint:"));
    }

    #[test]
    fn write_threads_is_a_duckdb_setting_of_at_least_one() {
        let c = parse("[destination]\nwrite_threads = 3\n").expect("valid");
        assert_eq!(c.destination.write_threads, Some(3));
        let e = parse("[destination]\nkind = \"delta\"\nroot = \"d\"\nwrite_threads = 1\n")
            .expect_err("not for delta");
        assert_eq!(e.key.as_deref(), Some("destination.write_threads"));
        assert_eq!(e.line, Some(4));
        let e = parse("[destination]\nwrite_threads = 0\n").expect_err("zero");
        assert_eq!(e.key.as_deref(), Some("destination.write_threads"));
        assert!(e.to_string().contains("hint:"));
    }
}

//! `talkhouse.toml`: the binary's configuration, read through serde.
//!
//! [`Config::parse`] reads a file in three steps:
//!
//! 1. `toml::de::DeTable::parse` turns the text into a document in which every key and value
//!    carries its byte span (a syntax error carries one too);
//! 2. `${VAR}` in every string is replaced with the environment's value (an unset variable is
//!    an error at that string);
//! 3. the sections are deserialised from that document: `[destination]` into
//!    [`DestinationConfig`] (see [`RawDestination`] for why through a flat table), `[serve]`
//!    into [`ServeConfig`] (durations typed as [`talkhouse_server::Interval`]), and each
//!    `[sources.NAME]` into a plain table that [`Config::build_source`] hands, unchanged, to its
//!    vendor's own parser.
//!
//! Every error names its key and line. serde's errors carry the span of the key or value they
//! are about; the [`KeyIndex`] built from the same document turns that span into the dotted
//! key. Checks made after deserialising point at `toml::Spanned` values, and the keys a
//! vendor's parser blames are looked up in the index.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use talkhouse_model::{Destination, DestinationError, Secret, Source};
use talkhouse_server::ServeConfig;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

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

/// Which destination `[destination] kind` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DestinationKind {
    /// An embedded DuckDB file (the default).
    #[default]
    Duckdb,
    /// A PostgreSQL database.
    Postgres,
    /// Delta Lake tables in a folder or an object store.
    Delta,
}

impl DestinationKind {
    /// The name as written in `kind = "…"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Duckdb => "duckdb",
            Self::Postgres => "postgres",
            Self::Delta => "delta",
        }
    }
}

/// The settings of `kind = "duckdb"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuckDbConfig {
    /// The database file (default `warehouse.duckdb`).
    pub path: PathBuf,
    /// The most memory DuckDB may use (`"1GB"`, `"512MB"`, at least 64 MiB); beyond it, it
    /// writes to disk. Default: a quarter of the machine's memory, at most 512 MiB.
    pub memory_limit: Option<String>,
    /// DuckDB's worker threads while it writes a batch (at most DuckDB's `threads`, the
    /// machine's cores). By default one core is left to talkhouse's own parsing of the next
    /// batch; queries use all of DuckDB's threads.
    pub write_threads: Option<NonZeroUsize>,
}

impl Default for DuckDbConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("warehouse.duckdb"),
            memory_limit: None,
            write_threads: None,
        }
    }
}

/// Where the warehouse is: `[destination]`, one variant per `kind`, each holding the settings
/// that kind uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestinationConfig {
    /// `kind = "duckdb"`, also when `kind` (or the whole section) is left out.
    DuckDb(DuckDbConfig),
    /// `kind = "postgres"`.
    Postgres {
        /// The connection URL (it may carry a password, so it is a secret).
        url: Secret,
    },
    /// `kind = "delta"`.
    Delta {
        /// The tables' root: a folder, or an `s3://`, `gs://` or `az://` URL.
        root: String,
    },
}

impl Default for DestinationConfig {
    fn default() -> Self {
        Self::DuckDb(DuckDbConfig::default())
    }
}

impl DestinationConfig {
    /// The kind.
    pub fn kind(&self) -> DestinationKind {
        match self {
            Self::DuckDb(_) => DestinationKind::Duckdb,
            Self::Postgres { .. } => DestinationKind::Postgres,
            Self::Delta { .. } => DestinationKind::Delta,
        }
    }

    /// The DuckDB settings, when the destination is DuckDB.
    pub fn duckdb(&self) -> Option<&DuckDbConfig> {
        match self {
            Self::DuckDb(d) => Some(d),
            _ => None,
        }
    }
}

/// `[destination]` as written: one flat, strict table whose `kind` picks the variant of
/// [`DestinationConfig`].
///
/// Not a `#[serde(tag = "kind")]` enum, for three reasons of the file's contract: `kind` may be
/// left out (DuckDB); a setting of another kind (`memory_limit` under `kind = "delta"`) is
/// reported as such, not as an unknown key; and serde buffers an internally tagged table
/// before it picks the variant, which drops the spans that give errors their line.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDestination {
    #[serde(default)]
    kind: Option<Spanned<DestinationKind>>,
    #[serde(default)]
    path: Option<PathBuf>,
    #[serde(default)]
    url: Option<Secret>,
    #[serde(default)]
    root: Option<String>,
    #[serde(default)]
    memory_limit: Option<Spanned<String>>,
    #[serde(default)]
    write_threads: Option<Spanned<usize>>,
}

impl RawDestination {
    /// The variant `kind` names, or the key to blame: (key below `destination`, span, message,
    /// hint). A key without a span is located at the `[destination]` header.
    fn resolve(self) -> Result<DestinationConfig, Blame> {
        let kind = self
            .kind
            .as_ref()
            .map_or(DestinationKind::Duckdb, |k| *k.get_ref());
        if kind != DestinationKind::Duckdb {
            let duckdb_only = [
                (
                    "memory_limit",
                    self.memory_limit.as_ref().map(Spanned::span),
                ),
                (
                    "write_threads",
                    self.write_threads.as_ref().map(Spanned::span),
                ),
            ];
            if let Some((key, Some(span))) = duckdb_only.into_iter().find(|(_, s)| s.is_some()) {
                return Err(Blame {
                    key,
                    span: Some(span),
                    message: format!(
                        "`{key}` is a DuckDB setting; this destination is {}",
                        kind.as_str()
                    ),
                    hint: "remove it, or use kind = \"duckdb\"",
                });
            }
        }
        match kind {
            DestinationKind::Postgres => match self.url {
                Some(url) => Ok(DestinationConfig::Postgres { url }),
                None => Err(Blame {
                    key: "url",
                    span: None,
                    message: "a postgres destination needs `url`".into(),
                    hint: "url = \"postgres://user@127.0.0.1:5432/warehouse\"",
                }),
            },
            DestinationKind::Delta => match self.root {
                Some(root) => Ok(DestinationConfig::Delta { root }),
                None => Err(Blame {
                    key: "root",
                    span: None,
                    message: "a delta destination needs `root`".into(),
                    hint: "root = \"warehouse-delta\" (a folder), or \"s3://bucket/prefix\"",
                }),
            },
            DestinationKind::Duckdb => {
                let write_threads = match self.write_threads {
                    None => None,
                    Some(n) => Some(NonZeroUsize::new(*n.get_ref()).ok_or_else(|| Blame {
                        key: "write_threads",
                        span: Some(n.span()),
                        message: "`write_threads` must be at least 1".into(),
                        hint: "write_threads = 1, or leave it out to keep one core for parsing",
                    })?),
                };
                let default = DuckDbConfig::default();
                Ok(DestinationConfig::DuckDb(DuckDbConfig {
                    path: self.path.unwrap_or(default.path),
                    memory_limit: self.memory_limit.map(Spanned::into_inner),
                    write_threads,
                }))
            }
        }
    }
}

/// A `[destination]` key to blame.
struct Blame {
    key: &'static str,
    span: Option<Range<usize>>,
    message: String,
    hint: &'static str,
}

/// The file as serde reads it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    destination: RawDestination,
    #[serde(default)]
    sources: BTreeMap<String, toml::Table>,
    #[serde(default)]
    serve: Option<ServeConfig>,
}

/// Where each key of a file is: its dotted path and the byte spans of the key and its value,
/// from the spanned document `toml` parsed.
#[derive(Debug, Clone, Default)]
struct KeyIndex {
    entries: Vec<KeyEntry>,
    /// The byte offset at which each line starts.
    line_starts: Vec<usize>,
}

/// One key of the file.
#[derive(Debug, Clone)]
struct KeyEntry {
    /// Table names and the key (`["sources", "ada", "token"]`); an element of an array of
    /// tables is named by its index.
    path: Vec<String>,
    /// The key's span (in a `[table]` header for a table).
    key: Range<usize>,
    /// The value's span (the header, for a table given by one).
    value: Range<usize>,
}

impl KeyIndex {
    /// An index of `text`'s lines; [`KeyIndex::add`] adds the keys.
    fn new(text: &str) -> Self {
        Self {
            entries: Vec::new(),
            line_starts: std::iter::once(0)
                .chain(text.match_indices('\n').map(|(i, _)| i + 1))
                .collect(),
        }
    }

    /// Adds every key of `table`, below `path`.
    fn add(&mut self, path: &mut Vec<String>, table: &DeTable<'_>) {
        for (key, value) in table.iter() {
            path.push(key.get_ref().to_string());
            self.entries.push(KeyEntry {
                path: path.clone(),
                key: key.span(),
                value: value.span(),
            });
            self.add_value(path, value.get_ref());
            path.pop();
        }
    }

    fn add_value(&mut self, path: &mut Vec<String>, value: &DeValue<'_>) {
        match value {
            DeValue::Table(t) => self.add(path, t),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let DeValue::Table(t) = item.get_ref() {
                        path.push(i.to_string());
                        self.add(path, t);
                        path.pop();
                    }
                }
            }
            _ => {}
        }
    }

    /// The 1-based line of a byte offset.
    fn line(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|start| *start <= offset)
    }

    /// The key an error's span is about, and whether the span is the key itself (an unknown
    /// key) rather than its value: the key with exactly that span, else the deepest value with
    /// exactly that span, else the deepest value holding it.
    fn at(&self, span: &Range<usize>) -> Option<(&KeyEntry, bool)> {
        if let Some(e) = self.entries.iter().find(|e| e.key == *span) {
            return Some((e, true));
        }
        deepest(&self.entries, |e| e.value == *span)
            .or_else(|| deepest(&self.entries, |e| e.value.contains(&span.start)))
            .map(|e| (e, false))
    }

    /// The entry at exactly `path`.
    fn get(&self, path: &[&str]) -> Option<&KeyEntry> {
        self.entries
            .iter()
            .find(|e| e.path.iter().map(String::as_str).eq(path.iter().copied()))
    }

    /// The line of `key` in the table at `section`: the key directly in it, else the first key
    /// of that name below it (a nested table of a vendor's settings), else the table's own
    /// line (its header).
    fn line_of(&self, section: &[&str], key: Option<&str>) -> Option<usize> {
        let below = |e: &&KeyEntry| {
            e.path.len() > section.len()
                && e.path.iter().zip(section).all(|(a, b)| a.as_str() == *b)
        };
        let found = key.and_then(|k| {
            let mut path = section.to_vec();
            path.push(k);
            self.get(&path).or_else(|| {
                self.entries
                    .iter()
                    .filter(below)
                    .find(|e| e.path.last().is_some_and(|last| last == k))
            })
        });
        found
            .or_else(|| self.get(section))
            .map(|e| self.line(e.key.start))
    }
}

/// The entry with the longest path among those `hit` picks.
fn deepest(entries: &[KeyEntry], hit: impl Fn(&KeyEntry) -> bool) -> Option<&KeyEntry> {
    entries
        .iter()
        .filter(|&e| hit(e))
        .max_by_key(|e| e.path.len())
}

/// The hint for an error about a key at `path`.
fn hint_for(path: &[String]) -> &'static str {
    let second = path.get(1).map(String::as_str);
    match path.first().map(String::as_str) {
        Some("destination") if second == Some("kind") => "use duckdb, postgres or delta",
        Some("destination") => {
            "[destination] takes kind, then path, memory_limit and write_threads (duckdb), url (postgres) or root (delta)"
        }
        Some("serve") => "see the [serve] example in the README",
        Some("sources") => {
            "each source is a table, [sources.NAME], of its vendor's settings (see the README)"
        }
        _ => "allowed top-level tables: [destination], [sources.NAME], [serve]",
    }
}

/// Replaces `${VAR}` in every string below `table` with the environment's value; returns the
/// first unset variable: (the key's dotted name, the string's span, the variable).
fn expand(table: &mut DeTable<'_>, path: &str) -> Option<(String, Range<usize>, String)> {
    let mut missing = None;
    for (key, value) in table.iter_mut() {
        let name = if path.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{path}.{}", key.get_ref())
        };
        let found = expand_value(value, &name);
        missing = missing.or(found);
    }
    missing
}

fn expand_value(
    value: &mut Spanned<DeValue<'_>>,
    name: &str,
) -> Option<(String, Range<usize>, String)> {
    let span = value.span();
    match value.get_mut() {
        DeValue::String(s) => {
            let mut out = String::with_capacity(s.len());
            let mut rest: &str = s;
            let mut missing = None;
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
                    Err(_) => {
                        missing = missing
                            .or_else(|| Some((name.to_owned(), span.clone(), var.to_owned())));
                    }
                }
                rest = &after[end + 1..];
            }
            out.push_str(rest);
            *s = out.into();
            missing
        }
        DeValue::Array(items) => {
            let mut missing = None;
            for (i, item) in items.iter_mut().enumerate() {
                let found = expand_value(item, &format!("{name}[{i}]"));
                missing = missing.or(found);
            }
            missing
        }
        DeValue::Table(t) => expand(t, name),
        _ => None,
    }
}

/// A parsed configuration.
pub struct Config {
    /// The file it came from.
    pub file: PathBuf,
    /// Where each key is (for locating keys in later errors).
    index: KeyIndex,
    /// Destination settings.
    pub destination: DestinationConfig,
    /// `[sources.NAME]` sections, `${VAR}`s expanded, with their vendor.
    pub sources: Vec<SourceSection>,
    /// `[serve]` (its defaults when the section is absent).
    pub serve: ServeConfig,
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
            .field("serve", &self.serve)
            .finish_non_exhaustive()
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
        let mut index = KeyIndex::new(&text);
        let mut doc = DeTable::parse(&text).map_err(|e| {
            err(
                e.span().map(|s| index.line(s.start)),
                None,
                e.message().to_owned(),
                Some("check the TOML syntax"),
            )
        })?;
        index.add(&mut Vec::new(), doc.get_ref());
        if let Some((key, span, var)) = expand(doc.get_mut(), "") {
            return Err(err(
                Some(index.line(span.start)),
                Some(key),
                format!("environment variable `{var}` is not set"),
                Some(&format!("export {var}=… before running talkhouse")),
            ));
        }
        let raw = RawConfig::deserialize(toml::de::Deserializer::from(doc)).map_err(|e| {
            let span = e.span();
            let found = span.as_ref().and_then(|s| index.at(s));
            // An unknown key is named as written; a bad value by its dotted path.
            let key = found.map(|(entry, is_key)| match (is_key, entry.path.last()) {
                (true, Some(last)) => last.clone(),
                _ => entry.path.join("."),
            });
            let hint = found.map_or(hint_for(&[]), |(entry, _)| hint_for(&entry.path));
            err(
                span.map(|s| index.line(s.start)),
                key,
                e.message().to_owned(),
                Some(hint),
            )
        })?;
        let destination = raw.destination.resolve().map_err(|b| {
            err(
                b.span.map_or_else(
                    || index.line_of(&["destination"], None),
                    |s| Some(index.line(s.start)),
                ),
                Some(format!("destination.{}", b.key)),
                b.message,
                Some(b.hint),
            )
        })?;
        let mut sources = Vec::new();
        for (name, mut table) in raw.sources {
            let section = ["sources", name.as_str()];
            let vendor = match table.remove("vendor") {
                Some(toml::Value::String(v)) => v,
                Some(_) => {
                    return Err(err(
                        index.line_of(&section, Some("vendor")),
                        Some(format!("sources.{name}.vendor")),
                        "`vendor` must be a string".into(),
                        None,
                    ));
                }
                None => name.clone(),
            };
            if talkhouse_sources::vendor(&vendor).is_none() {
                return Err(err(
                    index.line_of(&section, None),
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
                    index.line_of(&section, None),
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
        let serve = raw.serve.unwrap_or_default();
        let configured: Vec<(&str, &str)> = sources
            .iter()
            .map(|s| (s.name.as_str(), s.vendor.as_str()))
            .collect();
        if let Err(e) = serve.check(&configured) {
            let mut path = vec!["serve"];
            path.extend(e.key.iter().map(String::as_str));
            let (section, key) = path.split_at(path.len().saturating_sub(1));
            return Err(err(
                index.line_of(section, key.first().copied()),
                Some(path.join(".")),
                e.message,
                Some(hint_for(&["serve".to_owned()])),
            ));
        }
        Ok(Self {
            file: file.to_owned(),
            index,
            destination,
            sources,
            serve,
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

    /// Builds one source: its table goes, as written (less `vendor`), to its vendor's parser.
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

    /// An error located in a source's section: at `key` (found directly in the section, else in
    /// a table below it), else at the section's header.
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
            line: self.index.line_of(&["sources", &s.name], key),
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
    /// See [`open_destination`].
    pub async fn open_destination(&self) -> Result<Arc<dyn Destination>, OpenError> {
        open_destination(&self.destination).await
    }
}

/// Why a destination could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// This build was made without the destination's cargo feature.
    #[error("this build has no {kind} support")]
    NotBuilt {
        /// The destination's name (`Delta Lake`, `DuckDB`).
        kind: &'static str,
        /// What to do.
        hint: &'static str,
    },
    /// The destination could not be opened or reached.
    #[error(transparent)]
    Destination(#[from] DestinationError),
}

impl OpenError {
    /// What the user can do about it, where talkhouse knows.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Self::NotBuilt { hint, .. } => Some(hint),
            Self::Destination(_) => None,
        }
    }
}

/// Opens a destination from its settings.
///
/// # Errors
/// [`OpenError::NotBuilt`] when this build leaves the kind out, [`OpenError::Destination`] when
/// it cannot be opened or reached.
pub async fn open_destination(d: &DestinationConfig) -> Result<Arc<dyn Destination>, OpenError> {
    match d {
        DestinationConfig::Postgres { url } => Ok(Arc::new(
            talkhouse_destinations::postgres::connect(url.expose()).await?,
        )),
        #[cfg(feature = "delta")]
        DestinationConfig::Delta { root } => Ok(Arc::new(
            talkhouse_destinations::delta::DeltaDestination::open(root)?,
        )),
        #[cfg(not(feature = "delta"))]
        DestinationConfig::Delta { .. } => Err(OpenError::NotBuilt {
            kind: "Delta Lake",
            hint: "rebuild with `--features delta` (cargo build -p talkhouse-cli --features delta), or use kind = \"duckdb\" or \"postgres\"",
        }),
        #[cfg(feature = "duckdb")]
        DestinationConfig::DuckDb(duck) => {
            let options = talkhouse_destinations::duckdb::DuckDbOptions {
                memory_limit: duck.memory_limit.clone(),
                write_threads: duck.write_threads.map(NonZeroUsize::get),
            };
            Ok(Arc::new(
                talkhouse_destinations::duckdb::DuckDbDestination::open_with(&duck.path, &options)?,
            ))
        }
        #[cfg(not(feature = "duckdb"))]
        DestinationConfig::DuckDb(_) => Err(OpenError::NotBuilt {
            kind: "DuckDB",
            hint: "rebuild with the default features, or use kind = \"postgres\"",
        }),
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
        assert_eq!(
            c.destination
                .duckdb()
                .and_then(|d| d.memory_limit.as_deref()),
            Some("1GB")
        );
        let e = parse("[destination]\nkind = \"delta\"\nroot = \"d\"\nmemory_limit = \"1GB\"\n")
            .expect_err("not for delta");
        assert_eq!(e.key.as_deref(), Some("destination.memory_limit"));
        assert_eq!(e.line, Some(4));
        assert!(e.to_string().contains("hint:"));
    }

    #[test]
    fn write_threads_is_a_duckdb_setting_of_at_least_one() {
        let c = parse("[destination]\nwrite_threads = 3\n").expect("valid");
        assert_eq!(
            c.destination.duckdb().and_then(|d| d.write_threads),
            NonZeroUsize::new(3)
        );
        let e = parse("[destination]\nkind = \"delta\"\nroot = \"d\"\nwrite_threads = 1\n")
            .expect_err("not for delta");
        assert_eq!(e.key.as_deref(), Some("destination.write_threads"));
        assert_eq!(e.line, Some(4));
        let e = parse("[destination]\nwrite_threads = 0\n").expect_err("zero");
        assert_eq!(e.key.as_deref(), Some("destination.write_threads"));
        assert!(e.to_string().contains("hint:"));
    }

    #[test]
    fn each_kind_is_its_own_variant() {
        let c = parse("").expect("empty file");
        assert_eq!(c.destination, DestinationConfig::default());
        assert_eq!(c.serve.workers, ServeConfig::default().workers);
        let c = parse("[destination]\nkind = \"delta\"\nroot = \"s3://b/p\"\n").expect("delta");
        assert_eq!(
            c.destination,
            DestinationConfig::Delta {
                root: "s3://b/p".into()
            }
        );
        let e = parse("\n[destination]\nkind = \"postgres\"\n").expect_err("no url");
        assert_eq!(e.key.as_deref(), Some("destination.url"));
        assert_eq!(e.line, Some(2), "at the section's header");
        assert!(e.to_string().contains("hint: url = "), "{e}");
    }

    #[test]
    fn a_bad_value_names_its_dotted_key_and_line() {
        let e = parse("[destination]\npath = \"w.duckdb\"\nwrite_threads = \"two\"\n")
            .expect_err("a string for a number");
        assert_eq!(e.key.as_deref(), Some("destination.write_threads"));
        assert_eq!(e.line, Some(3));
        let e = parse("[destination]\nkind = \"snowflake\"\n").expect_err("bad kind");
        assert_eq!(e.key.as_deref(), Some("destination.kind"));
        assert!(
            e.to_string().contains("use duckdb, postgres or delta"),
            "{e}"
        );
        let e = parse("[destinaton]\nkind = \"duckdb\"\n").expect_err("unknown table");
        assert_eq!(e.key.as_deref(), Some("destinaton"));
        assert_eq!(e.line, Some(1));
        assert!(e.to_string().contains("[sources.NAME]"), "{e}");
    }

    #[test]
    fn serve_is_typed_and_located() {
        let c = parse(
            "[serve]\nrequest_timeout = \"2s\"\nschedule = { ada = \"15m\" }\n\n[sources.ada]\n",
        )
        .expect("valid");
        assert_eq!(c.serve.request_timeout.0, std::time::Duration::from_secs(2));
        assert_eq!(
            c.serve.schedule["ada"].0,
            std::time::Duration::from_secs(900)
        );
        let e = parse("[serve]\nlisten = \"127.0.0.1:1\"\nrequest_timeout = \"10 seconds\"\n")
            .expect_err("not an interval");
        assert_eq!(e.key.as_deref(), Some("serve.request_timeout"));
        assert_eq!(e.line, Some(3));
        assert!(
            e.to_string().contains("hint: see the [serve] example"),
            "{e}"
        );
        let e = parse("[serve]\nworkerz = 2\n").expect_err("unknown key");
        assert_eq!(e.key.as_deref(), Some("workerz"));
        assert_eq!(e.line, Some(2));
        let e = parse("[sources.ada]\n\n[serve.schedule]\nada = \"1h\"\ngladly = \"1h\"\n")
            .expect_err("gladly is not configured");
        assert_eq!(e.key.as_deref(), Some("serve.schedule.gladly"));
        assert_eq!(e.line, Some(5));
        assert!(e.message.contains("not a configured source"), "{e}");
    }

    #[test]
    fn a_vendor_parser_error_is_located_in_its_section() {
        let c = parse("[sources.ada]\ntoken = \"t\"\n\n[sources.ada_eu]\nvendor = \"ada\"\ntoken = \"t\"\ntokn = \"x\"\n")
            .expect("the file itself is valid");
        let eu = c
            .sources
            .iter()
            .find(|s| s.name == "ada_eu")
            .expect("ada_eu");
        let e = c
            .section_error(eu, Some("tokn"), "unknown field `tokn`".into(), None)
            .to_string();
        assert!(
            e.starts_with("talkhouse.toml:7: `sources.ada_eu.tokn`"),
            "{e}"
        );
        let e = c.section_error(eu, None, "broken".into(), None);
        assert_eq!(e.line, Some(4));
    }
}

//! Switches for vendor facts that are unconfirmed (section 9 of each vendor file).
//!
//! Keys are `<vendor>.<switch>`, values are strings; each vendor module documents its keys and
//! their defaults. On the command line: `--variant gladly.retry_after=on`.

use std::collections::BTreeMap;

/// A set of variant switches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Variants(BTreeMap<String, String>);

impl Variants {
    /// Parses `key=value,key=value`.
    ///
    /// # Errors
    /// Names the first item without `=`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut map = BTreeMap::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (k, v) = item.split_once('=').ok_or_else(|| {
                format!("variant `{item}` is not of the form vendor.switch=value")
            })?;
            map.insert(k.trim().to_owned(), v.trim().to_owned());
        }
        Ok(Self(map))
    }

    /// Sets a switch (builder style).
    #[must_use]
    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.0.insert(key.to_owned(), value.to_owned());
        self
    }

    /// The value of a switch.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// The value of a switch, or `default`.
    pub fn get_or<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.get(key).unwrap_or(default)
    }

    /// Whether a switch is on (`on`, `true`, `1`, `yes`).
    pub fn on(&self, key: &str) -> bool {
        matches!(self.get(key), Some("on" | "true" | "1" | "yes"))
    }
}

//! Table declarations: what a source writes, so destinations can create and evolve tables.

/// The schema that holds the cross-vendor model (`talkhouse.conversations`, …) and bookkeeping.
pub const MODEL_SCHEMA: &str = "talkhouse";

/// Which table a [`crate::Row`] belongs to.
///
/// Vendor tables live in the source's own schema (`gladly`, or `gladly_eu` for a second
/// account); model tables live in [`MODEL_SCHEMA`] and carry a `source` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableRef {
    /// `true` for a table of the cross-vendor model, in schema `talkhouse`.
    pub model: bool,
    /// Table name inside its schema.
    pub name: &'static str,
}

impl TableRef {
    /// A table in the source's own schema.
    pub const fn source(name: &'static str) -> Self {
        Self { model: false, name }
    }

    /// A table of the cross-vendor model, in schema `talkhouse`.
    pub const fn model(name: &'static str) -> Self {
        Self { model: true, name }
    }

    /// The schema this table lives in, given the source's name.
    pub fn schema<'a>(&self, source: &'a str) -> &'a str {
        if self.model { MODEL_SCHEMA } else { source }
    }
}

/// The logical type of a column; each destination maps it to its own SQL type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnType {
    /// UTF-8 text.
    Text,
    /// 64-bit signed integer.
    Integer,
    /// 64-bit float.
    Float,
    /// Boolean.
    Boolean,
    /// An instant, stored in UTC with microsecond precision.
    Timestamp,
    /// A calendar date.
    Date,
    /// A JSON document (DuckDB `JSON`, PostgreSQL `JSONB`).
    Json,
}

/// One declared column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Column name, snake_case.
    pub name: &'static str,
    /// Logical type.
    pub ty: ColumnType,
    /// Personal data (names, addresses, emails, phones, bodies, subjects): nulled by redaction.
    pub personal: bool,
}

impl Column {
    /// A column holding no personal data.
    pub const fn new(name: &'static str, ty: ColumnType) -> Self {
        Self {
            name,
            ty,
            personal: false,
        }
    }

    /// A column holding personal data, nulled when a record is redacted.
    pub const fn personal(name: &'static str, ty: ColumnType) -> Self {
        Self {
            name,
            ty,
            personal: true,
        }
    }
}

/// A table a source writes.
///
/// Destinations add the bookkeeping columns `_raw`, `_synced_at`, `_load_id` and `_deleted_at`
/// themselves; a spec lists only the vendor's (or the model's) own columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    /// Which table.
    pub table: TableRef,
    /// The columns, in order.
    pub columns: Vec<Column>,
    /// Primary key column names.
    pub primary_key: Vec<&'static str>,
    /// For child tables (nested lists): the parent's key columns. When a batch carries rows of a
    /// parent, they replace every earlier row of that parent, so a list that shrank leaves no
    /// stale positions behind.
    pub parent_key: Option<Vec<&'static str>>,
    /// A timestamp (or date) column whose UTC day partitions the table where the destination
    /// partitions (Delta Lake: a `_day` partition column). `None` for small tables.
    pub day_column: Option<&'static str>,
}

impl TableSpec {
    /// A table with a primary key and no parent.
    pub fn new(table: TableRef, columns: Vec<Column>, primary_key: &[&'static str]) -> Self {
        Self {
            table,
            columns,
            primary_key: primary_key.to_vec(),
            parent_key: None,
            day_column: None,
        }
    }

    /// Declares this table a child of the parent identified by `parent_key`.
    #[must_use]
    pub fn child_of(mut self, parent_key: &[&'static str]) -> Self {
        self.parent_key = Some(parent_key.to_vec());
        self
    }

    /// Partitions the table by the UTC day of `column` where the destination partitions.
    #[must_use]
    pub fn partitioned_by_day(mut self, column: &'static str) -> Self {
        self.day_column = Some(column);
        self
    }

    /// The columns that identify a group of rows replaced together: the parent key for child
    /// tables, the primary key otherwise.
    pub fn group_key(&self) -> &[&'static str] {
        self.parent_key.as_deref().unwrap_or(&self.primary_key)
    }

    /// The column with this name.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

//! Where the tables live: a local folder or an object-store URL.

use std::path::PathBuf;

use talkhouse_model::DestinationError;
use url::Url;

/// The root under which every table is `<schema>/<table>/`.
#[derive(Clone)]
pub(crate) struct DeltaRoot {
    url: Url,
}

impl DeltaRoot {
    /// Parses `root`: a URL with a scheme (`s3://`, `gs://`, `az://`, `abfss://`, `file://`,
    /// `memory://`) or a local path, relative to the current directory.
    pub(crate) fn parse(root: &str) -> Result<Self, DestinationError> {
        let bad = |message: String| DestinationError::Connect {
            target: Self::strip(root),
            message,
        };
        let mut url = if root.contains("://") {
            Url::parse(root).map_err(|e| bad(format!("not a URL: {e}")))?
        } else {
            let path = std::path::absolute(PathBuf::from(root))
                .map_err(|e| bad(format!("not a folder: {e}")))?;
            std::fs::create_dir_all(&path).map_err(|e| bad(format!("cannot create it: {e}")))?;
            Url::from_directory_path(&path).map_err(|()| bad("not an absolute folder".into()))?
        };
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(Self { url })
    }

    /// The URL of `schema.table`.
    pub(crate) fn table_url(&self, schema: &str, table: &str) -> Result<Url, DestinationError> {
        self.url
            .join(&format!("{schema}/{table}/"))
            .map_err(|e| DestinationError::Connect {
                target: self.shown(),
                message: format!("no table URL for {schema}.{table}: {e}"),
            })
    }

    /// Creates a local table folder (object stores need none).
    pub(crate) fn create_local_dir(&self, url: &Url) -> Result<(), DestinationError> {
        if url.scheme() != "file" {
            return Ok(());
        }
        let path = url.to_file_path().map_err(|()| DestinationError::Connect {
            target: self.shown(),
            message: format!("{url} is no local folder"),
        })?;
        std::fs::create_dir_all(&path).map_err(|e| DestinationError::Connect {
            target: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// The root for logs: no user, password or query string.
    pub(crate) fn shown(&self) -> String {
        Self::strip(self.url.as_str())
    }

    fn strip(root: &str) -> String {
        match Url::parse(root) {
            Ok(mut u) if u.has_host() => {
                let _ = u.set_username("");
                let _ = u.set_password(None);
                u.set_query(None);
                u.to_string()
            }
            _ => root.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_folders() {
        let r = DeltaRoot::parse("s3://user:secret@bucket/prefix?token=x")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.shown(), "s3://bucket/prefix/");
        let t = r
            .table_url("gladly", "conversation_items")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.path(), "/prefix/gladly/conversation_items/");
        let dir = std::env::temp_dir().join(format!("th-delta-root-{}", std::process::id()));
        let r = DeltaRoot::parse(&dir.display().to_string()).unwrap_or_else(|e| panic!("{e}"));
        assert!(r.shown().starts_with("file:///"));
        assert!(dir.is_dir());
        let _ = std::fs::remove_dir_all(dir);
    }
}

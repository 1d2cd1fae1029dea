//! Connection settings parsed from a `postgres://` URL (or libpq `key=value` string).

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use talkhouse_model::DestinationError;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::{Client, NoTls};

/// Where and how to connect. Holds the password, but never prints it: `Debug` and
/// [`PostgresConfig::describe`] leave it out.
#[derive(Clone)]
pub struct PostgresConfig {
    pg: tokio_postgres::Config,
    tls: bool,
    root_cert: Option<PathBuf>,
}

impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("target", &self.describe())
            .finish_non_exhaustive()
    }
}

/// The URL with its password removed, for messages about a URL that did not parse.
fn redacted_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            // `set_password` only fails for URLs that cannot have one.
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "postgres (URL not shown)".to_owned(),
    }
}

impl PostgresConfig {
    /// Parses a `postgres://user:password@host:port/db?sslmode=require` URL or a libpq
    /// `host=… user=…` string.
    ///
    /// # Errors
    /// When the URL does not parse; the message never contains the password.
    pub fn parse(url: &str) -> Result<Self, DestinationError> {
        let url = url.trim();
        let fail = |message: String| DestinationError::Connect {
            target: redacted_url(url),
            message,
        };
        let mut root_cert = None;
        let mut force_tls = false;
        let cleaned = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let mut u = url::Url::parse(url).map_err(|e| fail(format!("invalid URL: {e}")))?;
            let mut kept: Vec<(String, String)> = Vec::new();
            for (k, v) in u.query_pairs() {
                match (k.as_ref(), v.as_ref()) {
                    ("sslrootcert", path) => root_cert = Some(PathBuf::from(path)),
                    // tokio-postgres knows disable|prefer|require; we always verify certificates.
                    ("sslmode", "verify-ca" | "verify-full") => {
                        force_tls = true;
                        kept.push(("sslmode".into(), "require".into()));
                    }
                    _ => kept.push((k.into_owned(), v.into_owned())),
                }
            }
            if kept.is_empty() {
                u.set_query(None);
            } else {
                u.query_pairs_mut().clear().extend_pairs(kept);
            }
            u.to_string()
        } else {
            url.to_owned()
        };
        let mut pg = tokio_postgres::Config::from_str(&cleaned).map_err(|e| fail(e.to_string()))?;
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(Duration::from_secs(10));
        }
        if pg.get_application_name().is_none() {
            pg.application_name("talkhouse");
        }
        let tls = force_tls || pg.get_ssl_mode() == SslMode::Require;
        Ok(Self { pg, tls, root_cert })
    }

    /// Whether connections use TLS.
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// `postgres://user@host:port/db` — no password, for logs and messages.
    pub fn describe(&self) -> String {
        let user = self
            .pg
            .get_user()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let hosts: Vec<String> = self
            .pg
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let host = match h {
                    Host::Tcp(name) => name.clone(),
                    #[cfg(unix)]
                    Host::Unix(path) => path.display().to_string(),
                };
                let port = self
                    .pg
                    .get_ports()
                    .get(i)
                    .or_else(|| self.pg.get_ports().first())
                    .copied()
                    .unwrap_or(5432);
                format!("{host}:{port}")
            })
            .collect();
        let db = self.pg.get_dbname().unwrap_or_default();
        let tls = if self.tls { "?sslmode=require" } else { "" };
        format!("postgres://{user}{}/{db}{tls}", hosts.join(","))
    }

    fn connect_error(&self, message: impl std::fmt::Display) -> DestinationError {
        DestinationError::Connect {
            target: self.describe(),
            message: message.to_string(),
        }
    }

    fn tls_config(&self) -> Result<rustls::ClientConfig, DestinationError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = &self.root_cert {
            use rustls::pki_types::CertificateDer;
            use rustls::pki_types::pem::PemObject;
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| self.connect_error(format!("sslrootcert {}: {e}", path.display())))?;
            for cert in certs {
                let cert = cert.map_err(|e| {
                    self.connect_error(format!("sslrootcert {}: {e}", path.display()))
                })?;
                roots.add(cert).map_err(|e| {
                    self.connect_error(format!("sslrootcert {}: {e}", path.display()))
                })?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Ok(rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| self.connect_error(e))?
            .with_root_certificates(roots)
            .with_no_client_auth())
    }

    /// Opens a connection (its driver runs on a spawned task) with the session in UTC.
    ///
    /// # Errors
    /// When the server cannot be reached, refuses us, or the TLS handshake fails.
    pub async fn connect(&self) -> Result<Client, DestinationError> {
        let client = if self.tls {
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(self.tls_config()?);
            let (client, connection) = self
                .pg
                .connect(tls)
                .await
                .map_err(|e| self.connect_error(error_text(&e)))?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(error = %e, "postgres connection closed");
                }
            });
            client
        } else {
            let (client, connection) = self
                .pg
                .connect(NoTls)
                .await
                .map_err(|e| self.connect_error(error_text(&e)))?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(error = %e, "postgres connection closed");
                }
            });
            client
        };
        client
            .batch_execute("SET TIME ZONE 'UTC'")
            .await
            .map_err(|e| self.connect_error(error_text(&e)))?;
        Ok(client)
    }
}

/// An error with its causes (tokio-postgres puts the useful part in the source chain).
pub(crate) fn error_text(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{} ({})", db.message(), db.code().code());
        if let Some(detail) = db.detail() {
            s.push_str(": ");
            s.push_str(detail);
        }
        if let Some(hint) = db.hint() {
            s.push_str("; hint: ");
            s.push_str(hint);
        }
        return s;
    }
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = cause.source();
    }
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn describe_hides_the_password() {
        let c = PostgresConfig::parse("postgres://alice:s3cret@db.example:5433/wh?sslmode=require")
            .unwrap();
        assert_eq!(
            c.describe(),
            "postgres://alice@db.example:5433/wh?sslmode=require"
        );
        assert!(c.tls());
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn plain_unless_asked() {
        let c = PostgresConfig::parse("postgres://bob@localhost/test").unwrap();
        assert!(!c.tls());
        assert_eq!(c.describe(), "postgres://bob@localhost:5432/test");
        let c =
            PostgresConfig::parse("postgresql://bob@localhost/test?sslmode=verify-full").unwrap();
        assert!(c.tls());
    }

    #[test]
    fn parse_errors_hide_the_password() {
        let e = PostgresConfig::parse("postgres://alice:s3cret@db.example/wh?sslmode=bogus")
            .unwrap_err();
        let text = format!("{e} {e:?}");
        assert!(!text.contains("s3cret"), "{text}");
        let e =
            PostgresConfig::parse("postgres://alice:s3cret@db.example/wh?nonsense=1").unwrap_err();
        let text = format!("{e} {e:?}");
        assert!(!text.contains("s3cret"), "{text}");
    }

    #[test]
    fn tls_config_builds_with_webpki_roots() {
        let c = PostgresConfig::parse("postgres://u:pw@h/db?sslmode=require").unwrap();
        assert!(c.tls_config().is_ok());
        let c = PostgresConfig::parse(
            "postgres://u:pw@h/db?sslmode=require&sslrootcert=/nonexistent/ca.pem",
        )
        .unwrap();
        let e = c.tls_config().unwrap_err().to_string();
        assert!(
            e.contains("/nonexistent/ca.pem") && !e.contains("pw@"),
            "{e}"
        );
    }

    #[test]
    fn root_cert_is_taken_out_of_the_url() {
        let c = PostgresConfig::parse("postgres://u@h/db?sslmode=require&sslrootcert=/tmp/ca.pem")
            .unwrap();
        assert_eq!(
            c.root_cert.as_deref(),
            Some(std::path::Path::new("/tmp/ca.pem"))
        );
    }
}

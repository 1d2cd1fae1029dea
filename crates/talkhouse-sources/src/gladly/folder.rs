//! `load gladly --dir`: the export jobs of a folder and its files as byte streams.

use std::path::PathBuf;

use bytes::Bytes;
use talkhouse_model::SourceError;

use super::export::JobInfo;
use super::lines::ByteStream;
use super::records::FileKind;

/// A file as a stream of 64 KiB chunks.
pub(super) fn file_stream(file: tokio::fs::File, path: PathBuf) -> ByteStream {
    use tokio::io::AsyncReadExt;
    Box::pin(futures::stream::unfold(Some(file), move |f| {
        let path = path.clone();
        async move {
            let mut f = f?;
            let mut buf = vec![0u8; 64 * 1024];
            match f.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Bytes::from(buf)), Some(f)))
                }
                Err(e) => Some((
                    Err(SourceError::Io {
                        path: path.display().to_string(),
                        source: e,
                    }),
                    None,
                )),
            }
        }
    }))
}

/// The jobs of a folder: the folder itself when it holds export files, else its subfolders in
/// name order. A job's ledger value is a fingerprint (sizes and times of its files), so a
/// folder whose files changed is loaded again.
pub(super) async fn list_folder_jobs(dir: &std::path::Path) -> Result<Vec<JobInfo>, SourceError> {
    let io = |e: std::io::Error| SourceError::Io {
        path: dir.display().to_string(),
        source: e,
    };
    let one = |d: &std::path::Path, id: String| -> Option<JobInfo> {
        let mut stamp = String::new();
        let mut files = Vec::new();
        for k in FileKind::ALL {
            if let Ok(m) = std::fs::metadata(d.join(k.file_name())) {
                let mtime = m
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |t| t.as_secs());
                stamp.push_str(&format!("{}:{}:{mtime};", k.file_name(), m.len()));
                files.push(k);
            }
        }
        (!files.is_empty()).then(|| JobInfo {
            id,
            stamp,
            updated_at: None,
            files,
            dir: Some(d.to_path_buf()),
        })
    };
    let name = dir
        .file_name()
        .map_or_else(|| "export".to_owned(), |n| n.to_string_lossy().into_owned());
    if let Some(j) = one(dir, name) {
        return Ok(vec![j]);
    }
    let mut subs: Vec<PathBuf> = Vec::new();
    let mut rd = tokio::fs::read_dir(dir).await.map_err(io)?;
    while let Some(e) = rd.next_entry().await.map_err(io)? {
        if e.file_type().await.map_err(io)?.is_dir() {
            subs.push(e.path());
        }
    }
    subs.sort();
    Ok(subs
        .iter()
        .filter_map(|d| {
            one(
                d,
                d.file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            )
        })
        .collect())
}

//! Export files, generated line by line as the body is sent: a job's file is never held whole.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use super::data::{Job, Quirk, World, kind};
use crate::EmulatorOptions;

/// The four files of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `agents.jsonl`.
    Agents,
    /// `conversation_items.jsonl`.
    Items,
    /// `customers.jsonl`.
    Customers,
    /// `topics.jsonl`.
    Topics,
}

impl FileKind {
    /// From a file name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "agents.jsonl" => Some(Self::Agents),
            "conversation_items.jsonl" => Some(Self::Items),
            "customers.jsonl" => Some(Self::Customers),
            "topics.jsonl" => Some(Self::Topics),
            _ => None,
        }
    }
}

type Lines = Box<dyn Iterator<Item = String> + Send>;

/// The lines of one file (without newlines), lazily.
pub fn lines(world: &Arc<World>, job: &Job, kind: FileKind) -> Lines {
    let w = world.clone();
    let j = job.clone();
    match kind {
        FileKind::Items => {
            let w2 = w.clone();
            let j2 = j.clone();
            let items = world
                .job_conversations(job)
                .flat_map(move |key| w.job_items_of(&j, key).into_iter().map(|v| v.to_string()));
            let activity = std::iter::once(()).filter_map(move |()| {
                w2.job_activity(&j2)
                    .map(|d| w2.render_activity(d).to_string())
            });
            Box::new(items.chain(activity))
        }
        FileKind::Customers => {
            let w2 = w.clone();
            let w3 = w.clone();
            let j2 = j.clone();
            let custs = world
                .job_conversations(job)
                .filter_map(move |key| w.job_customer_of(&j, key));
            let activity = std::iter::once(()).filter_map(move |()| {
                w2.job_activity(&j2)
                    .and_then(|d| w2.activity(d))
                    .map(|(_, c, _)| c)
            });
            Box::new(
                custs
                    .chain(activity)
                    .map(move |c| w3.customer_export(c).to_string()),
            )
        }
        FileKind::Agents => {
            let set: BTreeSet<u32> = if world.full_population {
                (0..world.agents).collect()
            } else {
                world
                    .job_conversations(job)
                    .filter(|k| world.job_customer_of(job, *k).is_some())
                    .filter_map(|k| world.conversation(k).map(|c| c.agent))
                    .collect()
            };
            Box::new(set.into_iter().map(move |a| w.agent(a).to_string()))
        }
        FileKind::Topics => {
            if job.quirk == Quirk::EmptyTopics {
                return Box::new(std::iter::empty());
            }
            let set: BTreeSet<u32> = if world.full_population {
                (0..world.topics).collect()
            } else {
                world
                    .job_conversations(job)
                    .filter(|k| world.job_customer_of(job, *k).is_some())
                    .filter_map(|k| world.conversation(k))
                    .flat_map(|c| World::topics_of(&c))
                    .collect()
            };
            let at = job.updated_at;
            let parent = world.topic_parent_in_file;
            Box::new(
                set.into_iter()
                    .map(move |t| w.topic(t, at, parent).to_string()),
            )
        }
    }
}

/// Turns lines into body chunks of about 32 KiB, applying the job's file quirks: a blank and
/// a malformed line in `conversation_items.jsonl`, a missing trailing newline in
/// `customers.jsonl`.
pub struct Chunks {
    lines: std::iter::Peekable<Lines>,
    n: u64,
    malformed: bool,
    trailing_newline: bool,
    done: bool,
}

impl Chunks {
    /// Chunks of a file.
    pub fn new(world: &Arc<World>, job: &Job, kind: FileKind) -> Self {
        Self {
            lines: lines(world, job, kind).peekable(),
            n: 0,
            malformed: kind == FileKind::Items && job.quirk == Quirk::Malformed,
            trailing_newline: !(kind == FileKind::Customers
                && job.quirk == Quirk::NoTrailingNewline),
            done: false,
        }
    }
}

impl Iterator for Chunks {
    type Item = Result<Bytes, std::io::Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut buf = String::with_capacity(40 * 1024);
        while buf.len() < 32 * 1024 {
            let Some(line) = self.lines.next() else {
                self.done = true;
                break;
            };
            buf.push_str(&line);
            self.n += 1;
            let last = self.lines.peek().is_none();
            if !last || self.trailing_newline {
                buf.push('\n');
            }
            if self.malformed && self.n == 3 {
                buf.push('\n');
            }
            if self.malformed && self.n == 5 {
                buf.push_str("{\"id\":\"truncated-line\",\"customerId\":\n");
            }
        }
        if buf.is_empty() {
            None
        } else {
            Some(Ok(Bytes::from(buf)))
        }
    }
}

/// What [`write_export`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Job folders.
    pub jobs: u64,
    /// Files.
    pub files: u64,
    /// Lines of `conversation_items.jsonl`, over all jobs.
    pub item_lines: u64,
    /// Bytes, over all files.
    pub bytes: u64,
}

/// Writes the files of every COMPLETED export job visible at the clock's now into
/// `dir/<job id>/<file>`, the layout `talkhouse load gladly --dir` reads, line by line (a file
/// is never held whole). The same seed, scale and clock give the same bytes.
///
/// # Errors
/// When a folder or file cannot be written.
pub fn write_export(opts: &EmulatorOptions, dir: &Path) -> std::io::Result<Written> {
    let world = Arc::new(World::new(opts));
    let now = opts.clock.now();
    let mut out = Written::default();
    for job in world.jobs_at(now) {
        let files = world.job_files(&job, now);
        if files.is_empty() {
            continue;
        }
        let id = world.id(kind::JOB, u64::try_from(job.day).unwrap_or(0), 0);
        let folder = dir.join(&id);
        std::fs::create_dir_all(&folder)?;
        out.jobs += 1;
        for name in files {
            let Some(file_kind) = FileKind::parse(name) else {
                continue;
            };
            let mut w = std::io::BufWriter::with_capacity(
                1 << 20,
                std::fs::File::create(folder.join(name))?,
            );
            for chunk in Chunks::new(&world, &job, file_kind) {
                let chunk = chunk?;
                if file_kind == FileKind::Items {
                    out.item_lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
                }
                out.bytes += chunk.len() as u64;
                w.write_all(&chunk)?;
            }
            w.flush()?;
            out.files += 1;
        }
    }
    Ok(out)
}

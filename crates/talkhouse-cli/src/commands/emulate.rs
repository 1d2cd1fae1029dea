//! `talkhouse emulate`.

use std::process::ExitCode;

use talkhouse_emulator::{EmulatorOptions, FaultSpec, Running, Variants, Vendor};

/// Run the vendor API emulators on loopback, for your own pipelines and tests.
///
/// Prints each vendor's base URL and credentials as a ready `[sources.*]` configuration, then
/// serves until Ctrl-C. Control endpoints on every emulator: `GET /_emulator/truth` (what a
/// correct sync ends with), `GET|POST /_emulator/clock` (`{"advance": "1d"}`), `GET
/// /_emulator/faults`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Vendors to run (repeatable): gladly, giosg, ada, ultimate. All by default.
    #[arg(long = "vendor", value_name = "NAME")]
    vendors: Vec<String>,
    /// First port; vendors get consecutive ports from it. 0 picks free ports.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Data volume: 1 ≈ 1,000 conversations per vendor, 1000 ≈ 1M (generated as a stream).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Seed of the generated data: the same seed gives the same data.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Faults to inject, e.g. 'http500=0.1,reset=0.05,latency=50ms,http429=0.05'.
    #[arg(long, value_name = "SPEC")]
    faults: Option<String>,
    /// Enforce each vendor's documented rate limit strictly (429 beyond it).
    #[arg(long)]
    strict_rate_limits: bool,
    /// Switch an unconfirmed vendor behaviour, e.g. 'gladly.retry_after=on' (repeatable;
    /// see each emulator module's documentation).
    #[arg(long = "variant", value_name = "KEY=VALUE")]
    variants: Vec<String>,
    /// Instead of serving, write the Gladly emulator's export files (one folder per COMPLETED
    /// job, as `talkhouse load gladly --dir` reads them) into DIR, and exit.
    #[arg(long, value_name = "DIR")]
    write_gladly_export: Option<std::path::PathBuf>,
}

/// Parses `--vendor` values.
pub fn vendors(names: &[String]) -> anyhow::Result<Vec<Vendor>> {
    if names.is_empty() {
        return Ok(Vendor::ALL.to_vec());
    }
    names
        .iter()
        .map(|n| {
            Vendor::parse(n).ok_or_else(|| {
                anyhow::anyhow!("unknown vendor `{n}`\nhint: use gladly, giosg, ada or ultimate")
            })
        })
        .collect()
}

/// Starts emulators for `vendors` on consecutive ports from `port` (0: free ports).
pub async fn start_all(
    vendors: &[Vendor],
    opts: &EmulatorOptions,
    port: u16,
) -> anyhow::Result<Vec<Running>> {
    let mut running = Vec::new();
    for (i, v) in vendors.iter().enumerate() {
        let p = if port == 0 {
            0
        } else {
            port.saturating_add(u16::try_from(i).unwrap_or(0))
        };
        let r = talkhouse_emulator::start(*v, opts, p)
            .await
            .map_err(|e| anyhow::anyhow!("cannot start the {v} emulator on port {p}: {e}"))?;
        running.push(r);
    }
    Ok(running)
}

/// The `[sources.*]` configuration that points at running emulators.
pub fn sources_toml(running: &[Running]) -> anyhow::Result<String> {
    let mut out = String::new();
    for r in running {
        let mut table = toml::Table::new();
        table.insert("base_url".into(), toml::Value::String(r.base_url.clone()));
        for (k, v) in &r.credentials.fields {
            table.insert((*k).to_owned(), toml::Value::try_from(v)?);
        }
        let mut doc = toml::Table::new();
        let mut sources = toml::Table::new();
        sources.insert(r.vendor.name().to_owned(), toml::Value::Table(table));
        doc.insert("sources".into(), toml::Value::Table(sources));
        out.push_str(&toml::to_string(&doc)?);
        out.push('\n');
    }
    Ok(out)
}

/// Runs `talkhouse emulate`.
///
/// # Errors
/// Bad arguments, or a port that cannot be bound.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let vendors = vendors(&args.vendors)?;
    let mut opts = EmulatorOptions::new(args.seed, args.scale);
    if let Some(f) = &args.faults {
        opts.faults = FaultSpec::parse(f).map_err(|e| anyhow::anyhow!("--faults: {e}"))?;
    }
    opts.strict_rate_limits = args.strict_rate_limits;
    opts.variants =
        Variants::parse(&args.variants.join(",")).map_err(|e| anyhow::anyhow!("--variant: {e}"))?;
    if let Some(dir) = &args.write_gladly_export {
        let started = std::time::Instant::now();
        let w = talkhouse_emulator::gladly::files::write_export(&opts, dir)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", dir.display()))?;
        crate::out(&format!(
            "wrote {} job(s), {} file(s), {} conversation item line(s), {} bytes to {} in {:.1} s",
            w.jobs,
            w.files,
            w.item_lines,
            w.bytes,
            dir.display(),
            started.elapsed().as_secs_f64()
        ));
        return Ok(ExitCode::SUCCESS);
    }
    let running = start_all(&vendors, &opts, args.port).await?;
    crate::out(&format!(
        "# talkhouse emulators (seed {}, scale {}); paste into talkhouse.toml\n",
        args.seed, args.scale
    ));
    crate::out(&sources_toml(&running)?);
    tracing::info!("serving until Ctrl-C");
    tokio::signal::ctrl_c().await?;
    for r in running {
        r.stop().await;
    }
    Ok(ExitCode::SUCCESS)
}

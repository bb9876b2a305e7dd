//! Operator commands of the binary for the IG lead (issue 15): subject-access request export,
//! erasure on request, the evidence report. Each builds the services as the server would and
//! calls one service; kept out of main.rs to keep it short.

use std::path::{Path, PathBuf};

use handover::config::Config;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the whole hash chain and every signed checkpoint; exit 1 naming the first broken
    /// entry or checkpoint.
    Verify {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The audit public key as `audit public-key` printed it (`ed25519:<id> <base64>`),
        /// kept away from the server; default: the key in data_dir.
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Print the audit checkpoint key's public half (made if missing), to keep elsewhere.
    PublicKey {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Write entries with since <= time < until as JSON lines (metadata only).
    Export {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// RFC 3339 (2025-01-31T09:00:00Z), a date (2025-01-31, UTC) or Unix milliseconds.
        #[arg(long)]
        since: String,
        /// As --since; exclusive.
        #[arg(long)]
        until: String,
        /// Output file (created; refuses to overwrite); standard output if omitted.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// `handover audit verify | public-key | export`.
pub fn audit(rt: &tokio::runtime::Runtime, command: AuditCommand) -> anyhow::Result<()> {
    use std::io::Write;
    match command {
        AuditCommand::PublicKey { config } => {
            let cfg = super::load(config.as_deref());
            std::fs::create_dir_all(&cfg.data_dir)?;
            let keys = handover::service::audit_checkpoint::load_or_generate(&cfg.data_dir)?;
            println!("{}", keys.public_line());
            Ok(())
        }
        AuditCommand::Verify { config, public_key } => {
            let cfg = super::load(config.as_deref());
            let audit = match public_key {
                Some(k) => {
                    let k = handover::service::audit_checkpoint::AuditPublicKey::parse(&k)
                        .map_err(|e| anyhow::anyhow!("--public-key: {e}"))?;
                    handover::server::open_audit_with_key(&cfg, Some(k))?
                }
                None => handover::server::open_audit(&cfg)?,
            };
            match rt
                .block_on(audit.verify())
                .map_err(|e| anyhow::anyhow!("{e}"))?
            {
                Ok(status) => {
                    println!("audit chain intact: {} entries", status.entries);
                    println!("head hash: {}", status.head);
                    println!(
                        "signed checkpoints: {} verified, last at seq {}; {} entries after it \
                         (not yet signed)",
                        status.checkpoints, status.last_checkpoint_seq, status.unsigned_tail
                    );
                    Ok(())
                }
                Err(broken) => {
                    eprintln!("{broken}");
                    std::process::exit(1);
                }
            }
        }
        AuditCommand::Export {
            config,
            since,
            until,
            out,
        } => {
            let parse = handover_compliance::time::parse_time;
            let (since, until) = (
                parse(&since).map_err(|e| anyhow::anyhow!("--since {e}"))?,
                parse(&until).map_err(|e| anyhow::anyhow!("--until {e}"))?,
            );
            let cfg = super::load(config.as_deref());
            let audit = handover::server::open_audit(&cfg)?;
            let mut w: Box<dyn Write> = match &out {
                Some(p) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create_new(p)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let (mut after, mut n) = (0, 0);
            loop {
                let page = rt
                    .block_on(audit.page_between(since, until, after))
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                n += handover_compliance::write_json_lines(&mut w, &page)?;
            }
            w.flush()?;
            eprintln!("exported {n} audit entries");
            Ok(())
        }
    }
}

fn user_id(
    services: &handover::service::Services,
    user: &str,
) -> anyhow::Result<ruma::OwnedUserId> {
    let id = match user.starts_with('@') {
        true => handover::service::admin::AdminService::parse_user_id(user),
        false => services.users.user_id_for(user),
    };
    id.map_err(|e| anyhow::anyhow!("{e}"))
}

/// `handover admin sar USER --out FILE.zip`: written to `FILE.zip.partial`, renamed into place
/// once complete and audited, so a half-written or unaudited export is never left as the file.
pub async fn sar(cfg: Config, user: &str, out: &Path) -> anyhow::Result<()> {
    if out.exists() {
        anyhow::bail!("{}: already exists (not overwritten)", out.display());
    }
    let services = handover::server::build_services(cfg)?;
    let uid = user_id(&services, user)?;
    let partial = PathBuf::from(format!("{}.partial", out.display()));
    let file = std::fs::File::create_new(&partial)
        .map_err(|e| anyhow::anyhow!("{}: {e}", partial.display()))?;
    let mut bar = handover::ops::progress::Progress::new("export");
    let res = services
        .sar
        .export_with_progress(handover::service::sar::Requester::Cli, &uid, file, &mut bar)
        .await;
    bar.finish();
    let (counts, file) = match res {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            anyhow::bail!("{e}");
        }
    };
    file.sync_all()?;
    std::fs::rename(&partial, out)?;
    println!(
        "subject-access export of {uid} written to {}",
        out.display()
    );
    println!("{}", serde_json::to_string_pretty(&counts)?);
    Ok(())
}

/// `handover admin erase USER --reason TEXT`.
pub async fn erase(cfg: Config, user: &str, reason: &str) -> anyhow::Result<()> {
    let services = handover::server::build_services(cfg)?;
    let uid = user_id(&services, user)?;
    (services.admin)
        .erase(None, &uid, reason)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("{uid} deactivated and erased; kept (records-management exemption, audited):");
    for (what, why) in handover::service::admin::KEPT {
        println!("  - {what}: {why}");
    }
    Ok(())
}

/// `handover compliance report --out DIR [--format html|pdf] [--results FILE]`.
pub async fn report(
    cfg: Config,
    out: &Path,
    pdf: bool,
    results: Option<&Path>,
) -> anyhow::Result<()> {
    use handover_compliance::controls::{CONTROLS, parse_test_results};
    use handover_compliance::report::{ControlRow, ReportInput, render};
    let results = match results {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
            Some((p.display().to_string(), parse_test_results(&text)))
        }
        None => None,
    };
    let in_force = serde_json::to_value(&cfg)?;
    let default = serde_json::to_value(Config::default())?;
    let lookup = |v: &serde_json::Value, key: &str| {
        let found = key.split('.').try_fold(v, |v, k| v.get(k));
        match found {
            None | Some(serde_json::Value::Null) => "unset".to_owned(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        }
    };
    let controls = (CONTROLS.iter())
        .map(|c| ControlRow {
            control: c,
            values: (c.config_keys.iter())
                .map(|k| (k.to_string(), lookup(&in_force, k), lookup(&default, k)))
                .collect(),
        })
        .collect();
    let server_name = cfg.server_name.clone();
    let services = handover::server::build_services(cfg)?;
    let chain = match services
        .audit
        .verify()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
    {
        Ok(s) => (
            true,
            format!(
                "Audit chain intact: {} entries, head hash {}; {} signed checkpoints verified \
                 (last at seq {}, {} entries after it)",
                s.entries, s.head, s.checkpoints, s.last_checkpoint_seq, s.unsigned_tail
            ),
        ),
        Err(b) => (false, b.to_string()),
    };
    let holds = services
        .retention
        .holds()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let purges = (services.audit)
        .search(handover::store::audit::AuditQuery {
            action: Some(handover::service::retention::ACTION_PURGE.into()),
            limit: 10_000,
            ..Default::default()
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let sum = |k: &str| -> i64 {
        (purges.iter())
            .filter(|p| p.details.get("dry_run") != Some(&serde_json::Value::Bool(true)))
            .filter_map(|p| p.details.get(k).and_then(|v| v.as_i64()))
            .sum()
    };
    let last = purges.first().map_or("never".to_owned(), |p| {
        format!(
            "{} by {}",
            handover_compliance::time::format_rfc3339(p.ts),
            p.actor
        )
    });
    let retention = vec![
        ("legal holds in place".into(), holds.len().to_string()),
        ("purge runs recorded".into(), purges.len().to_string()),
        ("last purge run".into(), last),
        (
            "events deleted (all recorded runs)".into(),
            sum("events_deleted").to_string(),
        ),
        (
            "events minimised".into(),
            sum("events_minimised").to_string(),
        ),
        (
            "redacted originals erased".into(),
            sum("redacted_erased").to_string(),
        ),
        (
            "media files deleted".into(),
            sum("media_deleted").to_string(),
        ),
        (
            "rooms deleted (forgotten)".into(),
            sum("rooms_deleted").to_string(),
        ),
    ];
    let input = ReportInput {
        generated_ts: handover::store::now_ms(),
        server_name,
        version: env!("CARGO_PKG_VERSION").into(),
        controls,
        results,
        chain,
        retention,
        hazards: include_str!("../../docs/HAZARDS.md"),
    };
    std::fs::create_dir_all(out)?;
    let html_path = out.join("report.html");
    std::fs::write(&html_path, render(&input))?;
    println!("{}", html_path.display());
    if pdf {
        let pdf_path = out.join("report.pdf");
        print_pdf(&html_path, &pdf_path).await?;
        println!("{}", pdf_path.display());
    }
    Ok(())
}

/// Renders the HTML to PDF with Chromium headless (Debian's `chromium`, or `HANDOVER_CHROMIUM`).
async fn print_pdf(html: &Path, pdf: &Path) -> anyhow::Result<()> {
    let chromium = std::env::var("HANDOVER_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let profile = tempfile_dir()?;
    let html = std::fs::canonicalize(html)?;
    let mut cmd = tokio::process::Command::new(&chromium);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-pdf-header-footer",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .arg(format!("--print-to-pdf={}", pdf.display()))
    .arg(format!("file://{}", html.display()))
    .stdin(std::process::Stdio::null())
    .kill_on_drop(true);
    let run = tokio::time::timeout(std::time::Duration::from_secs(120), cmd.output()).await;
    let _ = std::fs::remove_dir_all(&profile);
    let out = run
        .map_err(|_| anyhow::anyhow!("{chromium} did not finish printing within 120 s"))?
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot run {chromium} ({e}): install Debian's chromium for --format pdf"
            )
        })?;
    if !out.status.success() || !pdf.exists() {
        anyhow::bail!(
            "{chromium} failed to print the PDF: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// A fresh Chromium profile directory (Chromium refuses to share one between runs).
fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "handover-report-{}-{}",
        std::process::id(),
        handover::store::now_ms()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// `handover admin logout-user USER`: ends every session of USER (remote wipe of a lost phone
/// or a leaver), the same service call as the account page's "End every session". Tokens are
/// looked up in the database on every request, so a running server honours it at once.
pub async fn logout_user(cfg: Config, user: &str) -> anyhow::Result<()> {
    let services = handover::server::build_services(cfg)?;
    let uid = user_id(&services, user)?;
    if services
        .users
        .get_user(&uid)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .is_none()
    {
        anyhow::bail!("{uid}: no such account");
    }
    let n = services
        .users
        .end_all_sessions(handover::service::audit::ADMIN_CLI, &uid, "admin_cli", None)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("ended {n} session(s) of {uid}");
    Ok(())
}

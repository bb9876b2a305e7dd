//! The `handover` binary: `serve` runs the homeserver; `admin` holds operator commands.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use handover::config::Config;

mod commands;

#[derive(Parser)]
#[command(name = "handover", version, about = "Handover Matrix homeserver")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the homeserver.
    Serve {
        /// TOML configuration file (HANDOVER_* environment variables override it).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Operator commands that work on the server's data directly.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// The NHS federation list: check the configured one, print a list's canonical form.
    FederationList {
        #[command(subcommand)]
        command: ListCommand,
    },
    /// Evidence for the IG lead and a DSPT assessor (docs/GOVERNANCE.md, "Evidence report").
    Compliance {
        #[command(subcommand)]
        command: ComplianceCommand,
    },
    /// The IG audit trail: verify its hash chain, export it.
    Audit {
        #[command(subcommand)]
        command: commands::AuditCommand,
    },
    /// Check a configuration (and, with --url, a running server) for what an IG lead or the
    /// IT team would want flagged; exit 1 when any finding is critical.
    Doctor {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Base URL of the running server's client API (checks /ready and /versions).
        #[arg(long)]
        url: Option<String>,
        /// Print the findings as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ComplianceCommand {
    /// Every control with its configuration in force, its default, the guidance it serves and
    /// the test that proves it; audit chain status, retention statistics, the hazard log.
    Report {
        /// Directory for report.html (and report.pdf).
        #[arg(long)]
        out: PathBuf,
        /// `html` (default) or `pdf` (also prints the HTML to PDF with headless Chromium).
        #[arg(long, default_value = "html", value_parser = ["html", "pdf"])]
        format: String,
        /// `cargo test` output of the last CI run: each test's result is shown.
        #[arg(long)]
        results: Option<PathBuf>,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ListCommand {
    /// Load the list (and signature) as the server would; exit 1 if it would be refused.
    Check {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Print a list file's canonical JSON: the exact bytes its detached signature covers.
    Canonical { file: PathBuf },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an account (works whatever the registration mode).
    CreateUser {
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[arg(long)]
        username: String,
        /// The password; read from HANDOVER_NEW_PASSWORD if omitted, so it stays out of shell history.
        #[arg(long)]
        password: Option<String>,
        #[arg(long)]
        admin: bool,
        /// The display name (how names are set when `[policy] lock_display_names` is on).
        #[arg(long)]
        displayname: Option<String>,
        /// A patient account: confined to the rooms staff invite it to (docs/IDENTITY.md).
        #[arg(long)]
        patient: bool,
    },
    /// Run the retention purge once (docs/GOVERNANCE.md). --dry-run prints what would go and
    /// changes nothing.
    Purge {
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[arg(long)]
        dry_run: bool,
    },
    /// Grant (or with --revoke, remove) server admin rights: the admin API
    /// (`/_synapse/admin/...`, docs/OPERATIONS.md) is open to admins only.
    SetAdmin {
        /// The local user id (`@alice:example.org`) or localpart.
        user: String,
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[arg(long)]
        revoke: bool,
    },
    /// Copy the database (online, while the server runs), media and keys into DEST (new or
    /// empty), with a manifest of sha256 sums (docs/OPERATIONS.md, "Backup and restore").
    Backup {
        dest: PathBuf,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Restore a backup into an empty data directory (every file checked against the
    /// manifest first). Point the config's data_dir at it, then start the server.
    Restore {
        src: PathBuf,
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Subject-access request (UK GDPR Art. 15): a ZIP of everything held about USER.
    Sar {
        /// The local user id (`@alice:example.org`) or localpart.
        user: String,
        /// The ZIP to write (never overwritten).
        #[arg(long)]
        out: PathBuf,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Erasure on request (UK GDPR Art. 17): deactivate and erase USER; what is kept and why is
    /// recorded in the audit entry.
    Erase {
        user: String,
        /// The request's reference or reason (recorded in the audit trail).
        #[arg(long)]
        reason: String,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// End every session of USER (remote wipe): each client is signed out for good
    /// (`M_UNKNOWN_TOKEN`, `soft_logout: false`) and clears its data. Audited.
    LogoutUser {
        /// The local user id (`@alice:example.org`) or localpart.
        user: String,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Place (or with --release, release) a legal hold on a room or a user; list with `hold list`.
    Hold {
        /// `room`, `user` or `list`.
        kind: String,
        /// The room id or user id (not for `list`).
        id: Option<String>,
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[arg(long)]
        release: bool,
        /// Why the hold is placed (case reference); stored with the hold.
        #[arg(long)]
        reason: Option<String>,
    },
}

fn load(config: Option<&std::path::Path>) -> Config {
    match Config::load(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    }
}

/// glibc's malloc raises its mmap threshold after freeing a large block, so later 19 MiB
/// password-hash buffers land on the heap and stay resident (a login burst once held 700 MiB);
/// a fixed threshold keeps large buffers mmapped, returned to the OS on free, and fewer arenas
/// bound fragmentation. Environment tunables (MALLOC_*_) still override these.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

fn federation_list(command: ListCommand) -> anyhow::Result<()> {
    use handover::service::federation::list::insecure_settings;
    match command {
        ListCommand::Check { config } => {
            let cfg = load(config.as_deref());
            match handover::service::federation::list::load(&cfg.federation) {
                Ok(Some(live)) => {
                    let l = live.current();
                    println!(
                        "federation list serial {}: {} organisations, {}",
                        l.serial,
                        l.organisations.len(),
                        if l.signed {
                            "signature verified"
                        } else {
                            "unsigned (no signer key pinned)"
                        }
                    );
                    let list = live.current();
                    for w in insecure_settings(&cfg.federation, Some(&*list)) {
                        println!("warning: {w}");
                    }
                    Ok(())
                }
                Ok(None) => {
                    println!(
                        "no federation.list_file configured: this server federates with no one"
                    );
                    for w in insecure_settings(&cfg.federation, None) {
                        println!("warning: {w}");
                    }
                    Ok(())
                }
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(1);
                }
            }
        }
        ListCommand::Canonical { file } => {
            let bytes =
                std::fs::read(&file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let value: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let text = handover_policy::federation::canonical_json(&value)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            use std::io::Write;
            std::io::stdout().write_all(text.as_bytes())?;
            Ok(())
        }
    }
}

fn main() -> anyhow::Result<()> {
    tune_allocator();
    let cli = Cli::parse();
    // Blocking work is SQLite and hashing; a bounded pool bounds threads and their stacks.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(32)
        .enable_all()
        .build()?;
    match cli.command {
        Command::Audit { command } => {
            // Exit 1 is reserved for "chain broken"; anything else that stops a check is 2.
            if let Err(e) = commands::audit(&rt, command) {
                eprintln!("{e}");
                std::process::exit(2);
            }
            Ok(())
        }
        Command::FederationList { command } => federation_list(command),
        Command::Doctor { config, url, json } => {
            let cfg = load(config.as_deref());
            let code = rt.block_on(handover::ops::doctor::run(&cfg, url.as_deref(), json));
            std::process::exit(code);
        }
        Command::Compliance {
            command:
                ComplianceCommand::Report {
                    out,
                    format,
                    results,
                    config,
                },
        } => {
            let cfg = load(config.as_deref());
            handover::server::init_logging(&cfg);
            let pdf = format == "pdf";
            rt.block_on(commands::report(cfg, &out, pdf, results.as_deref()))
        }
        Command::Serve { config } => {
            let cfg = load(config.as_deref());
            handover::server::init_logging(&cfg);
            rt.block_on(handover::server::serve(cfg))
        }
        Command::Admin {
            command: AdminCommand::Backup { dest, config },
        } => handover::ops::backup::command(&load(config.as_deref()), &dest),
        Command::Admin {
            command: AdminCommand::Restore { src, data_dir },
        } => handover::ops::restore::command(&src, &data_dir),
        Command::Admin {
            command: AdminCommand::Sar { user, out, config },
        } => {
            let cfg = load(config.as_deref());
            handover::server::init_logging(&cfg);
            rt.block_on(commands::sar(cfg, &user, &out))
        }
        Command::Admin {
            command: AdminCommand::LogoutUser { user, config },
        } => {
            let cfg = load(config.as_deref());
            handover::server::init_logging(&cfg);
            rt.block_on(commands::logout_user(cfg, &user))
        }
        Command::Admin {
            command:
                AdminCommand::Erase {
                    user,
                    reason,
                    config,
                },
        } => {
            let cfg = load(config.as_deref());
            handover::server::init_logging(&cfg);
            rt.block_on(commands::erase(cfg, &user, &reason))
        }
        Command::Admin {
            command: AdminCommand::Purge { config, dry_run },
        } => {
            let cfg = load(config.as_deref());
            handover::server::init_logging(&cfg);
            rt.block_on(async move {
                let services = handover::server::build_services(cfg)?;
                let mut bar = handover::ops::progress::Progress::new("purge");
                let report = services
                    .retention
                    .purge_with_progress(handover::service::audit::ADMIN_CLI, dry_run, &mut bar)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                bar.finish();
                println!("{}", serde_json::to_string_pretty(&report)?);
                Ok(())
            })
        }
        Command::Admin {
            command:
                AdminCommand::Hold {
                    kind,
                    id,
                    config,
                    release,
                    reason,
                },
        } => {
            let cfg = load(config.as_deref());
            handover::server::init_logging(&cfg);
            rt.block_on(async move {
                let services = handover::server::build_services(cfg)?;
                let retention = &services.retention;
                let actor = handover::service::audit::ADMIN_CLI;
                if kind == "list" {
                    for h in retention
                        .holds()
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?
                    {
                        println!(
                            "{}\t{}\t{}\t{}",
                            h.kind.as_str(),
                            h.target,
                            h.placed_by,
                            h.placed_ts
                        );
                    }
                    return Ok(());
                }
                let Some(id) = id else {
                    anyhow::bail!("give the room or user id");
                };
                let target = handover::service::retention::HoldTarget::parse(&kind, &id)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                if release {
                    let done = retention
                        .release_hold(actor, target, reason)
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    println!(
                        "{}",
                        if done {
                            "hold released"
                        } else {
                            "no hold was in place"
                        }
                    );
                } else {
                    let placed = retention
                        .place_hold(actor, target, reason)
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    println!(
                        "{}",
                        if placed {
                            "hold placed"
                        } else {
                            "already held"
                        }
                    );
                }
                Ok(())
            })
        }
        Command::Admin {
            command:
                AdminCommand::SetAdmin {
                    user,
                    config,
                    revoke,
                },
        } => {
            let cfg = load(config.as_deref());
            handover::server::init_logging(&cfg);
            rt.block_on(async move {
                let services = handover::server::build_services(cfg)?;
                let user_id = (services.admin)
                    .cli_set_admin(&user, !revoke)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let now = if revoke {
                    "no longer an admin"
                } else {
                    "now an admin"
                };
                println!("{user_id} is {now}");
                Ok(())
            })
        }
        Command::Admin {
            command:
                AdminCommand::CreateUser {
                    config,
                    username,
                    password,
                    admin,
                    displayname,
                    patient,
                },
        } => {
            let cfg = load(config.as_deref());
            handover::server::init_logging(&cfg);
            let password = match password.or_else(|| std::env::var("HANDOVER_NEW_PASSWORD").ok()) {
                Some(p) => p,
                None => anyhow::bail!("give --password or set HANDOVER_NEW_PASSWORD"),
            };
            rt.block_on(async move {
                let services = handover::server::build_services(cfg)?;
                let user_id = services
                    .users
                    .create_user(&username, Some(&password), admin, true)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                if displayname.is_some() {
                    services
                        .users
                        .admin_set_displayname(&user_id, displayname)
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                }
                if patient {
                    services
                        .users
                        .set_account_kind(
                            handover::service::audit::ADMIN_CLI,
                            &user_id,
                            handover_policy::AccountKind::Patient,
                        )
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                }
                println!("created {user_id}");
                Ok(())
            })
        }
    }
}

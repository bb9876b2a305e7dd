//! Operator commands of the binary for the IG lead (issue 15): subject-access request export,
//! erasure on request, the evidence report. Each builds the services as the server would and
//! calls one service; kept out of main.rs to keep it short.

use std::path::{Path, PathBuf};

use handover::config::Config;

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
    let res = services
        .sar
        .export(handover::service::sar::Requester::Cli, &uid, file)
        .await;
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

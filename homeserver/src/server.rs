//! Start-up: logging, storage, services, the HTTP listener (plain or rustls), graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use tower_http::cors::{Any, CorsLayer};

use crate::config::{Config, LogFormat, PolicyRules};
use crate::service::Services;
use crate::service::audit::AuditService;
use crate::store::sqlite::SqliteStore;

pub fn init_logging(cfg: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&cfg.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match cfg.log.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Opens storage and builds every service.
pub fn build_services(config: Config) -> anyhow::Result<Services> {
    std::fs::create_dir_all(&config.data_dir)?;
    let store = SqliteStore::open(&config.database.path, config.database.readers)?;
    let policy = policy_from_config(&config);
    tracing::info!(policy = policy.name(), "governance policy");
    Services::build(config, store, policy).map_err(|e| anyhow::anyhow!("{e}"))
}

/// The rule set named in `[policy]`.
pub fn policy_from_config(cfg: &Config) -> Arc<dyn handover_policy::Policy> {
    // The chosen rule set, wrapped in Handover's room defaults: encrypted private rooms and
    // irreversible encryption (`rooms.encrypt_by_default`).
    let encrypt = cfg.rooms.encrypt_by_default;
    match cfg.policy.rules {
        PolicyRules::Nhs => Arc::new(handover_policy::Defaults {
            inner: handover_policy::NhsPolicy {
                check_messages: cfg.policy.nhs_number_in_messages,
            },
            encrypt,
        }),
        PolicyRules::AllowAll => Arc::new(handover_policy::Defaults {
            inner: handover_policy::AllowAll,
            encrypt,
        }),
    }
}

/// The audit trail alone, for the `audit` commands (no keys, no listener).
pub fn open_audit(config: &Config) -> anyhow::Result<AuditService> {
    // Never create an empty database here: "0 entries, intact" would mislead an auditor.
    if !config.database.path.exists() {
        anyhow::bail!("no database at {}", config.database.path.display());
    }
    let store = SqliteStore::open(&config.database.path, config.database.readers)?;
    Ok(AuditService::new(Arc::new(store)))
}

/// The retention purge job: every `retention.purge_interval`, first one interval after start.
pub fn spawn_purge_job(services: &Services) -> anyhow::Result<()> {
    let every = services
        .config
        .retention
        .purge_interval_ms()
        .map_err(|e| anyhow::anyhow!(e))?;
    let every = std::time::Duration::from_millis(every);
    let retention = services.retention.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = retention.purge(PURGE_JOB_ACTOR, false).await {
                tracing::error!(error = %e, "retention purge failed");
            }
        }
    });
    Ok(())
}

/// The audit actor of the server's own purge job.
pub const PURGE_JOB_ACTOR: &str = "retention-job";

/// One log line per request: method, route template (never the raw path with ids or tokens),
/// status and latency. Bodies and headers are never logged.
async fn request_log(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let res = next.run(req).await;
    tracing::info!(
        target: "handover::request",
        method = %method,
        route = route.as_deref().unwrap_or("<unmatched>"),
        status = res.status().as_u16(),
        latency_ms = start.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    res
}

pub fn app(services: Services) -> axum::Router {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods(Any)
        .allow_headers(Any);
    crate::api::client_router()
        .layer(middleware::from_fn(request_log))
        .layer(cors)
        .with_state(services)
}

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = config.tls.clone();
    let addr = config.listen.client;
    let services = build_services(config)?;
    spawn_purge_job(&services)?;
    let app = app(services.clone()).into_make_service_with_connect_info::<SocketAddr>();

    let std_listener = std::net::TcpListener::bind(addr)?;
    std_listener.set_nonblocking(true)?;
    let local = std_listener.local_addr()?;
    let scheme = if tls.cert.is_some() { "https" } else { "http" };
    // Machine-readable line for scripts and tests (logs go to stderr).
    println!("HANDOVER_LISTENING client={scheme}://{local}");
    tracing::info!(%local, server_name = %services.config.server_name, "listening");

    let handle = axum_server::Handle::new();
    let h2 = handle.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        h2.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
    });
    match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let rustls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key).await?;
            let mut server = axum_server::from_tcp_rustls(std_listener, rustls)?;
            allow_half_close(server.http_builder());
            server.handle(handle).serve(app).await?;
        }
        _ => {
            let mut server = axum_server::from_tcp(std_listener)?;
            allow_half_close(server.http_builder());
            server.handle(handle).serve(app).await?;
        }
    }
    Ok(())
}

/// A client may shut down its sending side once the request is written and then wait for the
/// answer (HTTP/1.1 allows it). hyper's default treats that EOF as a dropped connection; since
/// we read an oversized body to the end before answering 413, that would lose the answer.
fn allow_half_close(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
) {
    builder.http1().half_close(true);
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("signal handler");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

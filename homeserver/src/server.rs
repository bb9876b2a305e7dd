//! Start-up: logging, storage, services, the HTTP listener (plain or rustls), graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum_server::accept::DefaultAcceptor;
use axum_server::tls_rustls::RustlsAcceptor;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tower_http::cors::{Any, CorsLayer};
use tower_http::timeout::RequestBodyTimeoutLayer;

use crate::config::{Config, HttpConfig, LogFormat};
use crate::listener::ConnLimit;
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

/// Opens storage, loads the federation list and builds every service.
pub fn build_services(config: Config) -> anyhow::Result<Services> {
    std::fs::create_dir_all(&config.data_dir)?;
    let list = crate::service::federation::list::load(&config.federation)?;
    // Before the database: a bad registration file stops start-up with its own message.
    let appservices = crate::service::appservice::registration::load_files(
        &config.appservices.registration_files,
        &config.server_name,
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    let store = SqliteStore::open(&config.database.path, config.database.readers)?;
    Services::for_server(config, store, list, appservices).map_err(|e| anyhow::anyhow!("{e:?}"))
}

/// The audit trail alone, for the `audit` commands (no listener): checkpoints are checked with
/// the stored audit key.
pub fn open_audit(config: &Config) -> anyhow::Result<AuditService> {
    let key = crate::service::audit_checkpoint::stored_public_key(&config.data_dir)?;
    open_audit_with_key(config, key)
}

/// As `open_audit`, checking checkpoints with `key` (`audit verify --public-key`).
pub fn open_audit_with_key(
    config: &Config,
    key: Option<crate::service::audit_checkpoint::AuditPublicKey>,
) -> anyhow::Result<AuditService> {
    // Never create an empty database here: "0 entries, intact" would mislead an auditor.
    if !config.database.path.exists() {
        anyhow::bail!("no database at {}", config.database.path.display());
    }
    let store = SqliteStore::open(&config.database.path, config.database.readers)?;
    Ok(AuditService::verifying(Arc::new(store), key, &config.audit))
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
            let res = retention.purge(PURGE_JOB_ACTOR, false).await;
            crate::metrics::purge_run(res.is_ok());
            if let Err(e) = res {
                tracing::error!(error = %e, "retention purge failed");
            }
        }
    });
    Ok(())
}

/// The audit actor of the server's own purge job.
pub const PURGE_JOB_ACTOR: &str = crate::service::retention::JOB_ACTOR;

/// One log line per request: method, route template (never the raw path with ids or tokens),
/// status and latency. Bodies and headers are never logged. The same values feed the request
/// metrics (no-ops unless `[metrics] listen` is set).
async fn request_log(listener: &'static str, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let res = next.run(req).await;
    let secs = start.elapsed().as_secs_f64();
    let route = route.as_deref().unwrap_or("<unmatched>");
    let status = res.status().as_u16();
    tracing::info!(
        target: "handover::request",
        method = %method,
        route,
        status,
        latency_ms = secs * 1000.0,
        "request"
    );
    crate::metrics::request(listener, &method, route, status, secs);
    res
}

pub fn app(services: Services) -> axum::Router {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods(Any)
        .allow_headers(Any);
    crate::api::client_router()
        .layer(middleware::from_fn(|r, n| request_log("client", r, n)))
        .layer(cors)
        .with_state(services)
}

/// The federation (server-server) API router, for `listen.federation`.
pub fn federation_app(services: Services) -> axum::Router {
    crate::api::federation_router()
        .layer(middleware::from_fn(|r, n| request_log("federation", r, n)))
        .with_state(services)
}

/// A bound listener, ready to serve.
fn bind(addr: SocketAddr) -> anyhow::Result<std::net::TcpListener> {
    let l = std::net::TcpListener::bind(addr)
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    for w in &config.load_warnings {
        tracing::warn!("configuration: {w}");
    }
    let tls_files = match (&config.tls.cert, &config.tls.key) {
        (Some(c), Some(k)) => Some((c.clone(), k.clone())),
        _ => None,
    };
    // Config validation guarantees the files for every listener that asks for TLS.
    let tls_if = |on: bool| if on { tls_files.clone() } else { None };
    let client_tls = tls_if(config.listen.client_tls_on(&config.tls));
    let federation_tls = tls_if(config.listen.federation_tls);
    let metrics_tls = tls_if(config.metrics.tls);
    let federation_cfg = config.federation.clone();
    let client_listener = bind(config.listen.client)?;
    let federation_listener = config.listen.federation.map(bind).transpose()?;
    let metrics_listener = config.metrics.listen.map(bind).transpose()?;
    // Installed before anything runs, so the first requests and commits are counted.
    let metrics = match &metrics_listener {
        Some(_) => Some(Arc::new(crate::metrics::Metrics::install()?)),
        None => None,
    };
    let services = build_services(config)?;
    if let Some(list) = services.federation_list.clone() {
        crate::service::federation::list::spawn_reloader(
            federation_cfg,
            list,
            services.audit.clone(),
        );
    }
    spawn_purge_job(&services)?;
    let every = services
        .config
        .audit
        .checkpoint_interval_ms()
        .map_err(|e| anyhow::anyhow!(e))?;
    services
        .audit
        .spawn_checkpoint_job(std::time::Duration::from_millis(every));
    // Admin room jobs (room deletion, history purge) a stop interrupted run again.
    let jobs = services
        .admin
        .resume_room_jobs()
        .await
        .map_err(|e| anyhow::anyhow!("admin room jobs: {e:?}"))?;
    if jobs > 0 {
        tracing::info!(jobs, "resumed admin room jobs");
    }
    // Whatever the previous run left in the outbound federation queue is sent now.
    let resumed = services
        .outbox
        .resume()
        .await
        .map_err(|e| anyhow::anyhow!("outbound federation queue: {e:?}"))?;
    if resumed > 0 {
        tracing::info!(destinations = resumed, "resumed outbound federation queues");
    }
    // Appservice senders exist before anyone acts as them; their queues resume now.
    services
        .appservices
        .ensure_senders()
        .await
        .map_err(|e| anyhow::anyhow!("appservice sender users: {e:?}"))?;
    services.appservices.start_workers();

    let scheme = |tls: &Option<_>| if tls.is_some() { "https" } else { "http" };
    let local = client_listener.local_addr()?;
    let mut line = format!(
        "HANDOVER_LISTENING client={}://{local}",
        scheme(&client_tls)
    );
    if let Some(f) = &federation_listener {
        line.push_str(&format!(
            " federation={}://{}",
            scheme(&federation_tls),
            f.local_addr()?
        ));
    }
    if let Some(m) = &metrics_listener {
        line.push_str(&format!(
            " metrics={}://{}",
            scheme(&metrics_tls),
            m.local_addr()?
        ));
    }
    // Machine-readable line for scripts and tests (logs go to stderr).
    println!("{line}");
    tracing::info!(%local, server_name = %services.config.server_name, "listening");

    let handle = axum_server::Handle::new();
    let h2 = handle.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        h2.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
    });
    let http = services.config.http.clone();
    let mut servers = tokio::task::JoinSet::new();
    servers.spawn(serve_on_with(
        client_listener,
        app(services.clone()),
        client_tls,
        handle.clone(),
        http.clone(),
    ));
    if let Some(fl) = federation_listener {
        tracing::info!(local = %fl.local_addr()?, "federation listening");
        servers.spawn(serve_on_with(
            fl,
            federation_app(services.clone()),
            federation_tls,
            handle.clone(),
            http.clone(),
        ));
    }
    if let (Some(ml), Some(metrics)) = (metrics_listener, metrics) {
        tracing::info!(local = %ml.local_addr()?, "metrics listening");
        let m = metrics.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                m.upkeep();
            }
        });
        let router = crate::api::ops::metrics_router(metrics, services);
        servers.spawn(serve_on_with(ml, router, metrics_tls, handle, http));
    }
    // The first listener to fail stops the server; a graceful shutdown ends them all.
    while let Some(done) = servers.join_next().await {
        done??;
    }
    Ok(())
}

/// Serves `app` on `listener`, over rustls when `tls` (certificate chain, key) is given, until
/// `handle` shuts it down, with the default `[http]` limits.
pub async fn serve_on(
    listener: std::net::TcpListener,
    app: axum::Router,
    tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    handle: axum_server::Handle<SocketAddr>,
) -> anyhow::Result<()> {
    serve_on_with(listener, app, tls, handle, HttpConfig::default()).await
}

/// [`serve_on`] with `http`'s timeouts and connection cap (docs/ARCHITECTURE.md, "HTTP
/// listeners"): hyper's header read timeout (which also ends idle keep-alive connections),
/// tower-http's body timeout, and a permit per connection (`listener::ConnLimit`).
pub async fn serve_on_with(
    listener: std::net::TcpListener,
    app: axum::Router,
    tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    handle: axum_server::Handle<SocketAddr>,
    http: HttpConfig,
) -> anyhow::Result<()> {
    let body_timeout = Duration::from_secs(http.body_timeout_secs);
    let app = app
        .layer(RequestBodyTimeoutLayer::new(body_timeout))
        .into_make_service_with_connect_info::<SocketAddr>();
    let limit = ConnLimit::new(DefaultAcceptor::new(), http.max_connections);
    let server = axum_server::from_tcp(listener)?;
    match tls {
        Some((cert, key)) => {
            let rustls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key).await?;
            let acceptor = RustlsAcceptor::new(rustls).acceptor(limit);
            let mut server = server.acceptor(acceptor);
            tune(server.http_builder(), &http, true);
            server.handle(handle).serve(app).await?;
        }
        None => {
            let mut server = server.acceptor(limit);
            tune(server.http_builder(), &http, false);
            server.handle(handle).serve(app).await?;
        }
    }
    Ok(())
}

/// Connection settings. A client may shut down its sending side once the request is written
/// and then wait for the answer (HTTP/1.1 allows it); hyper's default treats that EOF as a
/// dropped connection, and since we read an oversized body to the end before answering 413,
/// that would lose the answer. Plain HTTP is HTTP/1 only: detecting an HTTP/2 preface has no
/// timeout in hyper-util, so a client that connects and sends nothing would never be dropped
/// (over TLS the handshake timeout covers that, and ALPN picks the version).
fn tune(builder: &mut Builder<TokioExecutor>, http: &HttpConfig, tls: bool) {
    if !tls {
        let b = std::mem::replace(builder, Builder::new(TokioExecutor::new()));
        *builder = b.http1_only();
    }
    builder
        .http1()
        .half_close(true)
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(http.header_timeout_secs));
    // HTTP/2: pings find dead peers; a bounded number of streams per connection.
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(http.header_timeout_secs))
        .keep_alive_timeout(Duration::from_secs(http.header_timeout_secs))
        .max_concurrent_streams(100);
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

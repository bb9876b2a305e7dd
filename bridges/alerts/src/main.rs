//! `handover-alerts`: the clinical alerts bridge (an application service of Handover).
//!
//!     handover-alerts --config /etc/handover/alerts.toml            run the bridge
//!     handover-alerts --config /etc/handover/alerts.toml registration   print the appservice
//!                                                                       registration (YAML)
//!
//! docs/BRIDGES.md describes set-up, the webhook contract, routing, escalation and the rota.

mod acks;
mod alert;
mod callback;
mod callers;
mod config;
mod engine;
mod fhir;
mod matrix;
mod metrics;
mod render;
mod roles;
mod rota_fhir;
mod routing;
mod state;
#[cfg(test)]
mod tests;
mod webhook;

use std::sync::Arc;

use handover_bridge_core::SystemClock;
use handover_bridge_core::bot::Bot;
use handover_bridge_core::store::Db;

use crate::config::Config;
use crate::engine::Engine;
use crate::matrix::{AlertsAppservice, BotPoster};
use crate::state::AlertStore;

#[tokio::main]
async fn main() {
    let args = handover_bridge_core::cli::Args::from_env("handover-alerts");
    let cfg = match Config::load(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1)
        }
    };
    if args.registration {
        let reg = cfg.appservice.registration(&cfg.alias_regexes());
        println!("{}", serde_json::to_string_pretty(&reg).expect("json"));
        return;
    }
    handover_bridge_core::cli::init_tracing(&cfg.log);
    if let Err(e) = run(cfg).await {
        tracing::error!(error = %e, "handover-alerts stopped");
        std::process::exit(1)
    }
}

async fn run(cfg: Config) -> anyhow::Result<()> {
    let cfg = Arc::new(cfg);
    let db = Db::open(&cfg.state.path, state::MIGRATIONS)?;
    let prometheus = metrics::install().map_err(anyhow::Error::msg)?;
    // Listeners first: the homeserver may push (or query an alias) as soon as the bot acts.
    let web_listener = tokio::net::TcpListener::bind(cfg.webhook.listen).await?;
    let as_listener = tokio::net::TcpListener::bind(cfg.appservice.listen).await?;
    let device = cfg.state.device_store().map_err(anyhow::Error::msg)?;
    let bot =
        Bot::login_persistent(&cfg.appservice, "Handover alerts bridge", &db, &device).await?;
    let callbacks = Arc::new(callback::Callbacks::new(
        cfg.clone(),
        db.clone(),
        Arc::new(SystemClock),
    ));
    tokio::spawn(callbacks.clone().run());
    let engine = Arc::new(
        Engine::new(
            cfg.clone(),
            AlertStore::new(db.clone()),
            BotPoster(bot.clone()),
            Arc::new(SystemClock),
            Some(callbacks),
        )
        .map_err(anyhow::Error::msg)?,
    );
    matrix::add_sync_handlers(&bot, engine.clone());
    bot.start_sync();
    let as_app = handover_bridge_core::appservice::router(
        &cfg.appservice,
        db.clone(),
        Arc::new(AlertsAppservice {
            engine: engine.clone(),
        }),
    );
    let web_app = webhook::router(Arc::new(webhook::WebState {
        engine: engine.clone(),
        prometheus: Some(prometheus),
    }));
    println!(
        "HANDOVER_ALERTS_LISTENING webhook=http://{} appservice=http://{}",
        web_listener.local_addr()?,
        as_listener.local_addr()?
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(as_listener, as_app).await {
            tracing::error!(error = %e, "appservice listener stopped");
        }
    });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(web_listener, web_app).await {
            tracing::error!(error = %e, "webhook listener stopped");
        }
    });
    // The first sync makes the existing rooms known before posting after a restart.
    bot.wait_synced().await;
    tracing::info!("handover-alerts ready");
    tokio::spawn(engine.clone().poll_fhir_rota());
    engine.run().await;
    Ok(())
}

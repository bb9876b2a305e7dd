//! `handover-epr`: the EPR bridge (an application service of Handover).
//!
//!     handover-epr --config /etc/handover/handover-epr.toml                run the bridge
//!     handover-epr --config /etc/handover/handover-epr.toml registration   print the appservice
//!                                                                          registration (YAML)
//!
//! docs/BRIDGES.md "EPR bridge" describes set-up, the launch link, filing and the FHIR server.

mod commands;
mod config;
mod fhir;
mod filing;
mod launch;
mod nhs;
mod rooms;
mod staff;
mod state;

use std::sync::Arc;

use handover_bridge_core::SystemClock;
use handover_bridge_core::appservice::AppserviceHandler;
use handover_bridge_core::bot::Bot;
use handover_bridge_core::cli::{Args, init_tracing};
use handover_bridge_core::store::Db;
use serde_json::Value;

use crate::config::Config;
use crate::fhir::FhirClient;
use crate::rooms::Epr;
use crate::staff::StaffMap;
use crate::state::EprStore;

#[tokio::main]
async fn main() {
    let args = Args::from_env("handover-epr");
    let cfg = match Config::load(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1)
        }
    };
    if args.registration {
        let reg = cfg.appservice.registration(&[]);
        println!("{}", serde_json::to_string_pretty(&reg).expect("json"));
        return;
    }
    init_tracing(&cfg.log);
    if let Err(e) = run(cfg).await {
        tracing::error!(error = %e, "handover-epr stopped");
        std::process::exit(1)
    }
}

/// The homeserver's pushes: the bot reads its rooms through its own (decrypting) sync, so
/// transactions need no work; the bridge owns no aliases and no users but its bot.
struct EprAppservice;

impl AppserviceHandler for EprAppservice {
    async fn on_transaction(&self, _events: Vec<Value>, _ephemeral: Vec<Value>) {}
    async fn query_alias(&self, _alias: String) -> bool {
        false
    }
    async fn query_user(&self, _user_id: String) -> bool {
        false
    }
}

async fn run(cfg: Config) -> anyhow::Result<()> {
    let cfg = Arc::new(cfg);
    let db = Db::open(&cfg.state.path, state::MIGRATIONS)?;
    let mut staff = StaffMap::new(&cfg.appservice.server_name, &cfg.staff.email_domains);
    if let Some(p) = &cfg.staff.csv {
        staff.load_csv(p).map_err(anyhow::Error::msg)?;
    }
    let fhir = FhirClient::new(&cfg.fhir).map_err(anyhow::Error::msg)?;
    // Listeners first: the homeserver may push as soon as the bot acts.
    let launch_listener = tokio::net::TcpListener::bind(cfg.launch.listen).await?;
    let as_listener = tokio::net::TcpListener::bind(cfg.appservice.listen).await?;
    let bot = Bot::login(&cfg.appservice, "Handover EPR bridge").await?;
    let epr = Arc::new(Epr::new(
        cfg.clone(),
        EprStore::new(db.clone()),
        fhir,
        staff,
        bot.clone(),
        Arc::new(SystemClock),
    ));
    let e = epr.clone();
    bot.forward_room_events(move |room_id, ev| {
        let e = e.clone();
        async move {
            if let Err(err) = e.on_event(&room_id, ev).await {
                tracing::warn!(error = %err, room_id = %room_id, "handling an event failed");
            }
        }
    });
    bot.start_sync();
    let as_app =
        handover_bridge_core::appservice::router(&cfg.appservice, db, Arc::new(EprAppservice));
    let public_url = cfg
        .launch
        .public_url
        .clone()
        .unwrap_or(format!("http://{}", launch_listener.local_addr()?));
    let launch_app = launch::router(Arc::new(launch::Launch::new(epr.clone(), public_url)));
    println!(
        "HANDOVER_EPR_LISTENING launch=http://{} appservice=http://{}",
        launch_listener.local_addr()?,
        as_listener.local_addr()?
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(as_listener, as_app).await {
            tracing::error!(error = %e, "appservice listener stopped");
        }
    });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(launch_listener, launch_app).await {
            tracing::error!(error = %e, "launch listener stopped");
        }
    });
    bot.wait_synced().await;
    tracing::info!("handover-epr ready");
    epr.run_filing().await;
    Ok(())
}

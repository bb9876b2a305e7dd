//! Registers ruma endpoints on axum (every historical path of each endpoint) and answers
//! unknown paths and methods with the spec's `M_UNRECOGNIZED`.

use std::future::Future;

use axum::Router;
use axum::extract::State;
use axum::routing::{MethodFilter, on};
use http::{Method, StatusCode};
use ruma::api::{IncomingRequest, path_builder::PathBuilder};

use super::ruma::{AuthRequirement, Ruma, RumaResponse};
use crate::error::{Error, Result};
use crate::service::Services;

/// Implemented for every `async fn(Services, Ruma<Req>) -> Result<Req::OutgoingResponse>`.
pub trait RumaHandler<Req> {
    fn add_to(self, router: Router<Services>) -> Router<Services>;
    /// Registers the handler at these paths only.
    fn add_at(self, router: Router<Services>, paths: Vec<String>) -> Router<Services>;
}

impl<Req, F, Fut> RumaHandler<Req> for F
where
    Req: IncomingRequest + Send + 'static,
    Req::Authentication: AuthRequirement,
    F: Fn(Services, Ruma<Req>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Req::OutgoingResponse>> + Send + 'static,
{
    fn add_to(self, router: Router<Services>) -> Router<Services> {
        // An empty trailing parameter (`/state/m.room.name/` for state key "") never matches an
        // axum segment, so those endpoints also get the path without it; the extractor pads.
        let builder = Req::PATH_BUILDER;
        let paths: Vec<String> = builder
            .all_paths()
            .flat_map(|p| {
                let short = p
                    .strip_suffix("/{state_key}")
                    .map(|base| [format!("{base}/"), base.to_owned()]);
                std::iter::once(p.to_owned()).chain(short.into_iter().flatten())
            })
            .collect();
        self.add_at(router, paths)
    }

    fn add_at(self, mut router: Router<Services>, paths: Vec<String>) -> Router<Services> {
        let filter = method_filter(&Req::METHOD);
        let mut seen = std::collections::HashSet::new();
        for path in paths {
            if !seen.insert(path.clone()) {
                continue;
            }
            let h = self.clone();
            router = router.route(
                &path,
                on(
                    filter,
                    move |State(s): State<Services>, req: Ruma<Req>| async move {
                        h(s, req).await.map(RumaResponse)
                    },
                ),
            );
        }
        router
    }
}

fn method_filter(m: &Method) -> MethodFilter {
    match *m {
        Method::GET => MethodFilter::GET,
        Method::POST => MethodFilter::POST,
        Method::PUT => MethodFilter::PUT,
        Method::DELETE => MethodFilter::DELETE,
        Method::PATCH => MethodFilter::PATCH,
        Method::HEAD => MethodFilter::HEAD,
        _ => MethodFilter::OPTIONS,
    }
}

pub trait RouterExt {
    fn ruma<Req, H: RumaHandler<Req>>(self, handler: H) -> Self;
    /// Also routes `handler` where each of its paths' trailing `{param}` is one of `literals`:
    /// for a literal that another endpoint's route shadows (axum prefers a literal segment, and
    /// then answers 405 for the methods that route lacks). The extractor passes the literal as
    /// the parameter.
    fn ruma_literals<Req: ruma::api::Metadata, H: RumaHandler<Req>>(
        self,
        handler: H,
        literals: &[&str],
    ) -> Self;
}

impl RouterExt for Router<Services> {
    fn ruma<Req, H: RumaHandler<Req>>(self, handler: H) -> Self {
        handler.add_to(self)
    }

    fn ruma_literals<Req: ruma::api::Metadata, H: RumaHandler<Req>>(
        self,
        handler: H,
        literals: &[&str],
    ) -> Self {
        let paths = ruma_paths::<Req>()
            .into_iter()
            .filter_map(|p| p.rsplit_once("/{"))
            .flat_map(|(base, _)| literals.iter().map(move |l| format!("{base}/{l}")))
            .collect();
        handler.add_at(self, paths)
    }
}

/// Every distinct path of ruma endpoint `Req`, for the rare endpoint that must be routed to a
/// plain axum handler (e.g. when ruma offers no way to construct its response type).
pub fn ruma_paths<Req: ruma::api::Metadata>() -> Vec<&'static str> {
    let mut paths: Vec<&'static str> = Req::PATH_BUILDER.all_paths().collect();
    let mut seen = std::collections::HashSet::new();
    paths.retain(|p| seen.insert(*p));
    paths
}

pub async fn unknown_endpoint() -> Error {
    Error::unrecognized(StatusCode::NOT_FOUND, "Unrecognized request")
}

pub async fn method_not_allowed() -> Error {
    Error::unrecognized(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method not allowed on this endpoint",
    )
}

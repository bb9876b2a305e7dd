//! DNS for server discovery: SRV lookups (`_matrix-fed._tcp`, `_matrix._tcp`) through
//! hickory-resolver, and a reqwest resolver that sends a connection for a server name to the
//! hosts and ports its SRV records name (TLS and `Host` still use the server name).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::OnceLock;

use hickory_resolver::TokioResolver;
use hickory_resolver::proto::rr::RData;

/// One SRV record, as discovery uses it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SrvRecord {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    /// Without the trailing dot; `"."` (service not offered) is left out by the lookup.
    pub target: String,
}

pub type SrvFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<SrvRecord>, String>> + Send + 'a>>;

/// SRV lookups. `Ok(empty)` when the name has no SRV records (NXDOMAIN or no data); `Err` when
/// DNS could not answer (then discovery fails rather than guessing another host).
pub trait SrvLookup: Send + Sync {
    fn lookup<'a>(&'a self, name: &'a str) -> SrvFuture<'a>;
}

/// The system's DNS servers (`/etc/resolv.conf`), through hickory's caching resolver. Built on
/// first use, so a server that never resolves a port-less name never reads the file.
#[derive(Default)]
pub struct HickorySrv {
    resolver: OnceLock<Result<TokioResolver, String>>,
}

impl HickorySrv {
    /// Asking the given resolver instead of the system's (tests run their own DNS server).
    #[cfg(test)]
    pub fn with_resolver(resolver: TokioResolver) -> Self {
        Self {
            resolver: OnceLock::from(Ok(resolver)),
        }
    }

    fn resolver(&self) -> Result<&TokioResolver, String> {
        self.resolver
            .get_or_init(|| {
                TokioResolver::builder_tokio()
                    .and_then(|b| b.build())
                    .map_err(|e| format!("DNS resolver configuration: {e}"))
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl SrvLookup for HickorySrv {
    fn lookup<'a>(&'a self, name: &'a str) -> SrvFuture<'a> {
        Box::pin(async move {
            let resolver = self.resolver()?;
            match resolver.srv_lookup(name).await {
                Ok(lookup) => Ok(lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::SRV(srv) if !srv.target.is_root() => Some(SrvRecord {
                            priority: srv.priority,
                            weight: srv.weight,
                            port: srv.port,
                            target: srv.target.to_ascii().trim_end_matches('.').to_owned(),
                        }),
                        _ => None,
                    })
                    .collect()),
                Err(e) if e.is_no_records_found() => Ok(Vec::new()),
                Err(e) => Err(format!("SRV lookup of {name} failed: {e}")),
            }
        })
    }
}

/// The order in which SRV targets are tried: lowest priority first, then the heavier weight,
/// then by name (deterministic, so one route keeps one connection pool).
pub fn order(mut records: Vec<SrvRecord>) -> Vec<SrvRecord> {
    records.sort_by(|a, b| {
        (a.priority, std::cmp::Reverse(a.weight), &a.target, a.port).cmp(&(
            b.priority,
            std::cmp::Reverse(b.weight),
            &b.target,
            b.port,
        ))
    });
    records.dedup();
    records
}

/// reqwest's resolver for one SRV route: any name resolves to the addresses of the SRV targets,
/// in order, each with its own port. The URL carries no port, so these ports are used; the URL's
/// host (the server name) stays the TLS name and the `Host` header.
pub struct SrvRouteResolver {
    pub targets: Vec<SrvRecord>,
}

impl reqwest::dns::Resolve for SrvRouteResolver {
    fn resolve(&self, _name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let targets = self.targets.clone();
        Box::pin(async move {
            let mut addrs: Vec<SocketAddr> = Vec::new();
            let mut last_err = None;
            for t in &targets {
                match tokio::net::lookup_host((t.target.as_str(), t.port)).await {
                    Ok(found) => addrs.extend(found),
                    Err(e) => last_err = Some(format!("{}: {e}", t.target)),
                }
            }
            if addrs.is_empty() {
                let why = last_err.unwrap_or_else(|| "no SRV targets".to_owned());
                return Err(format!("no address for the SRV targets ({why})").into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(priority: u16, weight: u16, port: u16, target: &str) -> SrvRecord {
        SrvRecord {
            priority,
            weight,
            port,
            target: target.into(),
        }
    }

    #[test]
    fn priority_then_weight_then_name() {
        let got = order(vec![
            rec(20, 0, 1, "z"),
            rec(10, 5, 2, "b"),
            rec(10, 50, 3, "c"),
            rec(10, 5, 2, "a"),
            rec(10, 5, 2, "a"),
        ]);
        let names: Vec<_> = got.iter().map(|r| r.target.as_str()).collect();
        assert_eq!(names, vec!["c", "a", "b", "z"]);
    }

    /// (priority, weight, port, target) of one SRV answer.
    type Answer = (u16, u16, u16, &'static str);

    /// A DNS server on 127.0.0.1 (UDP) answering SRV queries from `zone`; names not in it get
    /// NXDOMAIN, and `servfail` names SERVFAIL.
    async fn dns_server(zone: Vec<(&'static str, Vec<Answer>)>) -> u16 {
        use hickory_resolver::proto::op::{Message, ResponseCode};
        use hickory_resolver::proto::rr::rdata::SRV;
        use hickory_resolver::proto::rr::{Name, Record};
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = sock.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            while let Ok((n, from)) = sock.recv_from(&mut buf).await {
                let Ok(q) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let mut res = Message::response(q.metadata.id, q.metadata.op_code);
                res.metadata.recursion_available = true;
                let query = q.queries[0].clone();
                let qname = query.name().to_ascii();
                res.add_query(query.clone());
                match zone.iter().find(|(name, _)| *name == qname) {
                    Some((_, records)) => {
                        for (priority, weight, port, target) in records {
                            let srv = SRV::new(
                                *priority,
                                *weight,
                                *port,
                                Name::from_ascii(target).unwrap(),
                            );
                            res.add_answer(Record::from_rdata(
                                query.name().clone(),
                                60,
                                RData::SRV(srv),
                            ));
                        }
                    }
                    None if qname.starts_with("servfail") => {
                        res.metadata.response_code = ResponseCode::ServFail
                    }
                    None => res.metadata.response_code = ResponseCode::NXDomain,
                }
                let _ = sock.send_to(&res.to_vec().unwrap(), from).await;
            }
        });
        port
    }

    #[tokio::test]
    async fn hickory_lookups_against_a_real_dns_server() {
        use hickory_resolver::Resolver;
        use hickory_resolver::config::{NameServerConfig, ResolverConfig};
        use hickory_resolver::net::runtime::TokioRuntimeProvider;
        let port = dns_server(vec![(
            "_matrix-fed._tcp.trust.nhs.uk.",
            vec![(10, 0, 8448, "fed.trust.nhs.uk."), (0, 0, 0, ".")],
        )])
        .await;
        let mut ns = NameServerConfig::udp("127.0.0.1".parse().unwrap());
        ns.connections[0].port = port;
        let mut builder = Resolver::builder_with_config(
            ResolverConfig::from_name_servers(vec![ns]),
            TokioRuntimeProvider::default(),
        );
        builder.options_mut().attempts = 1;
        builder.options_mut().timeout = std::time::Duration::from_secs(2);
        let srv = HickorySrv::with_resolver(builder.build().unwrap());
        // The "." record (no service) is left out, the trailing dot trimmed.
        assert_eq!(
            srv.lookup("_matrix-fed._tcp.trust.nhs.uk.").await.unwrap(),
            vec![rec(10, 0, 8448, "fed.trust.nhs.uk")]
        );
        // NXDOMAIN: no records, not an error.
        assert_eq!(
            srv.lookup("_matrix._tcp.trust.nhs.uk.").await.unwrap(),
            vec![]
        );
        // A failing DNS server is an error.
        assert!(srv.lookup("servfail.trust.nhs.uk.").await.is_err());
    }

    #[tokio::test]
    async fn route_resolver_uses_each_targets_port() {
        use reqwest::dns::Resolve;
        let r = SrvRouteResolver {
            targets: vec![rec(0, 0, 8443, "127.0.0.1"), rec(1, 0, 9443, "127.0.0.2")],
        };
        let addrs: Vec<SocketAddr> = r
            .resolve("matrix.example.nhs.uk".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert_eq!(
            addrs,
            vec![
                "127.0.0.1:8443".parse().unwrap(),
                "127.0.0.2:9443".parse().unwrap()
            ]
        );
    }
}

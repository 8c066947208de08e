//! Calling a webhook extension: a POST of JSON signed the way Stripe and GitHub sign theirs
//! (`Realnet-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`), with a
//! timeout, a bounded answer, no redirects followed, and never to an address inside the
//! network Realnet runs in (loopback, private, link-local and the metadata addresses,
//! CGNAT, unspecified, multicast) unless `REALNET_EXTENSION_ALLOW_LOOPBACK` lets loopback
//! through for a local test server. Names are resolved by [`GuardedResolver`], the one
//! resolver the client has: the addresses it checked are the ones the connection uses, so a
//! DNS answer cannot change between the check and the connect.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::CONTENT_TYPE;
use reqwest::{Client, Url, redirect};
use serde_json::Value;
use sha2::Sha256;

use super::remote::{Failure, parse_answer};

/// The header that carries the signature.
pub const SIGNATURE: &str = "realnet-signature";

/// One call of a webhook.
pub struct Request<'a> {
    pub url: &'a Url,
    pub secret: &'a str,
    pub body: Vec<u8>,
    pub timeout: Duration,
    /// The largest answer read, in bytes.
    pub limit: usize,
    pub allow_loopback: bool,
}

/// The `Realnet-Signature` value of `body` sent at `t` (unix seconds).
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={:x}", mac.finalize().into_bytes())
}

/// Why Realnet does not call `ip`, if it does not.
pub fn refused_address(ip: IpAddr, allow_loopback: bool) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4, allow_loopback),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return refused_v4(v4, allow_loopback);
            }
            let first = v6.segments()[0];
            if v6.is_loopback() {
                (!allow_loopback).then_some("a loopback address")
            } else if v6.is_unspecified() {
                Some("the unspecified address")
            } else if first & 0xfe00 == 0xfc00 {
                // fd00:ec2::254, the EC2 metadata service over IPv6, is one of these.
                Some("a unique local (private) address")
            } else if first & 0xffc0 == 0xfe80 {
                Some("a link-local address")
            } else if v6.is_multicast() {
                Some("a multicast address")
            } else if v6.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [.., a, b] = v6.segments();
                refused_v4(
                    Ipv4Addr::from((u32::from(a) << 16) | u32::from(b)),
                    allow_loopback,
                )
            } else {
                None
            }
        }
    }
}

fn refused_v4(ip: Ipv4Addr, allow_loopback: bool) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        (!allow_loopback).then_some("a loopback address")
    } else if ip.is_private() {
        Some("a private address")
    } else if ip.is_link_local() {
        // 169.254.169.254 is the metadata service of EC2, ECS and Lambda.
        Some("a link-local (metadata) address")
    } else if ip.is_unspecified() || a == 0 {
        Some("an unspecified address")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a carrier-grade NAT address")
    } else if ip.is_multicast() || ip.is_broadcast() || a >= 240 {
        Some("a multicast, broadcast or reserved address")
    } else {
        None
    }
}

/// Checks a webhook URL as written: https (http only with the loopback allowance), no
/// credentials, and a host that is not a refused address literally (a name is checked each
/// time it is resolved).
pub fn check_url(url: &str, allow_loopback: bool) -> Result<Url, String> {
    let parsed = Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_loopback => {}
        "http" => {
            return Err(
                "must be https:// (plain http only with REALNET_EXTENSION_ALLOW_LOOPBACK, for a local test server)"
                    .into(),
            );
        }
        other => return Err(format!("{other}: is not https://")),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not hold credentials: the signature proves who calls".into());
    }
    let refused = match parsed.host() {
        None => return Err("has no host".into()),
        Some(url::Host::Ipv4(ip)) => refused_address(ip.into(), allow_loopback),
        Some(url::Host::Ipv6(ip)) => refused_address(ip.into(), allow_loopback),
        // A name is checked each time it is resolved, by [`GuardedResolver`].
        Some(url::Host::Domain(_)) => None,
    };
    match refused {
        Some(why) => Err(format!(
            "its host is {why}: Realnet calls only public addresses"
        )),
        None => Ok(parsed),
    }
}

/// Resolves a webhook's host and refuses it when any address it has is refused.
struct GuardedResolver {
    allow_loopback: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct RefusedHost(String);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_loopback = self.allow_loopback;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() {
                return Err(Box::new(RefusedHost(format!("{host} has no address"))) as _);
            }
            for a in &addrs {
                if let Some(why) = refused_address(a.ip(), allow_loopback) {
                    return Err(Box::new(RefusedHost(format!(
                        "{host} resolves to {} ({why}); Realnet calls only public addresses",
                        a.ip()
                    ))) as _);
                }
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The client (one per allowance, so connections are reused): no redirects, the guarded
/// resolver, rustls.
fn client(allow_loopback: bool) -> &'static Client {
    static STRICT: OnceLock<Client> = OnceLock::new();
    static LOOPBACK: OnceLock<Client> = OnceLock::new();
    let cell = if allow_loopback { &LOOPBACK } else { &STRICT };
    cell.get_or_init(|| {
        Client::builder()
            .redirect(redirect::Policy::none())
            .dns_resolver(Arc::new(GuardedResolver { allow_loopback }))
            .user_agent(concat!("realnet/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a reqwest client with rustls builds")
    })
}

/// An error and its sources (where reqwest says what failed). Callers pass reqwest's
/// errors [without their URL](reqwest::Error::without_url): whoever may call an extension may
/// not read its item, and a URL can carry a token.
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// POSTs the signed body; the JSON answer, or why there is none.
pub async fn post(r: Request<'_>) -> Result<Value, Failure> {
    check_url(r.url.as_str(), r.allow_loopback)
        .map_err(|m| Failure::Failed(format!("its URL is refused: {m}")))?;
    let signed = signature(r.secret, chrono::Utc::now().timestamp(), &r.body);
    let send = client(r.allow_loopback)
        .post(r.url.clone())
        .header(CONTENT_TYPE, "application/json")
        .header(SIGNATURE, signed)
        .body(r.body)
        .send();
    let limit = r.limit;
    let exchange = async {
        let mut response = send
            .await
            .map_err(|e| Failure::Failed(format!("no answer: {}", causes(&e.without_url()))))?;
        let status = response.status();
        if status.is_redirection() {
            let to = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("nowhere");
            return Err(Failure::Failed(format!(
                "it answered {status}, a redirect to {to}; redirects are not followed"
            )));
        }
        let too_large = || Failure::Failed(format!("it answered more than {limit} bytes"));
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| {
            Failure::Failed(format!(
                "its answer broke off: {}",
                causes(&e.without_url())
            ))
        })? {
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, body))
    };
    let (status, body) = tokio::time::timeout(r.timeout, exchange)
        .await
        .map_err(|_| {
            Failure::Failed(format!(
                "it did not answer within {} ms",
                r.timeout.as_millis()
            ))
        })??;
    if status.is_success() {
        return parse_answer(&body);
    }
    let message = serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
        v.pointer("/error/message")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    match message {
        Some(message) if status.is_client_error() => Err(Failure::Refused {
            status: status.as_u16(),
            message,
        }),
        _ => Err(Failure::Failed(format!("it answered {status}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_the_addresses_inside_the_network() {
        for ip in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
        ] {
            let ip: IpAddr = ip.parse().expect("an address");
            assert!(refused_address(ip, false).is_some(), "{ip} is refused");
        }
        for ip in ["93.184.216.34", "2606:4700::1111", "100.128.0.1"] {
            let ip: IpAddr = ip.parse().expect("an address");
            assert_eq!(refused_address(ip, false), None, "{ip} is public");
        }
        assert_eq!(
            refused_address("127.0.0.1".parse().expect("an address"), true),
            None
        );
        assert!(refused_address("169.254.169.254".parse().expect("an address"), true).is_some());
    }

    #[test]
    fn urls_are_checked_as_written() {
        assert!(check_url("https://hooks.example.com/realnet", false).is_ok());
        for bad in [
            "http://hooks.example.com/",
            "https://user:pw@hooks.example.com/",
            "https://10.0.0.1/",
            "https://[fd00:ec2::254]/",
            "ftp://example.com/",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad} is refused");
        }
        assert!(check_url("http://127.0.0.1:9000/", true).is_ok());
    }

    #[test]
    fn signs_timestamp_and_body() {
        let s = signature("secret", 1700000000, b"{}");
        assert!(s.starts_with("t=1700000000,v1="));
        assert_eq!(s.len(), "t=1700000000,v1=".len() + 64);
    }
}

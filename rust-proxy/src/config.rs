//! The proxy contract's environment: every variable is optional, an empty
//! value counts as unset, and a bad value is reported by name.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub listen: SocketAddr,
    pub upstream: SocketAddr,
    /// `None` leaves the choice to the CPUs the process may run on.
    pub workers: Option<usize>,
    pub upstream_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_body_bytes: u64,
}

// Upper bounds keep a typo from turning into an absurd allocation or a
// timeout that never fires in practice; they match the Go proxy's.
const MAX_WORKERS: u64 = 1 << 12;
const MAX_TIMEOUT_MS: u64 = 24 * 60 * 60 * 1000;
const MAX_HEADER_BYTES_CAP: u64 = 1 << 24;
const MAX_BODY_BYTES_CAP: u64 = (1 << 31) - 1;

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            upstream: SocketAddr::from(([127, 0, 0, 1], 9000)),
            workers: None,
            upstream_timeout: Duration::from_millis(5000),
            max_header_bytes: 16384,
            max_body_bytes: 16 << 20,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError {
    name: &'static str,
    value: String,
    want: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {}={:?}: want {}",
            self.name, self.value, self.want
        )
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    pub fn from_env<F>(getenv: F) -> Result<Config, ConfigError>
    where
        F: Fn(&'static str) -> Option<String>,
    {
        let mut cfg = Config::default();
        let get = |name| getenv(name).filter(|v| !v.is_empty());
        let bad = |name: &'static str, value: &str, want: &str| ConfigError {
            name,
            value: value.to_owned(),
            want: want.to_owned(),
        };

        if let Some(v) = get("LISTEN_ADDR") {
            cfg.listen = parse_listen(&v)
                .ok_or_else(|| bad("LISTEN_ADDR", &v, "host:port such as 127.0.0.1:8080"))?;
        }
        if let Some(v) = get("UPSTREAM_ADDR") {
            // An IP literal only: the upstream is never looked up by name.
            cfg.upstream = v
                .parse::<SocketAddr>()
                .ok()
                .filter(|a| a.port() != 0)
                .ok_or_else(|| bad("UPSTREAM_ADDR", &v, "an IP:port such as 127.0.0.1:9000"))?;
        }
        let int = |name: &'static str, min: u64, max: u64| -> Result<Option<u64>, ConfigError> {
            match get(name) {
                None => Ok(None),
                Some(v) => match v.parse::<u64>() {
                    Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
                    _ => Err(bad(name, &v, &format!("an integer from {min} to {max}"))),
                },
            }
        };
        if let Some(n) = int("WORKERS", 1, MAX_WORKERS)? {
            cfg.workers = Some(n as usize);
        }
        if let Some(n) = int("UPSTREAM_TIMEOUT_MS", 1, MAX_TIMEOUT_MS)? {
            cfg.upstream_timeout = Duration::from_millis(n);
        }
        if let Some(n) = int("MAX_HEADER_BYTES", 1, MAX_HEADER_BYTES_CAP)? {
            cfg.max_header_bytes = n as usize;
        }
        if let Some(n) = int("MAX_BODY_BYTES", 1, MAX_BODY_BYTES_CAP)? {
            cfg.max_body_bytes = n;
        }
        Ok(cfg)
    }
}

/// Accepts what the Go proxy accepts and can be bound without a resolver:
/// an IP literal, `localhost`, or an empty host meaning every interface.
fn parse_listen(v: &str) -> Option<SocketAddr> {
    if let Ok(a) = v.parse::<SocketAddr>() {
        return Some(a);
    }
    let (host, port) = v.rsplit_once(':')?;
    let port = port.parse::<u16>().ok()?;
    let ip = match host {
        "" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        h if h.eq_ignore_ascii_case("localhost") => IpAddr::V4(Ipv4Addr::LOCALHOST),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(vars: &[(&'static str, &str)]) -> Result<Config, ConfigError> {
        let m: HashMap<&str, String> = vars.iter().map(|(k, v)| (*k, v.to_string())).collect();
        Config::from_env(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults() {
        assert_eq!(load(&[]).unwrap(), Config::default());
        let c = Config::default();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.upstream.to_string(), "127.0.0.1:9000");
        assert_eq!(c.upstream_timeout, Duration::from_secs(5));
        assert_eq!(c.max_header_bytes, 16384);
        assert_eq!(c.max_body_bytes, 16777216);
        assert_eq!(c.workers, None);
    }

    #[test]
    fn empty_means_unset() {
        assert_eq!(
            load(&[("WORKERS", ""), ("LISTEN_ADDR", "")]).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn valid_values() {
        let c = load(&[
            ("LISTEN_ADDR", "0.0.0.0:0"),
            ("UPSTREAM_ADDR", "[::1]:9001"),
            ("WORKERS", "3"),
            ("UPSTREAM_TIMEOUT_MS", "250"),
            ("MAX_HEADER_BYTES", "4096"),
            ("MAX_BODY_BYTES", "1000"),
        ])
        .unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:0");
        assert_eq!(c.upstream.to_string(), "[::1]:9001");
        assert_eq!(c.workers, Some(3));
        assert_eq!(c.upstream_timeout, Duration::from_millis(250));
        assert_eq!(c.max_header_bytes, 4096);
        assert_eq!(c.max_body_bytes, 1000);
        assert_eq!(
            load(&[("LISTEN_ADDR", ":8082")])
                .unwrap()
                .listen
                .to_string(),
            "0.0.0.0:8082"
        );
        assert_eq!(
            load(&[("LISTEN_ADDR", "localhost:1")])
                .unwrap()
                .listen
                .to_string(),
            "127.0.0.1:1"
        );
    }

    #[test]
    fn invalid_values_name_the_variable() {
        let cases: &[(&'static str, &str)] = &[
            ("LISTEN_ADDR", "8080"),
            ("LISTEN_ADDR", "example.com:80"),
            ("LISTEN_ADDR", "127.0.0.1:99999"),
            ("UPSTREAM_ADDR", "localhost:9000"),
            ("UPSTREAM_ADDR", "127.0.0.1:0"),
            ("UPSTREAM_ADDR", "127.0.0.1"),
            ("WORKERS", "0"),
            ("WORKERS", "-1"),
            ("WORKERS", "two"),
            ("WORKERS", "4097"),
            ("UPSTREAM_TIMEOUT_MS", "0"),
            ("UPSTREAM_TIMEOUT_MS", "1.5"),
            ("MAX_HEADER_BYTES", "0"),
            ("MAX_HEADER_BYTES", "99999999999"),
            ("MAX_BODY_BYTES", "2147483648"),
            ("MAX_BODY_BYTES", " 5"),
        ];
        for (name, value) in cases {
            let err = load(&[(name, value)]).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(name), "{msg}");
            assert!(msg.contains(&format!("{value:?}")), "{msg}");
        }
    }
}

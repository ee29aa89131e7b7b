//! The headers a plugin can read for the call in progress: those of the HTTP
//! request, or of the WebSocket handshake, less those about the connection
//! itself. Plugins ask for them (`request-headers`, `request-header`) rather
//! than receive them with every call, so a call that never reads a header
//! costs nothing for them.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue};

/// One request's or handshake's headers, shared rather than copied; empty
/// when no client is attached.
#[derive(Debug, Clone, Default)]
pub struct RequestHeaders(Option<Arc<HeaderMap>>);

impl RequestHeaders {
    /// The headers of one request, kept as received.
    pub fn new(headers: HeaderMap) -> Self {
        Self(Some(Arc::new(headers)))
    }

    /// The headers of a connection's handshake, kept as long as the
    /// connection: only those plugins see, copied, so that they do not hold on
    /// to the buffer the handshake was read into.
    pub fn copied(headers: &HeaderMap) -> Self {
        let mut visible = HeaderMap::new();
        for (name, value) in headers {
            if !is_transport_header(name.as_str())
                && let Ok(value) = HeaderValue::from_bytes(value.as_bytes())
            {
                visible.append(name.clone(), value);
            }
        }
        Self::new(visible)
    }

    /// Every header a plugin sees, lowercase names, a repeated header's
    /// values together in the order received; values that are not UTF-8 are
    /// left out.
    pub fn list(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .flat_map(|headers| headers.iter())
            .filter(|(name, _)| !is_transport_header(name.as_str()))
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect()
    }

    /// The first value of header `name`, any case, if a plugin sees it.
    pub fn first(&self, name: &str) -> Option<String> {
        if is_transport_header(name) {
            return None;
        }
        let value = self.0.as_ref()?.get(name)?;
        Some(value.to_str().ok()?.to_owned())
    }
}

/// Headers about the connection or the message framing rather than the
/// request: hop-by-hop headers (RFC 9110, section 7.6.1), the body's length
/// (plugins get params, not bodies) and the WebSocket handshake's own.
const TRANSPORT_HEADERS: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
];

fn is_transport_header(name: &str) -> bool {
    TRANSPORT_HEADERS
        .iter()
        .any(|transport| transport.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderName;

    fn headers() -> RequestHeaders {
        let mut map = HeaderMap::new();
        for (name, value) in [
            ("x-token", "one"),
            ("connection", "keep-alive"),
            ("x-token", "two"),
            ("host", "example"),
        ] {
            map.append(HeaderName::from_static(name), value.parse().unwrap());
        }
        map.append("x-binary", HeaderValue::from_bytes(b"\xff").unwrap());
        RequestHeaders::new(map)
    }

    #[test]
    fn connection_headers_and_non_utf8_values_are_left_out() {
        let pairs = |items: &[(&str, &str)]| -> Vec<(String, String)> {
            items
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            headers().list(),
            pairs(&[("x-token", "one"), ("x-token", "two"), ("host", "example")])
        );
        assert_eq!(
            headers().list(),
            RequestHeaders::copied(&headers().0.unwrap()).list()
        );
        assert!(RequestHeaders::default().list().is_empty());
    }

    #[test]
    fn one_header_by_name_in_any_case() {
        assert_eq!(headers().first("X-Token").as_deref(), Some("one"));
        assert_eq!(headers().first("Connection"), None);
        assert_eq!(headers().first("x-binary"), None);
        assert_eq!(headers().first("not a name"), None);
        assert_eq!(RequestHeaders::default().first("host"), None);
    }
}

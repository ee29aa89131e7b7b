//! Cross-origin browser callers (CORS): `POST /` and `GET /openrpc.json`
//! answer pages of the origins in `cors_origins`, preflight `OPTIONS`
//! included. Without the setting no CORS header is sent, so browsers keep
//! other origins' pages from reading answers (same origin only).

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::Full;

/// How long a browser may cache a preflight answer, in seconds.
const PREFLIGHT_MAX_AGE: &str = "600";

/// The request headers a cross-origin caller may send at most.
const MAX_REQUESTED_HEADERS: usize = 16;

/// The origins whose pages may call this node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CorsOrigins {
    /// `*`: every origin.
    any: bool,
    /// Exact origins, `scheme://host[:port]`, lowercase.
    origins: Vec<String>,
}

impl CorsOrigins {
    /// Parse a comma-separated list of origins (`https://app.example.com`,
    /// `http://localhost:5173`) or `*`.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut parsed = Self::default();
        for item in list
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            if item == "*" {
                parsed.any = true;
                continue;
            }
            parsed.origins.push(origin(item)?);
        }
        if !parsed.any && parsed.origins.is_empty() {
            return Err(
                "cors_origins lists no origin: give origins such as https://app.example.com, or *"
                    .into(),
            );
        }
        Ok(parsed)
    }

    /// The `Access-Control-Allow-Origin` value for a request from `headers`,
    /// if its `Origin` is allowed.
    pub fn allowed(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        if !self.any && self.origins.is_empty() {
            return None;
        }
        let origin = headers.get(header::ORIGIN)?;
        if self.any {
            return Some(HeaderValue::from_static("*"));
        }
        let text = origin.to_str().ok()?;
        self.origins
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(text))
            .then(|| origin.clone())
    }

    /// Add the CORS headers of an answer to a request with `allowed` (from
    /// [`Self::allowed`]) to `response`.
    pub fn expose<B>(allowed: Option<HeaderValue>, response: &mut Response<B>) {
        let headers = response.headers_mut();
        // Answers differ by origin: caches must key on it.
        headers.append(header::VARY, HeaderValue::from_static("origin"));
        if let Some(allowed) = allowed {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
        }
    }

    /// Answer an `OPTIONS` request to a route serving `methods` (such as
    /// `"POST"`): a preflight from an allowed origin for one of them gets
    /// `204` with the permissions; one from another origin `403` without
    /// them; a plain `OPTIONS` `204` with `Allow`.
    pub fn preflight(&self, headers: &HeaderMap, methods: &'static str) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::default());
        *response.status_mut() = StatusCode::NO_CONTENT;
        let allow = HeaderValue::from_static(methods);
        let Some(requested) = headers.get(header::ACCESS_CONTROL_REQUEST_METHOD) else {
            response.headers_mut().insert(header::ALLOW, allow);
            return response;
        };
        let method_allowed = requested
            .to_str()
            .is_ok_and(|method| methods.split(", ").any(|allowed| allowed == method));
        let requested_headers = headers
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .filter(|value| header_list_ok(value));
        let headers_ok = requested_headers.is_some()
            || !headers.contains_key(header::ACCESS_CONTROL_REQUEST_HEADERS);
        let origin = self.allowed(headers);
        if origin.is_none() || !method_allowed || !headers_ok {
            *response.status_mut() = StatusCode::FORBIDDEN;
            Self::expose(None, &mut response);
            return response;
        }
        let out = response.headers_mut();
        out.insert(header::ACCESS_CONTROL_ALLOW_METHODS, allow);
        if let Some(requested) = requested_headers {
            out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested.clone());
        }
        let max_age = HeaderValue::from_static(PREFLIGHT_MAX_AGE);
        out.insert(header::ACCESS_CONTROL_MAX_AGE, max_age);
        Self::expose(origin, &mut response);
        response
    }
}

/// `item` as an origin, `scheme://host[:port]` in lowercase, or why not.
fn origin(item: &str) -> Result<String, String> {
    let refuse = |why: &str| {
        format!(
            "cors_origins: {item:?} is not an origin ({why}); write scheme://host[:port], such as https://app.example.com"
        )
    };
    let url = reqwest::Url::parse(item).map_err(|error| refuse(&error.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refuse("the scheme must be http or https"));
    }
    let origin = url.origin().ascii_serialization();
    if origin != item.trim_end_matches('/').to_ascii_lowercase() {
        return Err(refuse("it has a path, query, user or fragment"));
    }
    Ok(origin)
}

/// Whether `value` is a comma-separated list of header names, not too long.
fn header_list_ok(value: &HeaderValue) -> bool {
    let Ok(text) = value.to_str() else {
        return false;
    };
    let names: Vec<&str> = text.split(',').map(str::trim).collect();
    names.len() <= MAX_REQUESTED_HEADERS
        && names.iter().all(|name| {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_origins_and_refuses_what_is_not_one() {
        let parsed = CorsOrigins::parse("https://App.example.com, http://localhost:5173/").unwrap();
        assert_eq!(
            parsed.origins,
            ["https://app.example.com", "http://localhost:5173"]
        );
        assert!(CorsOrigins::parse("*").unwrap().any);
        for bad in [
            "",
            " , ",
            "app.example.com",
            "ftp://x.example",
            "https://x.example/path",
            "https://u@x.example",
        ] {
            assert!(CorsOrigins::parse(bad).is_err(), "{bad}");
        }
    }
}

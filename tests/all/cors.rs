//! CORS: pages of the origins in `cors_origins` may call `POST /` and read
//! `GET /openrpc.json`, preflight included; other origins, and every origin
//! by default, get no CORS header.

use reqwest::Method;
use reqwest::header::HeaderMap;
use rpcnode::cors::CorsOrigins;

use crate::binary::assert_refused;
use crate::support::{TestNode, plugins_dir, within};

const ALLOWED: &str = "http://app.example:5173";

async fn send(
    node: &TestNode,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, HeaderMap) {
    let mut request = reqwest::Client::new().request(method.clone(), node.url(path));
    if method == Method::POST {
        request = request
            .header("content-type", "application/json")
            .body(r#"{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1}"#);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = within(request.send()).await.unwrap();
    (response.status().as_u16(), response.headers().clone())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|value| value.to_str().unwrap())
}

#[tokio::test]
async fn allowed_origins_get_cors_headers_and_preflights() {
    let node = TestNode::start_with(&["calculator"], |config| {
        config.cors_origins =
            CorsOrigins::parse(&format!("{ALLOWED}, https://other.example")).unwrap();
    })
    .await;
    for (method, path) in [(Method::POST, "/"), (Method::GET, "/openrpc.json")] {
        let (status, headers) = send(&node, method.clone(), path, &[("origin", ALLOWED)]).await;
        assert_eq!(status, 200);
        assert_eq!(
            header(&headers, "access-control-allow-origin"),
            Some(ALLOWED),
            "{path}"
        );
        assert_eq!(header(&headers, "vary"), Some("origin"));
        let (status, headers) =
            send(&node, method, path, &[("origin", "http://evil.example")]).await;
        assert_eq!(status, 200);
        assert_eq!(
            header(&headers, "access-control-allow-origin"),
            None,
            "{path}"
        );
    }

    let preflight = [
        ("origin", ALLOWED),
        ("access-control-request-method", "POST"),
        (
            "access-control-request-headers",
            "content-type, authorization",
        ),
    ];
    let (status, headers) = send(&node, Method::OPTIONS, "/", &preflight).await;
    assert_eq!(status, 204);
    assert_eq!(
        header(&headers, "access-control-allow-origin"),
        Some(ALLOWED)
    );
    assert_eq!(
        header(&headers, "access-control-allow-methods"),
        Some("POST")
    );
    assert_eq!(
        header(&headers, "access-control-allow-headers"),
        Some("content-type, authorization")
    );
    assert_eq!(header(&headers, "access-control-max-age"), Some("600"));
    let get = [
        ("origin", ALLOWED),
        ("access-control-request-method", "GET"),
    ];
    let (status, headers) = send(&node, Method::OPTIONS, "/openrpc.json", &get).await;
    assert_eq!(
        (status, header(&headers, "access-control-allow-methods")),
        (204, Some("GET"))
    );

    // Refused: another origin, a method the route does not serve, a
    // malformed header list. None gets a CORS header.
    for (path, headers) in [
        (
            "/",
            vec![
                ("origin", "http://evil.example"),
                ("access-control-request-method", "POST"),
            ],
        ),
        (
            "/",
            vec![
                ("origin", ALLOWED),
                ("access-control-request-method", "DELETE"),
            ],
        ),
        (
            "/openrpc.json",
            vec![
                ("origin", ALLOWED),
                ("access-control-request-method", "POST"),
            ],
        ),
        (
            "/",
            vec![
                ("origin", ALLOWED),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "x(y)"),
            ],
        ),
    ] {
        let (status, answer) = send(&node, Method::OPTIONS, path, &headers).await;
        assert_eq!(status, 403, "{path} {headers:?}");
        assert_eq!(header(&answer, "access-control-allow-origin"), None);
        assert_eq!(header(&answer, "access-control-allow-methods"), None);
    }
    // A plain OPTIONS says what the route serves.
    let (status, headers) = send(&node, Method::OPTIONS, "/", &[]).await;
    assert_eq!((status, header(&headers, "allow")), (204, Some("POST")));
}

#[tokio::test]
async fn by_default_only_the_same_origin_may_read_answers() {
    let node = TestNode::start(&["calculator"]).await;
    let (status, headers) = send(&node, Method::POST, "/", &[("origin", ALLOWED)]).await;
    assert_eq!(
        (status, header(&headers, "access-control-allow-origin")),
        (200, None)
    );
    let preflight = [
        ("origin", ALLOWED),
        ("access-control-request-method", "POST"),
    ];
    let (status, headers) = send(&node, Method::OPTIONS, "/", &preflight).await;
    assert_eq!(
        (status, header(&headers, "access-control-allow-origin")),
        (403, None)
    );
}

#[tokio::test]
async fn any_origin_with_a_star() {
    let node = TestNode::start_with(&["calculator"], |config| {
        config.cors_origins = CorsOrigins::parse("*").unwrap();
    })
    .await;
    let (_, headers) = send(
        &node,
        Method::POST,
        "/",
        &[("origin", "http://anything.example")],
    )
    .await;
    assert_eq!(header(&headers, "access-control-allow-origin"), Some("*"));
}

#[tokio::test]
async fn bad_origin_lists_are_refused_naming_the_setting() {
    let plugins = plugins_dir(&["calculator"]);
    let plugins = plugins.path().to_str().unwrap();
    assert_refused(
        plugins,
        [
            (
                vec!["--cors-origins", "app.example"],
                "cors_origins: \"app.example\" is not an origin",
            ),
            (
                vec!["--cors-origins", "https://app.example/path"],
                "it has a path",
            ),
            (
                vec!["--cors-origins", "ftp://app.example"],
                "the scheme must be http or https",
            ),
            (vec!["--cors-origins", ","], "cors_origins lists no origin"),
        ],
    )
    .await;
}

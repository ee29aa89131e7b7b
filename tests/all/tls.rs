//! HTTPS and WSS on the same port, mutual TLS, and clear errors for bad
//! certificate files. Certificates are made at test time.

use std::path::PathBuf;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rpcnode::tls::TlsFiles;
use serde_json::{Value, json};
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto};
use tokio_tungstenite::tungstenite::Message;

use crate::binary::run_to_end;
use crate::support::{TestNode, start_error, success, within};

/// A throwaway certificate authority, and files it signed.
struct Pki {
    dir: tempfile::TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let pki = Self {
            dir: tempfile::tempdir().unwrap(),
            ca,
        };
        std::fs::write(pki.path("ca.pem"), pki.ca.pem()).unwrap();
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A certificate for `names`, signed by this CA; (certificate PEM, key PEM),
    /// also written to `<stem>.pem` and `<stem>.key`.
    fn issue(&self, stem: &str, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &self.ca)
            .unwrap();
        let (cert, key) = (cert.pem(), key.serialize_pem());
        std::fs::write(self.path(&format!("{stem}.pem")), &cert).unwrap();
        std::fs::write(self.path(&format!("{stem}.key")), &key).unwrap();
        (cert, key)
    }

    fn server_files(&self, client_ca: bool) -> TlsFiles {
        self.issue("server", &["localhost", "127.0.0.1"]);
        TlsFiles {
            cert: self.path("server.pem"),
            key: self.path("server.key"),
            client_ca: client_ca.then(|| self.path("ca.pem")),
        }
    }

    fn client(&self, identity: Option<(String, String)>) -> reqwest::Client {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(
                reqwest::Certificate::from_pem(self.ca.pem().as_bytes()).unwrap(),
            );
        if let Some((cert, key)) = identity {
            builder = builder
                .identity(reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap());
        }
        builder.build().unwrap()
    }
}

async fn post(client: &reqwest::Client, node: &TestNode) -> reqwest::Result<Value> {
    let url = format!("https://localhost:{}/", node.server.local_addr().port());
    let body = r#"{"jsonrpc":"2.0","method":"add","params":[20,22],"id":1}"#;
    let response = within(
        client
            .post(url)
            .header("content-type", "application/json")
            .body(body)
            .send(),
    )
    .await?;
    within(response.json()).await
}

#[tokio::test]
async fn https_and_wss_share_the_port() {
    let pki = Pki::new("test ca");
    let files = pki.server_files(false);
    let node = TestNode::start_with(&["calculator"], move |config| config.tls = Some(files)).await;
    assert!(node.server.url().starts_with("https://127.0.0.1:"));
    assert_eq!(
        post(&pki.client(None), &node).await.unwrap(),
        success(json!({"sum": 42}), json!(1))
    );

    let mut roots = RootCertStore::empty();
    roots.add(pki.ca.der().clone()).unwrap();
    let tls = ClientConfig::builder_with_provider(Arc::new(crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = within(tokio::net::TcpStream::connect(node.server.local_addr()))
        .await
        .unwrap();
    let stream = within(
        tokio_rustls::TlsConnector::from(Arc::new(tls))
            .connect(ServerName::try_from("localhost").unwrap(), tcp),
    )
    .await
    .unwrap();
    let url = format!("wss://localhost:{}/ws", node.server.local_addr().port());
    let (mut ws, _) = within(tokio_tungstenite::client_async(url, stream))
        .await
        .unwrap();
    within(ws.send(Message::text(
        r#"{"jsonrpc":"2.0","method":"add","params":[1,1],"id":2}"#,
    )))
    .await
    .unwrap();
    let Some(Ok(Message::Text(answer))) = within(ws.next()).await else {
        panic!("no answer over WSS")
    };
    assert_eq!(
        serde_json::from_str::<Value>(&answer).unwrap(),
        success(json!({"sum": 2}), json!(2))
    );

    // Plain HTTP on a TLS port gets nowhere.
    let plain = reqwest::Client::new()
        .get(format!("http://{}/health", node.server.local_addr()))
        .send();
    assert!(within(plain).await.is_err());
}

#[tokio::test]
async fn mutual_tls_refuses_clients_without_a_certificate_from_the_ca() {
    let pki = Pki::new("test ca");
    let files = pki.server_files(true);
    let node = TestNode::start_with(&["calculator"], move |config| config.tls = Some(files)).await;

    assert!(
        post(&pki.client(None), &node).await.is_err(),
        "a client without a certificate got in"
    );
    let stranger = Pki::new("another ca").issue("stranger", &["client"]);
    assert!(
        post(&pki.client(Some(stranger)), &node).await.is_err(),
        "a client from another CA got in"
    );
    let member = pki.issue("client", &["client"]);
    assert_eq!(
        post(&pki.client(Some(member)), &node).await.unwrap(),
        success(json!({"sum": 42}), json!(1))
    );
}

#[tokio::test]
async fn bad_certificate_files_are_startup_errors_naming_the_file() {
    let pki = Pki::new("test ca");
    let good = pki.server_files(false);
    std::fs::write(pki.path("garbage.pem"), "not a certificate").unwrap();
    pki.issue("other", &["localhost"]);
    let cases = [
        (
            TlsFiles {
                cert: pki.path("missing.pem"),
                ..good.clone()
            },
            format!(
                "reading certificate file {}",
                pki.path("missing.pem").display()
            ),
        ),
        (
            TlsFiles {
                cert: pki.path("garbage.pem"),
                ..good.clone()
            },
            format!(
                "certificate file {} holds no PEM certificate",
                pki.path("garbage.pem").display()
            ),
        ),
        (
            TlsFiles {
                key: pki.path("garbage.pem"),
                ..good.clone()
            },
            format!(
                "reading private key file {}",
                pki.path("garbage.pem").display()
            ),
        ),
        (
            TlsFiles {
                key: pki.path("other.key"),
                ..good.clone()
            },
            format!(
                "certificate {} and private key {} do not belong together",
                good.cert.display(),
                pki.path("other.key").display()
            ),
        ),
        (
            TlsFiles {
                client_ca: Some(pki.path("garbage.pem")),
                ..good.clone()
            },
            format!(
                "client CA file {} holds no PEM certificate",
                pki.path("garbage.pem").display()
            ),
        ),
    ];
    for (files, expected) in cases {
        let dir = crate::support::plugins_dir(&[]);
        let message = start_error(dir.path(), |config| config.tls = Some(files)).await;
        assert!(
            message.starts_with(&expected),
            "{message}\nexpected: {expected}"
        );
    }
}

#[tokio::test]
async fn the_client_commands_speak_https_and_wss_with_a_ca_file_and_a_client_certificate() {
    let pki = Pki::new("test ca");
    let files = pki.server_files(true);
    let node = TestNode::start_with(&["calculator"], move |config| config.tls = Some(files)).await;
    pki.issue("client", &["client"]);
    let port = node.server.local_addr().port();
    let ca = pki.path("ca.pem").display().to_string();
    let cert = pki.path("client.pem").display().to_string();
    let key = pki.path("client.key").display().to_string();
    for url in [
        format!("https://localhost:{port}/"),
        format!("wss://localhost:{port}/ws"),
    ] {
        let (code, stderr) = run_to_end(&[
            "call", &url, "add", "a=1", "b=2", "--cacert", &ca, "--cert", &cert, "--key", &key,
        ])
        .await;
        assert_eq!(code, Some(0), "{url}: {stderr}");
        // Without the CA file the node's certificate is not trusted.
        let (code, stderr) =
            run_to_end(&["call", &url, "add", "--cert", &cert, "--key", &key]).await;
        assert_eq!(code, Some(3), "{url}: {stderr}");
        assert!(stderr.contains("UnknownIssuer"), "{url}: {stderr}");
        // Without a client certificate the node refuses the connection.
        let (code, stderr) = run_to_end(&["call", &url, "add", "--cacert", &ca]).await;
        assert_eq!(code, Some(3), "{url}: {stderr}");
    }
    let (code, stderr) =
        run_to_end(&["call", "https://localhost:1/", "add", "--cert", &cert]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--key"), "{stderr}");
}

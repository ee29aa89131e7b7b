//! `rpcnode new` and `rpcnode build` as a user runs them, from folders
//! outside the checkout: bad input is refused with a message that says what
//! is wrong, a broken project fails its build with the place of the fault, and
//! `--watch` rebuilds a project so that a host serving the folder reloads it.
//! (`cargo xtask test` also makes and builds a project in every language with
//! these commands; the `new_project_*` tests in `languages.rs` call them.)

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::json;

use crate::binary::rpcnode;
use crate::support::{TestNode, success};

/// The longest one build may take: componentizing takes seconds, more while
/// other tests use the cores.
const BUILD_TIMEOUT: Duration = Duration::from_secs(300);

/// The tools `cargo xtask build-plugins` installed, shared so that nothing is
/// installed during the tests.
fn tools_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/toolchains")
}

/// `rpcnode ARGS…` run to completion in `dir`: whether it succeeded, and what
/// it wrote (stdout, where tsc reports, then stderr).
async fn run_tool(dir: &Path, args: &[&str]) -> (bool, String) {
    let mut command = rpcnode();
    command
        .args(args)
        .current_dir(dir)
        .env("RPCNODE_TOOLS_DIR", tools_dir());
    let Output {
        status,
        stdout,
        stderr,
    } = tokio::time::timeout(BUILD_TIMEOUT, command.output())
        .await
        .expect("timed out running rpcnode")
        .expect("running rpcnode");
    let written = [stdout, stderr].concat();
    (
        status.success(),
        String::from_utf8_lossy(&written).into_owned(),
    )
}

/// A project folder `parent/name` holding `files`.
fn project(parent: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = parent.join(name);
    for (file, contents) in files {
        std::fs::create_dir_all(dir.join(file).parent().unwrap()).unwrap();
        std::fs::write(dir.join(file), contents).unwrap();
    }
    dir
}

/// Build `name` in `parent` into `parent/plugins`: it must fail, leave no
/// component, and say each of `expected`.
async fn assert_build_fails(parent: &Path, name: &str, expected: &[&str]) {
    let (built, output) = run_tool(parent, &["build", name, "--out", "plugins"]).await;
    assert!(!built, "{name} built:\n{output}");
    for text in expected {
        assert!(output.contains(text), "{text:?} is not in:\n{output}");
    }
    let left: Vec<_> = std::fs::read_dir(parent.join("plugins"))
        .map(|entries| entries.map(|entry| entry.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{name} left {left:?}");
}

#[tokio::test]
async fn new_refuses_bad_names_unknown_languages_and_existing_folders() {
    let parent = tempfile::tempdir().unwrap();
    let (made, output) = run_tool(parent.path(), &["new", "Hello", "--lang", "js"]).await;
    assert!(!made);
    assert_eq!(
        output,
        "error: invalid plugin name \"Hello\": use lowercase letters, digits and underscores, starting with a letter\n"
    );
    let (made, output) = run_tool(parent.path(), &["new", "hello", "--lang", "cobol"]).await;
    assert!(!made);
    assert!(
        output.starts_with("error: invalid value 'cobol' for '--lang <LANG>'\n  [possible values: rust, js, ts, python]"),
        "{output}"
    );
    let (made, output) = run_tool(parent.path(), &["new", "hello"]).await;
    assert!(!made);
    assert!(
        output.starts_with(
            "error: the following required arguments were not provided:\n  --lang <LANG>"
        ),
        "{output}"
    );
    std::fs::create_dir(parent.path().join("taken")).unwrap();
    let (made, output) = run_tool(parent.path(), &["new", "taken", "--lang", "py"]).await;
    assert!(!made);
    let taken = parent.path().canonicalize().unwrap().join("taken");
    assert_eq!(
        output,
        format!("error: {} already exists\n", taken.display())
    );
    // Nothing was written by the refused commands.
    let mut entries: Vec<_> = std::fs::read_dir(parent.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    entries.sort();
    assert_eq!(entries, ["taken"]);
    assert_eq!(std::fs::read_dir(&taken).unwrap().count(), 0);
}

#[tokio::test]
async fn build_refuses_a_folder_that_is_not_a_project() {
    let parent = tempfile::tempdir().unwrap();
    let dir = project(parent.path(), "notes", &[("README.md", "# notes\n")]);
    let (built, output) = run_tool(parent.path(), &["build", "notes", "--out", "plugins"]).await;
    assert!(!built);
    assert_eq!(
        output,
        format!(
            "error: {} is not a plugin project: it has none of Cargo.toml, app.ts, app.js or app.py\n",
            dir.canonicalize().unwrap().display()
        )
    );
    assert!(!parent.path().join("plugins/notes.wasm").exists());
}

#[tokio::test]
async fn an_import_that_does_not_resolve_fails_the_build_naming_it_and_its_file() {
    let parent = tempfile::tempdir().unwrap();
    let app = "import { chunk } from 'no-such-package';\n\
               import { Plugin } from 'rpcnode-sdk';\n\
               const plugin = new Plugin('unresolved', '0.1.0');\n\
               plugin.method('chunks', () => chunk([1, 2, 3], 2));\n\
               export const handler = plugin.handler();\n";
    project(parent.path(), "unresolved", &[("app.js", app)]);
    assert_build_fails(
        parent.path(),
        "unresolved",
        &[
            "[UNRESOLVED_IMPORT] Could not resolve 'no-such-package' in app.js",
            "bundling with rolldown",
        ],
    )
    .await;
}

#[tokio::test]
async fn a_type_error_fails_the_typescript_build_with_its_place() {
    let parent = tempfile::tempdir().unwrap();
    let (made, output) = run_tool(parent.path(), &["new", "typed", "--lang", "ts"]).await;
    assert!(made, "{output}");
    let app = parent.path().join("typed/app.ts");
    let source = std::fs::read_to_string(&app).unwrap();
    let wrong = source.replace("const count: number", "const count: string");
    assert_ne!(wrong, source, "the template declares `count: number`");
    std::fs::write(&app, wrong).unwrap();
    assert_build_fails(
        parent.path(),
        "typed",
        &[
            "app.ts(18,9): error TS2322: Type 'number' is not assignable to type 'string'.",
            "type-checking with tsc",
        ],
    )
    .await;
}

#[tokio::test]
async fn a_method_declared_twice_fails_the_javascript_and_python_builds() {
    let parent = tempfile::tempdir().unwrap();
    let js = "import { Plugin } from 'rpcnode-sdk';\n\
              const plugin = new Plugin('twice', '0.1.0');\n\
              plugin.method('hello', () => 'first');\n\
              plugin.method('hello', () => 'second');\n\
              export const handler = plugin.handler();\n";
    project(parent.path(), "twice_js", &[("app.js", js)]);
    let python = "from rpcnode import Plugin\n\
                  plugin = Plugin('twice', '0.1.0')\n\
                  @plugin.method(name='hello')\n\
                  def first():\n    return 'first'\n\
                  @plugin.method(name='hello')\n\
                  def second():\n    return 'second'\n\
                  Handler = plugin.handler()\n";
    project(parent.path(), "twice_python", &[("app.py", python)]);
    let message = "plugin twice: method hello is declared twice";
    assert_build_fails(parent.path(), "twice_js", &[message, "componentize-js"]).await;
    assert_build_fails(parent.path(), "twice_python", &[message, "componentize-py"]).await;
}

/// `rpcnode build --watch` beside a host serving its output folder: an edit
/// to the source is answered by the new code, with no other step.
#[tokio::test]
async fn watch_rebuilds_on_change_and_the_host_reloads_the_plugin() {
    let parent = tempfile::tempdir().unwrap();
    let (made, output) = run_tool(parent.path(), &["new", "greeter", "--lang", "python"]).await;
    assert!(made, "{output}");
    let plugins = tempfile::tempdir().unwrap();
    let mut watch = rpcnode();
    watch
        .args(["build", "greeter", "--watch", "--out"])
        .arg(plugins.path())
        .current_dir(parent.path())
        .env("RPCNODE_TOOLS_DIR", tools_dir())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let _watching = watch.spawn().expect("starting rpcnode build --watch");
    let component = plugins.path().join("greeter.wasm");
    wait_for(BUILD_TIMEOUT, || component.exists()).await;

    let plugins_path = plugins.path().to_owned();
    let node = TestNode::start_in(plugins, |config| config.watch = true).await;
    assert_eq!(node.plugins_path(), plugins_path);
    assert_eq!(
        node.call("hello", json!({"name": "Ada"})).await,
        success(json!({"greeting": "Hello, Ada!", "count": 1}), json!(1))
    );

    let app = parent.path().join("greeter/app.py");
    let source = std::fs::read_to_string(&app).unwrap();
    std::fs::write(
        &app,
        source.replace("f\"Hello, {name}!\"", "f\"Hi, {name}!\""),
    )
    .unwrap();
    let deadline = tokio::time::Instant::now() + BUILD_TIMEOUT;
    loop {
        let answer = node.call("hello", json!({"name": "Ada"})).await;
        if answer["result"]["greeting"] == "Hi, Ada!" {
            // State is the host's: the count goes on across the reload.
            assert!(answer["result"]["count"].as_i64().unwrap() >= 2, "{answer}");
            break;
        }
        assert_eq!(answer["result"]["greeting"], "Hello, Ada!", "{answer}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the edit was not served within {BUILD_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Poll `done` until it holds, failing after `limit` in total.
async fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) {
    tokio::time::timeout(limit, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("timed out waiting");
}

use std::path::{Path, PathBuf};
use std::process::Command;

/// What a run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs `scimform` with `args` and extra environment variables, stdin closed (no terminal).
/// Blocking; from async tests call it through `run_async`.
pub fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_scimform"))
        .current_dir(dir)
        .args(args)
        .envs(env.iter().copied())
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("the scimform binary runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `run` off the async runtime, so an embedded server in the same test keeps serving.
pub async fn run_async(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let dir = dir.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        run(&dir, &args, &env)
    })
    .await
    .expect("the runner thread finishes")
}

/// A temporary directory holding the given files.
pub fn workspace(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for (name, text) in files {
        let file = dir.path().join(name);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).expect("a fixture folder is made");
        }
        std::fs::write(file, text).expect("a fixture file is written");
    }
    dir
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The quickstart example copied into a temporary directory (lock, plan and state files land
/// there, not in the repository).
pub fn quickstart() -> tempfile::TempDir {
    let root = repo_root().join("examples/quickstart");
    let read = |name: &str| std::fs::read_to_string(root.join(name)).expect("the quickstart example");
    workspace(&[("scimform.yaml", &read("scimform.yaml")), ("people.yaml", &read("people.yaml"))])
}

/// A scim2-server process (the third-party RFC 7644 server from PyPI) on a free port of
/// 127.0.0.1, killed when dropped. `scripts/test` installs it and sets `SCIMFORM_TEST_SCIM2_SERVER`.
pub struct Scim2Server {
    child: std::process::Child,
    pub base_url: String,
    pub token: String,
}

impl Scim2Server {
    pub async fn start() -> Self {
        let program = std::env::var("SCIMFORM_TEST_SCIM2_SERVER").unwrap_or_else(|_| {
            panic!(
                "SCIMFORM_TEST_SCIM2_SERVER is not set: run the suite with `scripts/test`, which installs scim2-server"
            )
        });
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let token = "scim2-test-token".to_owned();
        let child = Command::new(program)
            .args(["--hostname", "127.0.0.1", "--port", &port.to_string(), "--bearer-token", &token])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("scim2-server starts");
        let server = Self { child, base_url: format!("http://127.0.0.1:{port}/v2"), token };
        let http = reqwest::Client::new();
        for _ in 0..100 {
            let ready = http
                .get(format!("{}/ServiceProviderConfig", server.base_url))
                .bearer_auth(&server.token)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return server;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("scim2-server did not answer on port {port}");
    }

    /// Sends a request as a person with other tools would (behind scimform's back).
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        let mut request = reqwest::Client::new()
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(&self.token)
            .header("content-type", "application/scim+json");
        if let Some(body) = body {
            request = request.body(body.to_string());
        }
        let response = request.send().await.unwrap();
        assert!(response.status().is_success(), "{path}: {}", response.status());
        response.json().await.unwrap_or(serde_json::Value::Null)
    }
}

impl Drop for Scim2Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A reverse proxy on 127.0.0.1 in front of a real service that records each request line
/// (`GET /Users?count=0`, the query decoded), so a test asserts what scimform asked for.
pub struct RecordingProxy {
    pub base_url: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl RecordingProxy {
    /// Forwards `{base_url}/…` to `{upstream}/…`.
    pub async fn start(upstream: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (log, upstream, http) = (requests.clone(), upstream.to_owned(), reqwest::Client::new());
        let forward = move |request: axum::extract::Request| {
            let (log, upstream, http) = (log.clone(), upstream.clone(), http.clone());
            async move {
                let (parts, body) = request.into_parts();
                let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
                let target = parts.uri.path_and_query().map(ToString::to_string).unwrap_or_default();
                let decoded = reqwest::Url::parse(&format!("http://x{target}")).unwrap();
                let query: Vec<String> = decoded.query_pairs().map(|(k, v)| format!("{k}={v}")).collect();
                let line = if query.is_empty() {
                    format!("{} {}", parts.method, decoded.path())
                } else {
                    format!("{} {}?{}", parts.method, decoded.path(), query.join("&"))
                };
                log.lock().unwrap().push(line);
                let mut forwarded =
                    http.request(parts.method.clone(), format!("{upstream}{target}")).body(body.to_vec());
                for name in ["authorization", "content-type", "if-match", "accept"] {
                    if let Some(value) = parts.headers.get(name) {
                        forwarded = forwarded.header(name, value.clone());
                    }
                }
                let answer = forwarded.send().await.unwrap();
                let mut response = axum::http::Response::builder().status(answer.status().as_u16());
                for name in ["content-type", "etag", "location"] {
                    if let Some(value) = answer.headers().get(name) {
                        response = response.header(name, value.clone());
                    }
                }
                response.body(axum::body::Body::from(answer.bytes().await.unwrap())).unwrap()
            }
        };
        let router = axum::Router::new().fallback(forward);
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { base_url: format!("http://127.0.0.1:{port}/v2"), requests }
    }

    /// The request lines so far, and forgets them.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.requests.lock().unwrap())
    }
}

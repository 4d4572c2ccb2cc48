//! A small W3C WebDriver client over HTTP (reqwest) for headless Chromium
//! through `chromedriver` (Debian's `chromium` and `chromium-driver`:
//! `tools/install-chromium.sh`). Missing browsers fail the test, never skip it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

/// The key codes WebDriver sends (W3C WebDriver, "Keyboard actions").
pub const TAB: &str = "\u{E004}";
pub const SHIFT: &str = "\u{E008}";
pub const ARROW_RIGHT: &str = "\u{E014}";
pub const ARROW_DOWN: &str = "\u{E015}";

/// The key an element reference is sent under.
pub const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn which(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{program} is not installed: run `bash tools/install-chromium.sh` (CI does)")
        })
}

/// One chromedriver process and one browser session, ended on drop.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    session: String,
    _driver: Child,
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium session
    /// that keeps the browser's console log. `work` holds the profile and
    /// chromedriver's own log.
    pub async fn start(work: &Path) -> Browser {
        let chromium = which("chromium");
        let chromedriver = which("chromedriver");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        let mut last = String::new();
        for _ in 0..3 {
            let port = crate::support::free_port();
            let log = std::fs::File::create(work.join("chromedriver.log")).unwrap();
            let driver = Command::new(&chromedriver)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
                .expect("chromedriver starts");
            let base = format!("http://127.0.0.1:{port}");
            for _ in 0..100 {
                if let Ok(r) = http.get(format!("{base}/status")).send().await
                    && let Ok(v) = r.json::<Value>().await
                    && v["value"]["ready"] == json!(true)
                {
                    let caps = json!({"capabilities": {"alwaysMatch": {
                        "browserName": "chrome",
                        "goog:chromeOptions": {
                            "binary": chromium,
                            "args": [
                                "--headless=new", "--no-sandbox", "--disable-gpu",
                                "--disable-dev-shm-usage", "--window-size=1400,1000",
                                "--no-first-run", "--disable-extensions",
                                format!("--user-data-dir={}", work.join("profile").display()),
                            ],
                        },
                        "goog:loggingPrefs": {"browser": "ALL"},
                    }}});
                    let r = http
                        .post(format!("{base}/session"))
                        .json(&caps)
                        .send()
                        .await
                        .unwrap();
                    let v: Value = r.json().await.unwrap();
                    let session = v["value"]["sessionId"]
                        .as_str()
                        .unwrap_or_else(|| panic!("no session: {v}"))
                        .to_string();
                    return Browser {
                        http,
                        base,
                        session,
                        _driver: driver,
                    };
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            last = std::fs::read_to_string(work.join("chromedriver.log")).unwrap_or_default();
        }
        panic!("chromedriver did not become ready:\n{last}");
    }

    /// One WebDriver command: its `value`, or a panic with the error.
    pub async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{method} {path}: {status} {v}");
        v["value"].clone()
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        self.cmd(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    /// Runs `script` (a function body; `arguments[i]` are `args`) in the page.
    pub async fn exec(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": args }))
            .await
    }

    /// Runs `source` in every document before its own scripts (DevTools).
    pub async fn before_each_document(&self, source: &str) {
        self.post(
            "/goog/cdp/execute",
            json!({"cmd": "Page.addScriptToEvaluateOnNewDocument", "params": {"source": source}}),
        )
        .await;
    }

    /// The browser console's entries since the last call (chromedriver's
    /// log endpoint: `level`, `message`, `source`).
    pub async fn console(&self) -> Vec<Value> {
        let v = self.post("/se/log", json!({"type": "browser"})).await;
        v.as_array().cloned().unwrap_or_default()
    }

    /// Presses and releases each key in turn, as a user would.
    pub async fn press(&self, keys: &[&str]) {
        let mut actions = Vec::new();
        for k in keys {
            actions.push(json!({"type": "keyDown", "value": k}));
            actions.push(json!({"type": "keyUp", "value": k}));
        }
        self.post(
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]}),
        )
        .await;
    }

    /// Shift+Tab.
    pub async fn press_shift_tab(&self) {
        self.post(
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
                {"type": "keyDown", "value": SHIFT}, {"type": "keyDown", "value": TAB},
                {"type": "keyUp", "value": TAB}, {"type": "keyUp", "value": SHIFT},
            ]}]}),
        )
        .await;
    }

    /// Moves the mouse onto an element (a reference `exec` returned).
    pub async fn hover(&self, element: &Value) {
        self.post(
            "/actions",
            json!({"actions": [{"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
                "actions": [{"type": "pointerMove", "duration": 0, "origin": element, "x": 0, "y": 0}]}]}),
        )
        .await;
    }

    /// Types text into an element (a reference `exec` returned).
    pub async fn type_into(&self, element: &Value, text: &str) {
        let id = element[ELEMENT].as_str().expect("an element reference");
        self.post(&format!("/element/{id}/value"), json!({ "text": text }))
            .await;
    }

    /// A PNG of the window.
    pub async fn screenshot(&self) -> Vec<u8> {
        let v = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("base64"))
            .expect("a PNG")
    }

    pub async fn quit(self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send()
            .await;
    }
}

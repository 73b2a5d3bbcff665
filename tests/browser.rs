//! The inspector in a real browser: headless Chromium driven over WebDriver (chromedriver,
//! fantoccini). Ignored by default so `cargo test` needs no browser; `.ci/run` installs
//! chromium and chromium-driver and runs this file with `--include-ignored`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(15);

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
    _profile: TempFile,
}

impl Driver {
    fn start() -> Driver {
        let port = closed_port();
        let mut child =
            Command::new(std::env::var("CHROMEDRIVER").unwrap_or("chromedriver".into()))
                .arg(format!("--port={port}"))
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver runs (apt-get install chromium-driver)");
        let mut out = BufReader::new(child.stdout.take().expect("piped"));
        // Ready once it says so: no sleep.
        loop {
            let mut line = String::new();
            let n = out.read_line(&mut line).expect("read chromedriver");
            assert!(n > 0, "chromedriver ended before it was ready");
            if line.contains("started successfully") {
                break;
            }
        }
        std::thread::spawn(move || for _ in out.lines() {});
        Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _profile: TempFile::new("profile-marker", b""),
        }
    }

    async fn browser(&self) -> Client {
        let profile = self
            ._profile
            .path
            .with_file_name("profile")
            .display()
            .to_string();
        let mut options = json!({
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1400,900",
                format!("--user-data-dir={profile}"),
            ],
        });
        if let Ok(binary) = std::env::var("CHROMIUM") {
            options["binary"] = json!(binary);
        } else if std::path::Path::new("/usr/bin/chromium").exists() {
            options["binary"] = json!("/usr/bin/chromium");
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".into(), options);
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a browser session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_ui(args: &[&str]) -> (Listener, String) {
    let mut all = vec!["--secret", KEY, "--ui"];
    all.extend_from_slice(args);
    let mut listener = Listener::start(&all);
    loop {
        let line = listener.stderr_line();
        assert!(
            !line.is_empty(),
            "listen ended before printing the inspector"
        );
        if let Some(url) = line.trim().strip_prefix("inspector on ") {
            return (listener, url.to_string());
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Waits (polling the page, up to [`WAIT`]) until `css` matches `count` elements.
async fn wait_count(browser: &Client, css: &str, count: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let found = browser
            .find_all(Locator::Css(css))
            .await
            .map_or(0, |v| v.len());
        if found == count {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{css}: {found} elements, wanted {count}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_text(browser: &Client, css: &str, wanted: &str) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok(element) = browser.find(Locator::Css(css)).await
            && let Ok(text) = element.text().await
            && text.contains(wanted)
        {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{css} never said `{wanted}`"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
#[ignore = "needs chromium and chromedriver (.ci/run installs them)"]
fn rows_appear_live_and_a_401_row_explains_its_verdict() {
    let mut app = Server::uponai();
    let (listener, page) = start_ui(&["--forward-to", &app.url.clone()]);
    let driver = Driver::start();
    runtime().block_on(async {
        let browser = driver.browser().await;
        browser.goto(&page).await.expect("open the page");
        wait_text(&browser, "#live", "live").await;
        assert_code(&listener.send(&["call_started", "--secret", KEY]), 0);
        wait_count(&browser, "#rows tr", 1).await;
        let out = listener.send(&["call_ended", "--secret", "wrong_key", "--retries", "0"]);
        assert_eq!(code(&out), 1);
        // No reload: the second row comes in by itself, newest first.
        wait_count(&browser, "#rows tr", 2).await;
        let newest = browser.find(Locator::Css("#rows tr")).await.unwrap();
        let text = newest.text().await.unwrap();
        assert!(
            text.contains("call_ended") && text.contains("invalid"),
            "{text}"
        );
        assert!(text.contains("401") && text.contains("app 401"), "{text}");
        // Its first cell: the middle of the row is the call id's link (the timeline).
        newest
            .find(Locator::Css("td"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let why = wait_text(&browser, "[data-testid=why]", "invalid").await;
        assert!(why.contains("does not match this body"), "{why}");
        let source = browser.source().await.unwrap();
        assert!(!source.contains(KEY), "the key is not in the page");
        browser.close().await.unwrap();
    });
    assert_eq!(app.hits(), 2);
    listener.stop();
}

#[test]
#[ignore = "needs chromium and chromedriver (.ci/run installs them)"]
fn a_calls_timeline_filters_and_replay_from_the_page() {
    let (listener, page) = start_ui(&[]);
    let driver = Driver::start();
    for event in ["call_started", "call_ended", "call_analyzed"] {
        let out = listener.send(&[
            event,
            "--secret",
            KEY,
            "--set",
            "call.call_id=call_browser_1",
        ]);
        assert_code(&out, 0);
    }
    let out = listener.send(&["call_started", "--secret", "nope", "--retries", "0"]);
    assert_eq!(code(&out), 1);
    runtime().block_on(async {
        let browser = driver.browser().await;
        browser.goto(&page).await.expect("open the page");
        wait_count(&browser, "#rows tr", 4).await;

        // The call's timeline: its three events in order.
        browser
            .find(Locator::LinkText("call_browser_1"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_count(&browser, "[data-testid=timeline] li", 3).await;
        let timeline = wait_text(&browser, "[data-testid=timeline]", "call_analyzed").await;
        let order: Vec<usize> = ["call_started", "call_ended", "call_analyzed"]
            .iter()
            .map(|e| timeline.find(e).unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{timeline}");

        // Filters: by verdict, then by call id.
        let verdict = browser.find(Locator::Id("f-verdict")).await.unwrap();
        verdict.select_by_value("invalid").await.unwrap();
        wait_count(&browser, "#rows tr", 1).await;
        browser
            .find(Locator::Id("f-clear"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_count(&browser, "#rows tr", 4).await;
        let call = browser.find(Locator::Id("f-call")).await.unwrap();
        call.send_keys("call_browser_1").await.unwrap();
        wait_count(&browser, "#rows tr", 3).await;
        browser
            .find(Locator::Id("f-clear"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();

        // Replay the oldest row through listen: re-signed, it arrives as a new valid row.
        let rows = browser.find_all(Locator::Css("#rows tr")).await.unwrap();
        let oldest = rows.last().unwrap();
        oldest
            .find(Locator::Css("td"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let replay = browser
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css("[data-testid=replay-listen]"))
            .await
            .unwrap();
        replay.click().await.unwrap();
        let result = wait_text(&browser, "[data-testid=replay-result]", "204").await;
        assert!(result.contains("re-signed"), "{result}");
        wait_count(&browser, "#rows tr", 5).await;
        let newest = browser.find(Locator::Css("#rows tr")).await.unwrap();
        let text = newest.text().await.unwrap();
        assert!(
            text.contains("valid") && text.contains("duplicate of #1"),
            "{text}"
        );

        // The README's picture, when asked for.
        if let Ok(path) = std::env::var("HOOKCLI_SCREENSHOT") {
            let png = browser.screenshot().await.unwrap();
            std::fs::write(path, png).unwrap();
        }
        browser.close().await.unwrap();
    });
    listener.stop();
}

#[test]
#[ignore = "needs chromium and chromedriver (.ci/run installs them)"]
fn a_payload_with_script_tags_stays_text_in_the_page() {
    let (listener, page) = start_ui(&[]);
    let driver = Driver::start();
    let payload = r#"{"event":"call_started","call":{"call_id":"<img src=x onerror=document.title='pwned'>","transcript":"<script>document.title='pwned'</script>"}}"#;
    let data = TempFile::new("xss.json", payload.as_bytes());
    assert_code(
        &listener.send(&["--data", data.path_str(), "--secret", KEY]),
        0,
    );
    runtime().block_on(async {
        let browser = driver.browser().await;
        browser.goto(&page).await.expect("open the page");
        wait_count(&browser, "#rows tr", 1).await;
        let row = browser.find(Locator::Css("#rows tr td")).await.unwrap();
        row.click().await.unwrap();
        wait_text(&browser, "#detail", "<script>document.title").await;
        // Shown as text; nothing ran and no element was made from it.
        assert_eq!(browser.title().await.unwrap(), "hookcli inspector");
        assert!(
            browser
                .find_all(Locator::Css("#detail img, #rows img, #detail script"))
                .await
                .unwrap()
                .is_empty()
        );
        browser.close().await.unwrap();
    });
    listener.stop();
}

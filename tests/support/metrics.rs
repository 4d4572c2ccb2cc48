//! The operator's `/metrics`, as the tests read it.

/// GET /metrics with an optional Accept header: (content type, body).
pub async fn scrape_accepting(
    addr: std::net::SocketAddr,
    accept: Option<&str>,
) -> (String, String) {
    let client = reqwest::Client::new();
    let mut request = client.get(format!("http://{addr}/metrics"));
    if let Some(accept) = accept {
        request = request.header("Accept", accept);
    }
    let response = request.send().await.expect("scraping /metrics");
    assert!(response.status().is_success(), "{}", response.status());
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (content_type, response.text().await.expect("metrics body"))
}

/// GET /metrics: the body.
pub async fn scrape(addr: std::net::SocketAddr) -> String {
    scrape_accepting(addr, None).await.1
}

/// The value of the sample `series` (name and labels, exactly as exposed).
pub fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

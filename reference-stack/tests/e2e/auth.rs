//! merchant-auth-service: login and password change through the merchant lookup.

use reference_stack::{ClientSettings, start};
use serde_json::{Value, json};
use wiremock::Mock;
use wiremock::matchers::{method, path};

use crate::support::*;

#[tokio::test]
async fn login_checks_the_password_hash() {
    let merchant = merchant_stand_in().await;
    let auth = start(auth_config(&merchant.uri(), fast())).await.unwrap();
    let (status, body) = login(&auth.url()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["merchant_id"], "M001");
    assert_eq!(body["data"]["expires_in"], 3600);
    assert_eq!(body["data"]["token"].as_str().unwrap().len(), 64);
    let (status, _) = post_json(
        &format!("{}/api/v1/auth/login", auth.url()),
        &json!({"merchant_id": "M001", "password": "wrong"}),
    )
    .await;
    assert_eq!(status, 401);
    let (status, body) = post_json(
        &format!("{}/api/v1/auth/login", auth.url()),
        &json!({"merchant_id": "M001"}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("password"));
    auth.shutdown().await;
}

#[tokio::test]
async fn password_change_puts_the_new_hash() {
    let merchant = merchant_stand_in().await;
    Mock::given(method("PUT"))
        .and(path("/api/v1/merchants/M001/password"))
        .respond_with(ok(json!({"updated": true})))
        .mount(&merchant)
        .await;
    let auth = start(auth_config(&merchant.uri(), fast())).await.unwrap();
    let (status, body) = post_json(
        &format!("{}/api/v1/auth/password", auth.url()),
        &json!({"merchant_id": "M001", "old_password": "password123", "new_password": "n3w-passw0rd"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let put = received(&merchant, "/api/v1/merchants/M001/password").await;
    let put: Value = serde_json::from_slice(&put[0].body).unwrap();
    assert_eq!(
        put["password_hash"],
        reference_stack::password_hash("n3w-passw0rd")
    );
    let (status, _) = post_json(
        &format!("{}/api/v1/auth/password", auth.url()),
        &json!({"merchant_id": "M001", "old_password": "nope", "new_password": "n3w-passw0rd"}),
    )
    .await;
    assert_eq!(status, 401);
    auth.shutdown().await;
}

#[tokio::test]
async fn unreachable_merchant_service_is_502() {
    let auth = start(auth_config(
        &closed_port_url(),
        ClientSettings {
            max_attempts: 1,
            ..fast()
        },
    ))
    .await
    .unwrap();
    let (status, body) = login(&auth.url()).await;
    assert_eq!(status, 502, "{body}");
    auth.shutdown().await;
}

//! The OpenAPI document, generated from the handlers and types the router serves (utoipa): a route registered
//! with `routes!` is documented by construction. What only the running service knows (the apps it serves) and
//! what every route shares (the error answers) are added here.

use super::error::ApiError;
use crate::logins::apps::Apps;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::{ResponseBuilder, ResponsesBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, OpenApi, RefOr, Required, Schema};
use utoipa::{Modify, ToSchema};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "wxlogin",
        description = "WeChat Mini Program phone-number quick login. Every answer is `{code, msg, data}` on success \
                       (`code` 0) or `{code, msg, error}` on failure; docs/errors.md lists every error.",
        license(name = "MIT OR Apache-2.0")
    ),
    components(schemas(ErrorAnswer)),
    modifiers(&Shared)
)]
pub struct ApiDoc;

/// A failure: a stable numeric code, a message a user can read, a stable snake_case id.
#[derive(ToSchema)]
#[allow(dead_code)] // documents the body `ApiError` writes
pub struct ErrorAnswer {
    #[schema(minimum = 1)]
    code: i32,
    msg: String,
    error: String,
}

/// The bearer session, and the error answers every API route may give.
struct Shared;

impl Modify for Shared {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        // A scan login's poll token (`wxq_…`), which only the web page that created the login holds.
        components.add_security_scheme(
            "poll",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        // A resource server of `[[clients]]` (introspection), by HTTP Basic or form fields.
        components.add_security_scheme(
            "client",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
    }
}

/// Adds what the running service knows: the appids it serves (so a client, or a fuzzer, only names those), and
/// the error answers of every `/api` route with their statuses from the error table.
pub fn finish(mut doc: OpenApi, apps: &Apps) -> OpenApi {
    let appids: Vec<String> = apps.iter().map(|a| a.appid.as_str().to_owned()).collect();
    let statuses = error_statuses();
    for (path, item) in doc.paths.paths.iter_mut() {
        let api = path.starts_with("/api/");
        // The token routes answer the error table too (a body over the limit, the database down), besides the
        // answers their RFCs define, which they document themselves; so do WeChat's push URLs.
        if !(api
            || path.starts_with("/oauth2/")
            || path.starts_with("/auth/")
            || path.starts_with("/wechat/"))
        {
            continue;
        }
        for operation in operations(item) {
            add_errors(operation, &statuses);
            if api {
                operation
                    .parameters
                    .get_or_insert_with(Vec::new)
                    .push(RefOr::T(app_header(&appids)));
            }
        }
    }
    if let Some(components) = doc.components.as_mut() {
        for name in super::login::WITH_APPID {
            if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(*name)
                && let Some(RefOr::T(Schema::Object(appid))) = object.properties.get_mut("appid")
            {
                // `null` is as good as absent (`JsonObject::optional_text`), so it is one of the values too.
                let values = appids.iter().map(|a| a.clone().into());
                appid.enum_values = Some(values.chain([serde_json::Value::Null]).collect());
            }
        }
    }
    doc
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.post.as_mut(),
        item.put.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
        item.head.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// Every status the error table answers, with the ids that answer it (from the table itself).
fn error_statuses() -> Vec<(u16, String)> {
    let mut by_status: std::collections::BTreeMap<u16, Vec<&'static str>> = Default::default();
    for row in ApiError::table() {
        let ids = by_status.entry(row.status.as_u16()).or_default();
        if !ids.contains(&row.error) {
            ids.push(row.error);
        }
    }
    by_status
        .into_iter()
        .map(|(status, ids)| (status, format!("`error`: {}", ids.join(", "))))
        .collect()
}

fn add_errors(operation: &mut Operation, statuses: &[(u16, String)]) {
    let mut responses = ResponsesBuilder::new();
    for (status, description) in statuses {
        let mut response = ResponseBuilder::new().description(description).content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                    "ErrorAnswer",
                ))))
                .build(),
        );
        if *status == 429 {
            response = response.header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(Some(
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(1)),
                    ))
                    .description(Some("seconds until a request would pass"))
                    .build(),
            );
        }
        responses = responses.response(status.to_string(), response.build());
    }
    for (status, response) in responses.build().responses {
        operation
            .responses
            .responses
            .entry(status)
            .or_insert(response);
    }
}

/// `X-WX-AppId`: which app a request is for, when the body does not say (one of the served appids).
fn app_header(appids: &[String]) -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name("X-WX-AppId")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "The app this request is for, when the body has no `appid` (WeChat's Referer also names it); \
             optional with one app",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(appids.iter().cloned())),
        ))
        .build()
}

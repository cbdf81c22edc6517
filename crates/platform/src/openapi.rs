//! Pieces every service's OpenAPI document shares.

use utoipa::Modify;
use utoipa::openapi::{RefOr, Schema};

use crate::extract::MAX_BULK_ITEMS;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};

/// Adds the `bearer` security scheme (JWT access tokens) to a document.
#[derive(Debug)]
pub struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// A service's public routes apart from their document, the document
/// completed with [`complete_problem_responses`].
pub fn split<S>(routes: utoipa_axum::router::OpenApiRouter<S>) -> (axum::Router<S>, OpenApi)
where
    S: Clone + Send + Sync + 'static,
{
    let (router, mut openapi) = routes.split_for_parts();
    complete_problem_responses(&mut openapi);
    (router, openapi)
}

/// The media type of every problem answer.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Completes a document with the problems the platform itself answers, so
/// it lists every status an operation can give:
///
/// - 400, 413, 415 and 422 for an operation with a JSON body (malformed JSON,
///   too large, another content type, fields that do not validate);
/// - 400 for one with query or path parameters that do not parse;
/// - 401 where a bearer token is required;
/// - 429 (the gateway's rate limits) and 503 (a dependency away) everywhere.
///
/// A status the operation documents itself keeps its own description, and
/// every problem is documented as `application/problem+json`, as served.
/// A body that is a JSON array is a bulk body, read by
/// [`crate::extract::bulk_items`]: its schema says it holds 1 to
/// [`MAX_BULK_ITEMS`] items.
pub fn complete_problem_responses(openapi: &mut OpenApi) {
    for item in openapi.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            complete_operation(operation);
        }
    }
}

fn complete_operation(operation: &mut utoipa::openapi::path::Operation) {
    use utoipa::openapi::path::ParameterIn;

    if let Some(body) = &mut operation.request_body {
        for content in body.content.values_mut() {
            if let Some(RefOr::T(Schema::Array(items))) = &mut content.schema {
                items.min_items = Some(1);
                items.max_items = Some(MAX_BULK_ITEMS);
            }
        }
    }
    let has_body = operation.request_body.is_some();
    let has_parameters = operation.parameters.as_ref().is_some_and(|parameters| {
        parameters
            .iter()
            .any(|p| matches!(p.parameter_in, ParameterIn::Query | ParameterIn::Path))
    });
    let needs_token = operation
        .security
        .as_ref()
        .is_some_and(|requirements| !requirements.is_empty());
    let mut standard: Vec<(&str, &str)> = Vec::new();
    if has_body {
        standard.push(("400", "Malformed JSON, or a malformed parameter"));
        standard.push(("413", "The body is larger than the limit"));
        standard.push(("415", "The body is not `Content-Type: application/json`"));
        standard.push(("422", "Fields that do not validate; `errors` names each"));
    } else if has_parameters {
        standard.push(("400", "A malformed parameter"));
    }
    if needs_token {
        standard.push(("401", "No valid bearer token"));
    }
    standard.push((
        "429",
        "Too many requests from this client; see `Retry-After` and `RateLimit-*`",
    ));
    standard.push((
        "503",
        "A service or database this call needs is away; see `Retry-After`",
    ));
    let responses = &mut operation.responses.responses;
    for (status, description) in standard {
        responses
            .entry(status.to_owned())
            .or_insert_with(|| problem_response(description));
    }
    for response in responses.values_mut() {
        if let utoipa::openapi::RefOr::T(response) = response {
            as_problem_json(response);
        }
    }
}

fn problem_response(description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
    let content = utoipa::openapi::ContentBuilder::new()
        .schema(Some(utoipa::openapi::Ref::from_schema_name("Problem")))
        .build();
    utoipa::openapi::ResponseBuilder::new()
        .description(description)
        .content(PROBLEM_JSON, content)
        .build()
        .into()
}

/// Moves a problem body documented as `application/json` to the media type it is served as.
fn as_problem_json(response: &mut utoipa::openapi::Response) {
    let is_problem = |content: &utoipa::openapi::Content| matches!(&content.schema, Some(utoipa::openapi::RefOr::Ref(r)) if r.ref_location.ends_with("/Problem"));
    if let Some(content) = response.content.get("application/json")
        && is_problem(content)
        && let Some(content) = response.content.shift_remove("application/json")
    {
        response.content.insert(PROBLEM_JSON.to_owned(), content);
    }
}

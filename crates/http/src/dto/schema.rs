//! The two request-body schemas a derive cannot state, composed by hand from
//! the derived schemas of the types that deserialize the bodies.
//!
//! Which credentials and which repository names a body may hold depends on
//! its `platform`: a JSON Schema says that with a `oneOf` over the platforms,
//! which no field attribute can. The deserializing types stay one struct for
//! every platform (every field optional, so that the domain reports every
//! broken rule at once); so the per-field rules (lengths, patterns, ranges,
//! required fields) are attributes on those types, and this module only
//! splits them by platform: it picks properties from the derived
//! [`CredentialsBody`] schema and specializes the derived
//! [`CreateConnectionBody`] and [`UpdateConnectionBody`] schemas.

use std::borrow::Cow;

use serde_json::json;
use utoipa::openapi::schema::{
    AdditionalProperties, AnyOfBuilder, ArrayItems, ObjectBuilder, OneOfBuilder, Schema, Type,
};
use utoipa::openapi::{Object, RefOr};
use utoipa::{PartialSchema, ToSchema};

use super::request::{CreateConnectionBody, CredentialsBody, OAuthBody, UpdateConnectionBody};
use super::view::PlatformName;

/// A repository name on GitHub: `owner/repo`. The owner is 1 to 39 letters,
/// digits and inner hyphens; the name 1 to 100 letters, digits, `-`, `_`, `.`,
/// and not `.` or `..`.
pub const GITHUB_REPOSITORY: &str = r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,37}[A-Za-z0-9])?/(?:[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}|\.[A-Za-z0-9_-][A-Za-z0-9._-]{0,98}|\.\.[A-Za-z0-9._-]{1,98})$";

/// A project path on GitLab: `group/project` or `group/sub/.../project`, at
/// most 21 parts; each part 1 to 255 letters, digits, `-`, `_`, `.`, not
/// starting with `-` or `.`, not ending with `.`, `.git` or `.atom`.
pub const GITLAB_REPOSITORY: &str = r"^[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,253}[A-Za-z0-9_-])?(?<!\.git)(?<!\.atom)(?:/[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,253}[A-Za-z0-9_-])?(?<!\.git)(?<!\.atom)){1,20}$";

/// A repository on Bitbucket: `workspace/repo-slug`, 1 to 62 and 1 to 128
/// letters, digits, `-`, `_`, `.`, neither `.` nor `..`.
pub const BITBUCKET_REPOSITORY: &str = r"^(?:[A-Za-z0-9_-][A-Za-z0-9._-]{0,61}|\.[A-Za-z0-9_-][A-Za-z0-9._-]{0,60}|\.\.[A-Za-z0-9._-]{1,60})/(?:[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}|\.[A-Za-z0-9_-][A-Za-z0-9._-]{0,126}|\.\.[A-Za-z0-9._-]{1,126})$";

/// `POST /v1/config/repos` as the document states it: one shape per platform.
#[derive(Debug)]
pub struct CreateConnectionRequest;

/// `PUT /v1/config/repos/{id}` as the document states it: the credentials in
/// one of the three forms, repository names of any platform (the server
/// checks them against the stored connection's platform).
#[derive(Debug)]
pub struct UpdateConnectionRequest;

/// `{token, baseUrl?}`: GitHub and GitLab.
#[derive(Debug)]
pub struct TokenCredentials;

/// `{username, appPassword}`: Bitbucket.
#[derive(Debug)]
pub struct AppPasswordCredentials;

/// `{email, apiToken}`: Bitbucket, Atlassian's replacement for app passwords.
#[derive(Debug)]
pub struct ApiTokenCredentials;

/// `{installationId, baseUrl?}`: an installation of the server's GitHub App.
#[derive(Debug)]
pub struct InstallationCredentials;

/// `{oauth, baseUrl?}`: OAuth 2.0 tokens (GitLab, and Bitbucket without `baseUrl`).
#[derive(Debug)]
pub struct OAuthCredentials;

/// `{oauth}`: OAuth 2.0 tokens of Bitbucket's server consumer.
#[derive(Debug)]
pub struct BitbucketOAuthCredentials;

/// The object a derive produced for `T` (an empty one if it ever is not an
/// object; the document tests would then fail).
fn derived_object<T: PartialSchema>() -> Object {
    match T::schema() {
        RefOr::T(Schema::Object(object)) => object,
        _ => Object::new(),
    }
}

/// The properties `fields` of the derived [`CredentialsBody`], `required` of
/// them required, nothing else allowed.
fn credentials_form(description: &str, fields: &[&str], required: &[&str]) -> RefOr<Schema> {
    let all = derived_object::<CredentialsBody>();
    let mut form = ObjectBuilder::new().schema_type(Type::Object).description(Some(description));
    for field in fields {
        if let Some(property) = all.properties.get(*field) {
            form = form.property(*field, property.clone());
        }
    }
    for field in required {
        form = form.required(*field);
    }
    form.additional_properties(Some(AdditionalProperties::FreeForm(false))).into()
}

impl PartialSchema for TokenCredentials {
    fn schema() -> RefOr<Schema> {
        credentials_form("A personal access token (GitHub, GitLab).", &["token", "baseUrl"], &["token"])
    }
}

impl ToSchema for TokenCredentials {}

impl PartialSchema for AppPasswordCredentials {
    fn schema() -> RefOr<Schema> {
        credentials_form(
            "A Bitbucket username and app password.",
            &["username", "appPassword"],
            &["username", "appPassword"],
        )
    }
}

impl ToSchema for AppPasswordCredentials {}

impl PartialSchema for ApiTokenCredentials {
    fn schema() -> RefOr<Schema> {
        credentials_form(
            "An Atlassian account email and API token (Bitbucket).",
            &["email", "apiToken"],
            &["email", "apiToken"],
        )
    }
}

impl ToSchema for ApiTokenCredentials {}

impl PartialSchema for InstallationCredentials {
    fn schema() -> RefOr<Schema> {
        credentials_form(
            "An installation of the server's GitHub App (GitHub; `baseUrl` for an App on GitHub Enterprise Server). \
             The server mints short-lived installation tokens with the App's key.",
            &["installationId", "baseUrl"],
            &["installationId"],
        )
    }
}

impl ToSchema for InstallationCredentials {}

impl PartialSchema for OAuthCredentials {
    fn schema() -> RefOr<Schema> {
        credentials_form(
            "OAuth 2.0 tokens granted to the server's OAuth application (GitLab; `baseUrl` for a \
             self-managed GitLab, not taken for Bitbucket). The server refreshes them.",
            &["oauth", "baseUrl"],
            &["oauth"],
        )
    }
}

impl ToSchema for OAuthCredentials {}

impl PartialSchema for BitbucketOAuthCredentials {
    fn schema() -> RefOr<Schema> {
        credentials_form(
            "OAuth 2.0 tokens granted to the server's Bitbucket OAuth consumer. The server refreshes them.",
            &["oauth"],
            &["oauth"],
        )
    }
}

impl ToSchema for BitbucketOAuthCredentials {}

fn reference<T: ToSchema>() -> RefOr<Schema> {
    RefOr::Ref(utoipa::openapi::Ref::from_schema_name(T::name()))
}

/// A repository name of one platform.
fn repository_name(pattern: &str, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::String).pattern(Some(pattern)).description(Some(description)).into()
}

/// The derived `repositories` array of `body`, with `items` for names and
/// no two names alike.
fn with_repository_items(body: &mut Object, items: RefOr<Schema>) {
    if let Some(RefOr::T(Schema::Array(array))) = body.properties.get_mut("repositories") {
        array.items = ArrayItems::RefOrSchema(Box::new(items));
        array.unique_items = true;
    }
}

/// The create body of one platform: the derived [`CreateConnectionBody`]
/// with `platform` fixed and the platform's credentials and names.
fn create_for(
    platform: PlatformName,
    credentials: RefOr<Schema>,
    repository: RefOr<Schema>,
    example: serde_json::Value,
) -> RefOr<Schema> {
    let mut body = derived_object::<CreateConnectionBody>();
    body.examples = vec![example];
    let name = serde_json::to_value(platform).unwrap_or_default();
    body.title = name.as_str().map(|p| format!("{p} connection"));
    body.description = None;
    body.properties
        .insert("platform".to_owned(), ObjectBuilder::new().schema_type(Type::String).enum_values(Some([name])).into());
    body.properties.insert("credentials".to_owned(), credentials);
    with_repository_items(&mut body, repository);
    RefOr::T(Schema::Object(body))
}

impl PartialSchema for CreateConnectionRequest {
    fn schema() -> RefOr<Schema> {
        let github_credentials = OneOfBuilder::new()
            .item(reference::<TokenCredentials>())
            .item(reference::<InstallationCredentials>())
            .description(Some("`{token, baseUrl?}` or `{installationId, baseUrl?}`"));
        let gitlab_credentials = OneOfBuilder::new()
            .item(reference::<TokenCredentials>())
            .item(reference::<OAuthCredentials>())
            .description(Some("`{token, baseUrl?}` or `{oauth, baseUrl?}`"));
        let bitbucket_credentials = OneOfBuilder::new()
            .item(reference::<AppPasswordCredentials>())
            .item(reference::<ApiTokenCredentials>())
            .item(reference::<BitbucketOAuthCredentials>())
            .description(Some("`{username, appPassword}`, `{email, apiToken}` or `{oauth}`"));
        OneOfBuilder::new()
            .description(Some(
                "`POST /v1/config/repos`: one shape per `platform`, which decides the form of the \
                 credentials and of the repository names.",
            ))
            .item(create_for(
                PlatformName::Github,
                github_credentials.into(),
                repository_name(GITHUB_REPOSITORY, "owner/repo"),
                json!({
                    "platform": "github",
                    "credentials": {"token": "ghp_your_token_here"},
                    "repositories": ["acme/checkout-api", "acme/billing-worker"],
                    "serviceMappings": [{"serviceName": "checkout-api", "repo": "acme/checkout-api",
                                         "pathPrefix": "src/", "defaultBranch": "main"}],
                    "lookbackDays": 30
                }),
            ))
            .item(create_for(
                PlatformName::Gitlab,
                gitlab_credentials.into(),
                repository_name(GITLAB_REPOSITORY, "group/project or group/subgroup/.../project"),
                json!({
                    "platform": "gitlab",
                    "credentials": {"token": "glpat-your-token-here", "baseUrl": "https://gitlab.company.com"},
                    "repositories": ["acme/platform/checkout-api"]
                }),
            ))
            .item(create_for(
                PlatformName::Bitbucket,
                bitbucket_credentials.into(),
                repository_name(BITBUCKET_REPOSITORY, "workspace/repo-slug"),
                json!({
                    "platform": "bitbucket",
                    "credentials": {"email": "dev@acme.io", "apiToken": "ATATT3xFfGF0your-token"},
                    "repositories": ["acme-workspace/payments"]
                }),
            ))
            .into()
    }
}

impl ToSchema for CreateConnectionRequest {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("CreateConnectionBody")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.extend(credential_forms());
        schemas.push((
            super::ServiceMappingBody::name().into_owned(),
            <super::ServiceMappingBody as PartialSchema>::schema(),
        ));
    }
}

fn credential_forms() -> [(String, RefOr<Schema>); 7] {
    [
        (TokenCredentials::name().into_owned(), TokenCredentials::schema()),
        (AppPasswordCredentials::name().into_owned(), AppPasswordCredentials::schema()),
        (ApiTokenCredentials::name().into_owned(), ApiTokenCredentials::schema()),
        (InstallationCredentials::name().into_owned(), InstallationCredentials::schema()),
        (OAuthCredentials::name().into_owned(), OAuthCredentials::schema()),
        (BitbucketOAuthCredentials::name().into_owned(), BitbucketOAuthCredentials::schema()),
        (OAuthBody::name().into_owned(), <OAuthBody as PartialSchema>::schema()),
    ]
}

impl PartialSchema for UpdateConnectionRequest {
    fn schema() -> RefOr<Schema> {
        let mut body = derived_object::<UpdateConnectionBody>();
        body.description = Some(
            "`PUT /v1/config/repos/{id}`: every field optional; only those sent change. The credentials \
             and repository names must be of the connection's platform; `platform` itself is refused \
             (delete and recreate instead)."
                .to_owned(),
        );
        let credentials = OneOfBuilder::new()
            .item(reference::<TokenCredentials>())
            .item(reference::<InstallationCredentials>())
            .item(reference::<OAuthCredentials>())
            .item(reference::<AppPasswordCredentials>())
            .item(reference::<ApiTokenCredentials>())
            .description(Some("Replaces the credentials whole, in the form of the connection's platform (a left-out `baseUrl` keeps the stored one)."));
        body.properties.insert("credentials".to_owned(), credentials.into());
        let names = AnyOfBuilder::new()
            .item(repository_name(GITHUB_REPOSITORY, "GitHub: owner/repo"))
            .item(repository_name(GITLAB_REPOSITORY, "GitLab: group/project or group/subgroup/.../project"))
            .item(repository_name(BITBUCKET_REPOSITORY, "Bitbucket: workspace/repo-slug"))
            .description(Some("A repository name of the connection's platform."));
        with_repository_items(&mut body, names.into());
        RefOr::T(Schema::Object(body))
    }
}

impl ToSchema for UpdateConnectionRequest {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("UpdateConnectionBody")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.extend(credential_forms());
        schemas.push((
            super::ServiceMappingBody::name().into_owned(),
            <super::ServiceMappingBody as PartialSchema>::schema(),
        ));
    }
}

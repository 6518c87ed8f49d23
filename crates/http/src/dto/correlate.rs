//! `POST /v1/code/correlate`: the request as sent and the answer.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use sigsentry_app::{CorrelatedFrame, Correlation, SuspectFileLink};
use sigsentry_domain::correlation::{CorrelationDraft, FrameDraft, Language, SuspectPullRequest, Unmapped};
use utoipa::PartialSchema;
use utoipa::ToSchema;
use utoipa::openapi::schema::{AdditionalProperties, OneOfBuilder, Schema};
use utoipa::openapi::{Object, RefOr};
use uuid::Uuid;

use super::Timestamp;

/// A structured frame. Text fields are 1 to 1024 characters without control characters.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FrameBody {
    /// The file as the runtime printed it.
    #[schema(
        required,
        nullable = false,
        min_length = 1,
        max_length = 1024,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]+$"
    )]
    pub file: Option<String>,
    /// The function or method.
    #[schema(nullable = false, min_length = 1, max_length = 1024, pattern = r"^[^\u0000-\u001f\u007f-\u009f]+$")]
    pub function: Option<String>,
    /// 1-based line.
    #[serde(default, deserialize_with = "super::request::integer")]
    #[schema(nullable = false, minimum = 1, maximum = 4294967295_i64)]
    pub line: Option<i64>,
    /// 1-based column.
    #[serde(default, deserialize_with = "super::request::integer")]
    #[schema(nullable = false, minimum = 1, maximum = 4294967295_i64)]
    pub column: Option<i64>,
    /// The class (Java, .NET) or package (Go).
    #[schema(nullable = false, min_length = 1, max_length = 1024, pattern = r"^[^\u0000-\u001f\u007f-\u009f]+$")]
    pub module: Option<String>,
    /// Whether the frame is the application's own code; when given it wins.
    #[schema(nullable = false)]
    pub in_app: Option<bool>,
}

/// The error to correlate: its text as logged, or its frames; exactly one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CorrelateBody {
    /// The error's text as logged: message and stack trace, 1 byte to 256 KiB (262,144 bytes of UTF-8).
    #[schema(nullable = false, min_length = 1, max_length = 262144)]
    pub stacktrace: Option<String>,
    /// Instead of `stacktrace`: 1 to 500 frames, `frames[0]` where the error was raised.
    #[schema(nullable = false, min_items = 1, max_items = 500)]
    pub frames: Option<Vec<FrameBody>>,
    /// The service name as logged; its service mapping's repository and pathPrefix are searched first.
    #[schema(nullable = false)]
    pub service: Option<String>,
    /// When the error happened (RFC 3339); default now. A PR merged after it is never a suspect.
    #[schema(nullable = false, format = DateTime)]
    pub occurred_at: Option<String>,
    /// At most this many suspect files and suspect PRs, 1 to 20 (default 5).
    #[serde(default, deserialize_with = "super::request::integer")]
    #[schema(nullable = false, minimum = 1, maximum = 20)]
    pub limit: Option<i64>,
}

/// `POST /v1/code/correlate` as the document states it: the derived
/// [`CorrelateBody`] in two shapes, one with `stacktrace` and one with
/// `frames` (exactly one of them, which no field attribute can say), and
/// `service` with the rules of a mapping's `serviceName`.
#[derive(Debug)]
pub struct CorrelateRequest;

impl PartialSchema for CorrelateRequest {
    fn schema() -> RefOr<Schema> {
        let derived = match CorrelateBody::schema() {
            RefOr::T(Schema::Object(object)) => object,
            _ => Object::new(),
        };
        let service_name = match <super::ServiceMappingBody as PartialSchema>::schema() {
            RefOr::T(Schema::Object(mapping)) => mapping.properties.get("serviceName").cloned(),
            _ => None,
        };
        let shape = |with: &str, without: &str, title: &str| {
            let mut shape = derived.clone();
            shape.properties.remove(without);
            if let Some(name) = &service_name {
                shape.properties.insert("service".to_owned(), name.clone());
            }
            shape.required = vec![with.to_owned()];
            shape.title = Some(title.to_owned());
            shape.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
            RefOr::T(Schema::Object(shape))
        };
        OneOfBuilder::new()
            .description(Some("The error to correlate: its text as logged, or its frames; exactly one."))
            .item(shape("stacktrace", "frames", "from the text"))
            .item(shape("frames", "stacktrace", "from frames"))
            .into()
    }
}

impl ToSchema for CorrelateRequest {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("CorrelateBody")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((FrameBody::name().into_owned(), <FrameBody as PartialSchema>::schema()));
    }
}

impl From<CorrelateBody> for CorrelationDraft {
    fn from(body: CorrelateBody) -> Self {
        CorrelationDraft {
            stacktrace: body.stacktrace,
            frames: body.frames.map(|frames| {
                frames
                    .into_iter()
                    .map(|f| FrameDraft {
                        file: f.file,
                        function: f.function,
                        line: f.line,
                        column: f.column,
                        module: f.module,
                        in_app: f.in_app,
                    })
                    .collect()
            }),
            service: body.service,
            occurred_at: body.occurred_at,
            limit: body.limit,
        }
    }
}

/// The trace's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LanguageName {
    /// Python tracebacks.
    Python,
    /// Java and Kotlin.
    Java,
    /// JavaScript and TypeScript (V8).
    Javascript,
    /// Go panics and goroutine dumps.
    Go,
    /// Rust panics and backtraces.
    Rust,
    /// Ruby.
    Ruby,
    /// .NET.
    Dotnet,
    /// Nothing recognised.
    Unknown,
}

impl From<Language> for LanguageName {
    fn from(language: Language) -> Self {
        match language {
            Language::Python => Self::Python,
            Language::Java => Self::Java,
            Language::JavaScript => Self::Javascript,
            Language::Go => Self::Go,
            Language::Rust => Self::Rust,
            Language::Ruby => Self::Ruby,
            Language::DotNet => Self::Dotnet,
            Language::Unknown => Self::Unknown,
        }
    }
}

/// The root cause's type and message.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExceptionView {
    /// `KeyError`, `java.lang.IllegalStateException`, `panic`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its message.
    pub message: String,
}

/// Where a frame was found.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FrameMappingView {
    /// The connection holding the repository.
    pub connection_id: Uuid,
    /// The repository.
    pub repository: String,
    /// The file's path in it.
    pub path: String,
    /// The line on the platform's web UI.
    pub url: String,
}

/// Why a frame was not mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UnmappedReason {
    /// Runtime, standard library or a dependency.
    LibraryFrame,
    /// An application frame whose file no connected repository has.
    NotInRepository,
    /// Several files fit equally well.
    Ambiguous,
    /// The repository's files are not known yet (sync pending or failed).
    NotSynced,
    /// The frame has no path.
    NoFile,
}

/// Why a frame was not mapped, in a sentence a person can act on.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnmappedView {
    /// The reason.
    pub reason: UnmappedReason,
    /// What it means and what to do.
    pub message: String,
}

impl From<&Unmapped> for UnmappedView {
    fn from(why: &Unmapped) -> Self {
        let reason = match why {
            Unmapped::LibraryFrame { .. } => UnmappedReason::LibraryFrame,
            Unmapped::NotInRepository { .. } => UnmappedReason::NotInRepository,
            Unmapped::Ambiguous { .. } => UnmappedReason::Ambiguous,
            Unmapped::NotSynced { .. } => UnmappedReason::NotSynced,
            Unmapped::NoFile => UnmappedReason::NoFile,
        };
        Self { reason, message: why.message() }
    }
}

/// One frame, innermost first, with where it maps or why not.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FrameView {
    /// 0 is where the error was raised.
    pub index: usize,
    /// The file as the runtime printed it.
    pub file: Option<String>,
    /// The function or method.
    pub function: Option<String>,
    /// The line.
    pub line: Option<u32>,
    /// The column.
    pub column: Option<u32>,
    /// The class or package.
    pub module: Option<String>,
    /// Whether it is the application's own code.
    pub in_app: bool,
    /// The repository file, when mapped.
    pub mapping: Option<FrameMappingView>,
    /// Why not, when not mapped.
    pub unmapped: Option<UnmappedView>,
}

impl From<&CorrelatedFrame> for FrameView {
    fn from(f: &CorrelatedFrame) -> Self {
        let (mapping, unmapped) = match &f.mapping {
            Ok(link) => (
                Some(FrameMappingView {
                    connection_id: *link.connection_id.as_uuid(),
                    repository: link.repository.clone(),
                    path: link.path.clone(),
                    url: link.url.clone(),
                }),
                None,
            ),
            Err(why) => (None, Some(why.into())),
        };
        Self {
            index: f.index,
            file: f.frame.file.clone(),
            function: f.frame.function.clone(),
            line: f.frame.line,
            column: f.frame.column,
            module: f.frame.module.clone(),
            in_app: f.in_app,
            mapping,
            unmapped,
        }
    }
}

/// A file that may hold the bug.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SuspectFileView {
    /// The repository.
    pub repository: String,
    /// The path in it.
    pub path: String,
    /// The function of its most important frame.
    pub function: Option<String>,
    /// The line of its most important frame.
    pub line: Option<u32>,
    /// The line on the platform's web UI.
    pub url: String,
    /// 0 to 1, higher is more suspect.
    #[schema(minimum = 0, maximum = 1)]
    pub score: f64,
    /// The frames in this file.
    pub frames: Vec<usize>,
    /// Why, in sentences a person can check.
    pub reasons: Vec<String>,
}

impl From<&SuspectFileLink> for SuspectFileView {
    fn from(link: &SuspectFileLink) -> Self {
        let s = &link.suspect;
        Self {
            repository: s.repository.clone(),
            path: s.path.clone(),
            function: s.function.clone(),
            line: s.line,
            url: link.url.clone(),
            score: s.score,
            frames: s.frames.clone(),
            reasons: s.reasons.clone(),
        }
    }
}

/// A pull request that may have caused the error.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SuspectPullRequestView {
    /// The repository.
    pub repository: String,
    /// The PR number (MR iid on GitLab).
    pub number: u64,
    /// Its title.
    pub title: String,
    /// Its author.
    pub author: Option<String>,
    /// Its web page.
    pub url: String,
    /// When it was merged.
    pub merged_at: Timestamp,
    /// 0 to 1, higher is more suspect.
    #[schema(minimum = 0, maximum = 1)]
    pub score: f64,
    /// The frames' files it changed.
    pub files: Vec<String>,
    /// Why, in sentences a person can check.
    pub reasons: Vec<String>,
}

impl From<&SuspectPullRequest> for SuspectPullRequestView {
    fn from(pr: &SuspectPullRequest) -> Self {
        Self {
            repository: pr.repository.clone(),
            number: pr.number,
            title: pr.title.clone(),
            author: pr.author.clone(),
            url: pr.url.clone(),
            merged_at: Timestamp(pr.merged_at),
            score: pr.score,
            files: pr.files.clone(),
            reasons: pr.reasons.clone(),
        }
    }
}

/// The answer: the frames, the suspects, and notes.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CorrelationView {
    /// The trace's format; `unknown` when no frame could be read.
    pub language: LanguageName,
    /// The root cause, when the format shows it.
    pub exception: Option<ExceptionView>,
    /// Every frame, innermost first; chained causes after the outer exception's frames.
    pub frames: Vec<FrameView>,
    /// Suspect files, best first.
    pub suspect_files: Vec<SuspectFileView>,
    /// Suspect pull requests, best first.
    pub suspect_pull_requests: Vec<SuspectPullRequestView>,
    /// What to know about how the answer was reached.
    pub notes: Vec<String>,
}

impl From<&Correlation> for CorrelationView {
    fn from(c: &Correlation) -> Self {
        Self {
            language: c.language.into(),
            exception: c.exception.as_ref().map(|e| ExceptionView { kind: e.kind.clone(), message: e.message.clone() }),
            frames: c.frames.iter().map(Into::into).collect(),
            suspect_files: c.suspect_files.iter().map(Into::into).collect(),
            suspect_pull_requests: c.suspect_pull_requests.iter().map(Into::into).collect(),
            notes: c.notes.clone(),
        }
    }
}
